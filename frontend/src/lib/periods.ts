// Assessment periods: what the fleet ranking, a loop's status and its health cover.

import type { Period } from "../api/types";

export const PERIODS: Period[] = ["window", "shift", "day", "week"];
export const DEFAULT_PERIOD: Period = "day";

const TEXT: Record<Period, { short: string; long: string }> = {
  window: { short: "Window", long: "the latest KPI window" },
  shift: { short: "Shift", long: "the last shift (8 h)" },
  day: { short: "Day", long: "the last day" },
  week: { short: "Week", long: "the last week" },
};

/** The period of an address parameter (unknown or missing: the default, a day). */
export function periodOf(value: string | null | undefined): Period {
  return value && (PERIODS as string[]).includes(value) ? (value as Period) : DEFAULT_PERIOD;
}

export function periodLabel(period: Period): string {
  return TEXT[period].short;
}

/** "the last day" */
export function periodDescription(period: Period): string {
  return TEXT[period].long;
}

/** Address parameters with ``period`` set (left out for the default, so links stay short). */
export function withPeriod(params: URLSearchParams, period: Period): URLSearchParams {
  const out = new URLSearchParams(params);
  if (period === DEFAULT_PERIOD) out.delete("period");
  else out.set("period", period);
  return out;
}
