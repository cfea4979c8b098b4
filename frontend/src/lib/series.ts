// Columnar API answers -> chart series (seconds on x), mode bands, live appends, PV-OP pairs.

import type { AggregatedData, KpiRow, RawData, RealtimeData } from "../api/types";

export interface ModeSegment {
  /** seconds since the epoch */
  start: number;
  end: number;
  mode: string;
}

export interface TrendData {
  /** sample or bucket times, seconds since the epoch, ascending */
  x: number[];
  pv: (number | null)[];
  sp: (number | null)[];
  op: (number | null)[];
  /** aggregated only: PV min and max per bucket */
  pvMin?: (number | null)[];
  pvMax?: (number | null)[];
  modes: ModeSegment[];
  kind: "raw" | "aggregated";
  /** bucket width (aggregated) or the typical sample period (raw), seconds */
  stepS: number;
}

export const toSeconds = (iso: string): number => Date.parse(iso) / 1000;

function column(values: (number | null)[] | null | undefined, length: number): (number | null)[] {
  if (!values) return new Array<number | null>(length).fill(null);
  return values.map((value) => (typeof value === "number" && Number.isFinite(value) ? value : null));
}

/** The median step of ascending times (robust to gaps), or ``fallback`` with < 2 points. */
export function typicalStep(x: number[], fallback = 1): number {
  if (x.length < 2) return fallback;
  const count = Math.min(x.length - 1, 1000);
  const steps: number[] = [];
  const stride = Math.max(1, Math.floor((x.length - 1) / count));
  for (let index = stride; index < x.length; index += stride) steps.push(x[index] - x[index - stride]);
  steps.sort((a, b) => a - b);
  return steps[Math.floor(steps.length / 2)] / stride || fallback;
}

/**
 * Runs of equal mode as segments: each run lasts until the next different mode starts (a gap
 * longer than ``maxGapS`` ends it early). Samples without a mode end the current run.
 */
export function modeSegments(x: number[], modes: (string | null)[], stepS: number, maxGapS = stepS * 5): ModeSegment[] {
  const segments: ModeSegment[] = [];
  let current: ModeSegment | null = null;
  for (let index = 0; index < x.length; index += 1) {
    const mode = modes[index] ?? null;
    const time = x[index];
    if (current && (mode !== current.mode || time - current.end > maxGapS)) {
      segments.push(current);
      current = null;
    }
    if (mode === null) continue;
    if (current) {
      current.end = time + stepS;
    } else {
      current = { start: time, end: time + stepS, mode };
    }
  }
  if (current) segments.push(current);
  return segments;
}

export function fromRaw(raw: RawData): TrendData {
  const x = raw.ts.map(toSeconds);
  const stepS = typicalStep(x);
  return {
    x,
    pv: column(raw.pv, x.length),
    sp: column(raw.sp, x.length),
    op: column(raw.op, x.length),
    modes: raw.mode ? modeSegments(x, raw.mode, stepS) : [],
    kind: "raw",
    stepS,
  };
}

export function fromAggregated(data: AggregatedData, modes: ModeSegment[] = []): TrendData {
  const x = data.ts.map(toSeconds);
  return {
    x,
    pv: column(data.pv, x.length),
    sp: column(data.sp, x.length),
    op: column(data.op, x.length),
    pvMin: column(data.pv_min, x.length),
    pvMax: column(data.pv_max, x.length),
    modes,
    kind: "aggregated",
    stepS: data.interval_s,
  };
}

/** The mode with the largest share of a KPI row's ``mode_shares``, or null. */
export function dominantMode(shares: unknown): string | null {
  if (!shares || typeof shares !== "object") return null;
  let best: string | null = null;
  let bestShare = -Infinity;
  for (const [mode, share] of Object.entries(shares as Record<string, unknown>)) {
    if (typeof share === "number" && share > bestShare) {
      best = mode;
      bestShare = share;
    }
  }
  return best;
}

/** Mode segments of an aggregated view: each KPI window's dominant mode, adjacent ones merged. */
export function modeSegmentsFromKpis(rows: KpiRow[]): ModeSegment[] {
  const segments: ModeSegment[] = [];
  for (const row of rows) {
    const mode = dominantMode(row.mode_shares);
    if (!mode || !row.window_start || !row.window_end) continue;
    const start = toSeconds(row.window_start);
    const end = toSeconds(row.window_end);
    const last = segments[segments.length - 1];
    if (last && last.mode === mode && Math.abs(last.end - start) < 1) last.end = end;
    else segments.push({ start, end, mode });
  }
  return segments;
}

/** Share of the covered time per mode, largest first. */
export function modeShares(segments: ModeSegment[]): { mode: string; share: number }[] {
  const totals = new Map<string, number>();
  let all = 0;
  for (const segment of segments) {
    const length = Math.max(0, segment.end - segment.start);
    totals.set(segment.mode, (totals.get(segment.mode) ?? 0) + length);
    all += length;
  }
  if (all <= 0) return [];
  return [...totals.entries()]
    .map(([mode, total]) => ({ mode, share: total / all }))
    .sort((a, b) => b.share - a.share);
}

/**
 * A raw trend with the latest realtime sample appended (if newer than the last point), the
 * oldest points dropped beyond ``maxPoints``. Returns the same object when nothing changes.
 */
export function appendRealtime(data: TrendData, sample: RealtimeData, maxPoints = 200_000): TrendData {
  if (data.kind !== "raw" || !sample.ts) return data;
  const time = toSeconds(sample.ts);
  const last = data.x.length ? data.x[data.x.length - 1] : -Infinity;
  if (!(time > last)) return data;
  const drop = Math.max(0, data.x.length + 1 - maxPoints);
  const value = (v: number | null | undefined) => (typeof v === "number" && Number.isFinite(v) ? v : null);
  const modes = data.modes.slice();
  const mode = sample.mode ?? null;
  const tail = modes[modes.length - 1];
  if (mode !== null) {
    if (tail && tail.mode === mode && time - tail.end <= data.stepS * 5) modes[modes.length - 1] = { ...tail, end: time + data.stepS };
    else modes.push({ start: time, end: time + data.stepS, mode });
  }
  return {
    ...data,
    x: [...data.x.slice(drop), time],
    pv: [...data.pv.slice(drop), value(sample.pv)],
    sp: [...data.sp.slice(drop), value(sample.sp)],
    op: [...data.op.slice(drop), value(sample.op)],
    modes,
  };
}

/** PV-OP pairs where both are known, evenly thinned to at most ``maxPoints`` (in time order). */
export function pvOpPairs(data: TrendData, maxPoints = 20_000): { op: number[]; pv: number[] } {
  const op: number[] = [];
  const pv: number[] = [];
  const stride = Math.max(1, Math.ceil(data.x.length / maxPoints));
  for (let index = 0; index < data.x.length; index += stride) {
    const o = data.op[index];
    const p = data.pv[index];
    if (o !== null && p !== null) {
      op.push(o);
      pv.push(p);
    }
  }
  return { op, pv };
}

/** The first index with x >= ``start`` and one past the last with x < ``end`` (binary search). */
export function visibleRange(x: number[], start: number, end: number): [number, number] {
  const lowerBound = (target: number) => {
    let low = 0;
    let high = x.length;
    while (low < high) {
      const middle = (low + high) >> 1;
      if (x[middle] < target) low = middle + 1;
      else high = middle;
    }
    return low;
  };
  return [lowerBound(start), lowerBound(end)];
}

/** The part of a trend within [start, end) seconds. */
export function sliceTrend(data: TrendData, start: number, end: number): TrendData {
  const [from, to] = visibleRange(data.x, start, end);
  return {
    ...data,
    x: data.x.slice(from, to),
    pv: data.pv.slice(from, to),
    sp: data.sp.slice(from, to),
    op: data.op.slice(from, to),
    pvMin: data.pvMin?.slice(from, to),
    pvMax: data.pvMax?.slice(from, to),
    modes: data.modes.filter((segment) => segment.end > start && segment.start < end),
  };
}

/** A raw trend extended with the samples of ``more`` newer than its last point. */
export function appendRaw(data: TrendData, more: TrendData, maxPoints = 200_000): TrendData {
  if (data.kind !== "raw" || more.x.length === 0) return data;
  const last = data.x.length ? data.x[data.x.length - 1] : -Infinity;
  const from = visibleRange(more.x, last + 1e-6, Infinity)[0];
  if (from >= more.x.length) return data;
  const total = data.x.length + more.x.length - from;
  const drop = Math.max(0, total - maxPoints);
  const join = <T,>(a: T[], b: T[]) => [...a.slice(drop), ...b.slice(from)];
  const modes = data.modes.slice();
  for (const segment of more.modes) {
    if (segment.end <= last) continue;
    const tail = modes[modes.length - 1];
    const start = Math.max(segment.start, last);
    if (tail && tail.mode === segment.mode && start - tail.end <= data.stepS * 5) modes[modes.length - 1] = { ...tail, end: segment.end };
    else modes.push({ ...segment, start });
  }
  return { ...data, x: join(data.x, more.x), pv: join(data.pv, more.pv), sp: join(data.sp, more.sp), op: join(data.op, more.op), modes };
}
