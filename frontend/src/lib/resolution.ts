// Which data to load for a trend view: raw samples when zoomed in, aggregates when zoomed out.

/** Longest span shown from raw samples (1 Hz loops: 10,800 points). */
export const RAW_MAX_SPAN_S = 3 * 3600;
/** Aim at most this many buckets for an aggregated view (enough for a wide screen). */
export const TARGET_BUCKETS = 1500;
/** Bucket widths the gateway serves cheaply (agg_1m / agg_1h and their multiples). */
export const INTERVALS: { label: string; seconds: number }[] = [
  { label: "1m", seconds: 60 },
  { label: "5m", seconds: 300 },
  { label: "15m", seconds: 900 },
  { label: "1h", seconds: 3600 },
  { label: "6h", seconds: 21600 },
  { label: "1d", seconds: 86400 },
];

export type Resolution = { kind: "raw" } | { kind: "aggregated"; interval: string; intervalS: number };

/** The resolution for a view of ``spanS`` seconds. */
export function chooseResolution(spanS: number, rawMaxSpanS = RAW_MAX_SPAN_S): Resolution {
  if (spanS <= rawMaxSpanS) return { kind: "raw" };
  const wanted = spanS / TARGET_BUCKETS;
  const interval = INTERVALS.find((candidate) => candidate.seconds >= wanted) ?? INTERVALS[INTERVALS.length - 1];
  return { kind: "aggregated", interval: interval.label, intervalS: interval.seconds };
}

export function describeResolution(resolution: Resolution): string {
  if (resolution.kind === "raw") return "raw samples";
  const names: Record<string, string> = {
    "1m": "1-minute",
    "5m": "5-minute",
    "15m": "15-minute",
    "1h": "1-hour",
    "6h": "6-hour",
    "1d": "1-day",
  };
  return `${names[resolution.interval] ?? resolution.interval} means with min–max band`;
}

/**
 * The range to load for a view: the view widened by half its span on each side (so small pans
 * need no new request), clipped to the data, aligned to the bucket width for aggregates.
 */
export function loadWindow(
  view: { start: number; end: number },
  data: { start: number; end: number },
  resolution: Resolution,
): { start: number; end: number } {
  const span = view.end - view.start;
  let start = Math.max(data.start, view.start - span / 2);
  let end = Math.min(data.end, view.end + span / 2);
  if (resolution.kind === "aggregated") {
    const step = resolution.intervalS * 1000;
    start = Math.floor(start / step) * step;
    end = Math.ceil(end / step) * step;
  } else {
    start = Math.floor(start / 1000) * 1000;
    end = Math.ceil(end / 1000) * 1000 + 1000; // end is exclusive: include the last sample
  }
  return { start, end: Math.max(end, start + 1000) };
}

/** True if ``loaded`` (with ``resolution``) still serves ``view`` (clipped to the data). */
export function covers(
  loaded: { start: number; end: number; resolution: Resolution } | null,
  view: { start: number; end: number },
  data: { start: number; end: number },
  resolution: Resolution,
): boolean {
  if (!loaded) return false;
  const same =
    loaded.resolution.kind === resolution.kind &&
    (resolution.kind === "raw" ||
      (loaded.resolution.kind === "aggregated" && loaded.resolution.interval === resolution.interval));
  const start = Math.max(view.start, data.start);
  const end = Math.min(view.end, data.end);
  return same && loaded.start <= start && loaded.end >= end;
}
