// Long-term trends of a loop and the fleet, and a loop's before/after comparison.

import type { ApiClient } from "./client";

export type TrendResolution = "hour" | "day" | "week";

export interface TrendPoint {
  bucket_start: string;
  group: string | null;
  windows: number;
  loops: number;
  means: Record<string, number | null>;
  status_shares: Record<string, number>;
}

export interface Trend {
  loop_id?: string | null;
  by?: string | null;
  weighting?: string | null;
  start: string;
  end: string;
  resolution: TrendResolution;
  kpis: string[];
  count: number;
  items: TrendPoint[];
}

export interface KpiChange {
  kpi: string;
  before: number | null;
  after: number | null;
  change: number | null;
  change_pct: number | null;
  windows_before: number;
  windows_after: number;
}

export interface Comparison {
  loop_id: string;
  at: string;
  days: number;
  before_start: string;
  after_end: string;
  windows_before: number;
  windows_after: number;
  items: KpiChange[];
}

const loopPath = (loopId: string) => `/loops/${encodeURIComponent(loopId)}`;

/** The resolution that keeps a range of ``days`` readable: days up to 90 days, weeks beyond. */
export function resolutionFor(days: number): TrendResolution {
  return days > 90 ? "week" : "day";
}

/** ``days`` back from ``now`` as the start / end of a trend query. */
export function rangeOf(days: number, now: Date = new Date()): { start: string; end: string } {
  return { start: new Date(now.getTime() - days * 86_400_000).toISOString(), end: now.toISOString() };
}

export function loopTrend(http: ApiClient, loopId: string, days: number, signal?: AbortSignal, now?: Date): Promise<Trend> {
  return http.get<Trend>(`${loopPath(loopId)}/trends`, { ...rangeOf(days, now), resolution: resolutionFor(days) }, signal);
}

export function fleetTrend(http: ApiClient, days: number, signal?: AbortSignal, now?: Date): Promise<Trend> {
  return http.get<Trend>("/fleet/trends", { ...rangeOf(days, now), resolution: resolutionFor(days), by: "plant" }, signal);
}

export function compareLoop(http: ApiClient, loopId: string, at: string, days: number, signal?: AbortSignal): Promise<Comparison> {
  return http.get<Comparison>(`${loopPath(loopId)}/compare`, { at, days }, signal);
}
