// Loads the trend of a loop for the current view: raw samples (all pages) when zoomed in,
// aggregates with the KPI windows' modes when zoomed out; reuses what is loaded while it
// covers the view, and can extend a raw trend with newer samples (live).

import { useCallback, useEffect, useRef, useState } from "react";

import type { ClpmApi } from "../../api/endpoints";
import type { View } from "../../components/TrendChart";
import { isoOf } from "../../lib/format";
import { chooseResolution, covers, loadWindow, type Resolution } from "../../lib/resolution";
import { appendRaw, fromAggregated, fromRaw, modeSegmentsFromKpis, type TrendData } from "../../lib/series";

export interface LoadedTrend {
  /** seconds since the epoch */
  start: number;
  end: number;
  resolution: Resolution;
  data: TrendData;
}

const MAX_RAW_PAGES = 40;
const RAW_FIELDS = ["pv", "op", "sp", "mode"];

/** All raw samples of [start, end) seconds, following the gateway's page cursors. */
export async function loadRaw(api: ClpmApi, loopId: string, start: number, end: number, signal?: AbortSignal): Promise<TrendData> {
  const query = { start: isoOf(start * 1000), end: isoOf(end * 1000), fields: RAW_FIELDS };
  let page = await api.raw(loopId, query, signal);
  const merged = { ...page, ts: [...page.ts], pv: [...(page.pv ?? [])], sp: [...(page.sp ?? [])], op: [...(page.op ?? [])], mode: [...(page.mode ?? [])] };
  for (let count = 1; page.next_cursor && count < MAX_RAW_PAGES; count += 1) {
    page = await api.raw(loopId, { ...query, cursor: page.next_cursor }, signal);
    merged.ts.push(...page.ts);
    merged.pv.push(...(page.pv ?? []));
    merged.sp.push(...(page.sp ?? []));
    merged.op.push(...(page.op ?? []));
    merged.mode.push(...(page.mode ?? []));
  }
  return fromRaw(merged);
}

async function loadAggregated(
  api: ClpmApi,
  loopId: string,
  start: number,
  end: number,
  interval: string,
  signal?: AbortSignal,
): Promise<TrendData> {
  const range = { start: isoOf(start * 1000), end: isoOf(end * 1000) };
  const [aggregated, kpis] = await Promise.all([
    api.aggregated(loopId, { ...range, interval }, signal),
    // the mode band of an aggregated view: each KPI window's dominant mode (none if unavailable)
    api
      .kpiHistory(loopId, { ...range, columns: ["window_start", "window_end", "mode_shares"], limit: 10000 }, signal)
      .then((rows) => rows.items)
      .catch(() => []),
  ]);
  return fromAggregated(aggregated, modeSegmentsFromKpis(kpis));
}

export function useTrendData(api: ClpmApi, loopId: string, view: View, bounds: { start: number; end: number } | null) {
  const [loaded, setLoaded] = useState<LoadedTrend | null>(null);
  const [loading, setLoading] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [attempt, setAttempt] = useState(0);
  const resolution = chooseResolution(view.end - view.start);
  const resolutionKey = resolution.kind === "raw" ? "raw" : resolution.interval;
  const loadedRef = useRef(loaded);
  loadedRef.current = loaded;

  useEffect(() => {
    setLoaded(null);
  }, [loopId]);

  useEffect(() => {
    if (!bounds || error) return;
    if (covers(loadedRef.current, view, bounds, resolution)) return;
    const controller = new AbortController();
    const timer = window.setTimeout(async () => {
      const wanted = loadWindow({ start: view.start * 1000, end: view.end * 1000 }, { start: bounds.start * 1000, end: bounds.end * 1000 }, resolution);
      const start = wanted.start / 1000;
      const end = wanted.end / 1000;
      setLoading(true);
      try {
        const data =
          resolution.kind === "raw"
            ? await loadRaw(api, loopId, start, end, controller.signal)
            : await loadAggregated(api, loopId, start, end, resolution.interval, controller.signal);
        if (!controller.signal.aborted) setLoaded({ start, end, resolution, data });
      } catch (failure) {
        if (!controller.signal.aborted && (failure as { name?: string })?.name !== "AbortError") setError(failure);
      } finally {
        if (!controller.signal.aborted) setLoading(false);
      }
    }, 150);
    return () => {
      window.clearTimeout(timer);
      controller.abort();
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [api, loopId, view.start, view.end, bounds?.start, bounds?.end, resolutionKey, loaded, error, attempt]);

  const retry = useCallback(() => {
    setError(null);
    setAttempt((value) => value + 1);
  }, []);

  /** Extend a raw trend up to ``until`` (seconds) with the samples after its last point. */
  const extend = useCallback(
    async (until: number) => {
      const current = loadedRef.current;
      if (!current || current.resolution.kind !== "raw") return;
      const last = current.data.x.length ? current.data.x[current.data.x.length - 1] : current.start;
      if (until <= last) return;
      const more = await loadRaw(api, loopId, last + 0.001, until + 1);
      setLoaded((previous) =>
        previous && previous === current
          ? { ...previous, end: Math.max(previous.end, until + 1), data: appendRaw(previous.data, more) }
          : previous,
      );
    },
    [api, loopId],
  );

  return { loaded, resolution, loading, error, retry, extend };
}
