// The KPIs shown on the loop page and in the fleet table, with their formats and meaning.

import type { KpiDefinition } from "../components/KpiCard";
import { formatDuration, formatNumber, formatShare } from "./format";

export const KPI_CARDS: KpiDefinition[] = [
  { key: "health_score", name: "Health score", format: (v) => formatNumber(v, 1), help: "0 (worst) to 100 (best), from the sub-scores below" },
  { key: "service_factor", name: "Service factor", format: (v) => formatShare(v), help: "Share of valid samples in a normal mode" },
  { key: "saturation", name: "Saturation", format: (v) => formatShare(v), help: "Share of in-service samples with OP at a limit" },
  { key: "osc_regularity", name: "Oscillation regularity", format: (v) => formatNumber(v, 2), help: "Thornhill regularity r of the control error; above 1 means oscillating" },
  { key: "osc_period_s", name: "Oscillation period", format: (v) => formatDuration(v), help: "Period of the detected oscillation" },
  { key: "harris_index", name: "Harris index", format: (v) => formatNumber(v, 2), help: "Minimum-variance performance index (1 = best possible)" },
  { key: "error_std_pct", name: "Control error σ", format: (v) => (v === null ? "–" : `${formatNumber(v, 2)} %`), help: "Standard deviation of SP − PV, % of PV span", ofPvSpan: true },
  { key: "op_travel_per_hour", name: "Valve travel", format: (v) => (v === null ? "–" : `${formatNumber(v, 0)} %/h`), help: "OP movement per hour, % of span" },
];

export const HISTORY_COLUMNS = ["window_start", "window_end", "mode_shares", "span_source", ...KPI_CARDS.map((kpi) => kpi.key)];

/** The KPI columns of the fleet table, read from each loop's latest window. */
export const FLEET_KPI_COLUMNS = ["service_factor", "saturation", "oscillating", "osc_period_s", "osc_regularity"];

export interface KpiHeadline {
  service_factor: number | null;
  saturation: number | null;
  oscillating: boolean | null;
  osc_period_s: number | null;
  osc_regularity: number | null;
}

const numberOrNull = (value: unknown) => (typeof value === "number" && Number.isFinite(value) ? value : null);

export function headlineOf(row: Record<string, unknown> | null | undefined): KpiHeadline {
  return {
    service_factor: numberOrNull(row?.service_factor),
    saturation: numberOrNull(row?.saturation),
    oscillating: typeof row?.oscillating === "boolean" ? row.oscillating : null,
    osc_period_s: numberOrNull(row?.osc_period_s),
    osc_regularity: numberOrNull(row?.osc_regularity),
  };
}

/** "Yes, 164 s" / "No" / "–" */
export function oscillationText(headline: KpiHeadline | undefined): string {
  if (!headline || headline.oscillating === null) return "–";
  if (!headline.oscillating) return "No";
  return headline.osc_period_s ? `Yes, ${formatDuration(headline.osc_period_s)}` : "Yes";
}
