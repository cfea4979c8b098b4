// The gateway's endpoints used by the web front, typed.

import type { ApiClient, Query } from "./client";
import type {
  AggregatedData,
  Assessment,
  CatalogueImport,
  ExportImport,
  ApcSummary,
  DataRange,
  Findings,
  FleetSummary,
  KpiRow,
  KpiRows,
  Loop,
  LoopConfig,
  LoopConfigChange,
  LoopFields,
  LoopPage,
  LoopSortKey,
  LoopStatus,
  OnDemandDiagnosis,
  Period,
  RawData,
  RealtimeData,
  RealtimeMany,
} from "./types";

export interface LoopListQuery {
  period?: Period;
  unit?: string;
  area?: string;
  status?: LoopStatus;
  sort?: LoopSortKey;
  order?: "asc" | "desc";
  offset?: number;
  limit?: number;
}

const path = (loopId: string) => `/loops/${encodeURIComponent(loopId)}`;

export class ClpmApi {
  readonly http: ApiClient;

  constructor(http: ApiClient) {
    this.http = http;
  }

  listLoops(query: LoopListQuery, signal?: AbortSignal): Promise<LoopPage> {
    return this.http.get<LoopPage>("/loops", query as Query, signal);
  }

  loop(loopId: string, signal?: AbortSignal): Promise<Loop> {
    return this.http.get<Loop>(path(loopId), undefined, signal);
  }

  createLoop(fields: LoopFields & { loop_id: string }): Promise<Loop> {
    return this.http.post<Loop>("/loops", fields);
  }

  updateLoop(loopId: string, fields: LoopFields): Promise<Loop> {
    return this.http.put<Loop>(path(loopId), fields);
  }

  /** Import a loop list (CSV or JSON text, as the catalogue command line takes it; admin). */
  importCatalogue(text: string, format: "csv" | "json", dryRun = false): Promise<CatalogueImport> {
    return this.http.postText<CatalogueImport>(
      "/loops/catalogue",
      text,
      format === "json" ? "application/json" : "text/csv",
      dryRun ? { dry_run: "true" } : undefined,
    );
  }

  /** Upload historian exports and their tag map (admin); validated whole before anything is written. */
  importExports(exports: File[], tagMap: File, options: { timezone?: string; dryRun?: boolean; skipBadRows?: boolean } = {}): Promise<ExportImport> {
    const form = new FormData();
    for (const file of exports) form.append("exports", file, file.name);
    form.append("tag_map", tagMap, tagMap.name);
    if (options.timezone?.trim()) form.append("timezone", options.timezone.trim());
    form.append("dry_run", options.dryRun ? "true" : "false");
    form.append("skip_bad_rows", options.skipBadRows ? "true" : "false");
    return this.http.postForm<ExportImport>("/loops/import", form);
  }

  deleteLoop(loopId: string): Promise<void> {
    return this.http.delete(path(loopId));
  }

  fleetSummary(query: { unit?: string; area?: string; top?: number; period?: Period }, signal?: AbortSignal): Promise<FleetSummary> {
    return this.http.get<FleetSummary>("/fleet/summary", query, signal);
  }

  config(loopId: string, signal?: AbortSignal): Promise<LoopConfig> {
    return this.http.get<LoopConfig>(`${path(loopId)}/config`, undefined, signal);
  }

  updateConfig(loopId: string, change: LoopConfigChange): Promise<LoopConfig> {
    return this.http.put<LoopConfig>(`${path(loopId)}/config`, change);
  }

  latestKpis(loopId: string, columns?: string[], signal?: AbortSignal): Promise<KpiRow> {
    return this.http.get<KpiRow>(`${path(loopId)}/kpis/latest`, { columns }, signal);
  }

  kpiHistory(
    loopId: string,
    query: { start?: string; end?: string; columns?: string[]; limit?: number },
    signal?: AbortSignal,
  ): Promise<KpiRows> {
    return this.http.get<KpiRows>(`${path(loopId)}/kpis`, query, signal);
  }

  dataRange(loopId: string, signal?: AbortSignal): Promise<DataRange> {
    return this.http.get<DataRange>("/data/range", { loopId }, signal);
  }

  raw(
    loopId: string,
    query: { start: string; end: string; fields?: string[]; limit?: number; cursor?: string },
    signal?: AbortSignal,
  ): Promise<RawData> {
    return this.http.get<RawData>("/data/raw", { loopId, ...query }, signal);
  }

  aggregated(
    loopId: string,
    query: { start: string; end: string; interval: string },
    signal?: AbortSignal,
  ): Promise<AggregatedData> {
    return this.http.get<AggregatedData>("/data/aggregated", { loopId, ...query }, signal);
  }

  realtime(loopId: string, signal?: AbortSignal): Promise<RealtimeData> {
    return this.http.get<RealtimeData>("/data/realtime", { loopId, fields: ["pv", "op", "sp", "mode"] }, signal);
  }

  /** Latest PV/SP/OP/mode of up to 1,000 loops in one request (one batched store query). */
  realtimeMany(loopIds: string[], signal?: AbortSignal): Promise<RealtimeMany> {
    return this.http.get<RealtimeMany>("/data/realtime", { loopIds: loopIds.join(","), fields: ["pv", "op", "sp", "mode"] }, signal);
  }

  findings(loopId: string, signal?: AbortSignal): Promise<Findings> {
    return this.http.get<Findings>(`${path(loopId)}/diagnostics`, undefined, signal);
  }

  /** Diagnose ``window`` (default: the last hour) now; answers the run's own findings. */
  runDiagnosis(loopId: string, window?: { start: string; end: string }): Promise<OnDemandDiagnosis> {
    return this.http.post<OnDemandDiagnosis>(`${path(loopId)}/diagnostics/run`, window ?? {});
  }

  /** A loop's rating over a shift, day or week (status shares, findings, worst window, change). */
  assessment(loopId: string, period: Period, signal?: AbortSignal): Promise<Assessment> {
    return this.http.get<Assessment>(`${path(loopId)}/assessment`, { period }, signal);
  }

  oscillationClusters(query: { start?: string; end?: string }, signal?: AbortSignal): Promise<unknown> {
    return this.http.get<unknown>("/oscillation-clusters", query, signal);
  }

  apcAttainment(
    query: { start?: string; end?: string; unit?: string; area?: string },
    signal?: AbortSignal,
  ): Promise<ApcSummary> {
    return this.http.get<ApcSummary>("/apc/attainment", query, signal);
  }
}
