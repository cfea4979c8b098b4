// "% of span" figures and where their span comes from: the configured PV range (pv_lo/pv_hi)
// or an estimate from the window's data, which every such figure must say.

import type { SpanSource } from "../api/types";
import { formatNumber, labelOf } from "./format";

export const ESTIMATED_SPAN_HELP =
  "Estimated span: no PV range (pv_lo/pv_hi) is configured for this loop, so the span is the smallest range from zero that holds the window's data. " +
  "Percentages of it are upper bounds; set the PV range on the loop's configuration page for exact figures.";
export const CONFIGURED_SPAN_HELP = "Of the configured PV range (pv_hi − pv_lo).";

/** The span source of a KPI row (null when the row has none: no span, or an old row). */
export function spanSourceOf(row: Record<string, unknown> | null | undefined): SpanSource | null {
  const value = row?.span_source;
  return value === "configured" || value === "estimated" ? value : null;
}

/** "of span" / "of est. span" / "of span (source unknown)". */
export function spanUnit(source: SpanSource | null): string {
  if (source === "estimated") return "of est. span";
  if (source === "configured") return "of span";
  return "of span";
}

/** Tooltip of a "% of span" figure. */
export function spanHelp(source: SpanSource | null): string {
  if (source === "estimated") return ESTIMATED_SPAN_HELP;
  if (source === "configured") return CONFIGURED_SPAN_HELP;
  return "Span source not recorded for this window.";
}

/** "0.12 % of est. span" (or "–" without a value). */
export function formatPercentOfSpan(value: number | null | undefined, source: SpanSource | null, digits = 2): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return "–";
  return `${formatNumber(value, digits)} % ${spanUnit(source)}`;
}

/** Evidence values that are percentages of the PV span (the OP span is always configured). */
export const PV_SPAN_EVIDENCE = new Set(["amplitude_pct_of_span", "noise_pct_of_span", "error_mean_pct", "error_std_pct"]);

/** Label of an evidence entry, marked when it is a percentage of an estimated PV span. */
export function evidenceLabel(key: string, source: SpanSource | null): string {
  const label = labelOf(key);
  return source === "estimated" && PV_SPAN_EVIDENCE.has(key) ? `${label} (of est. span)` : label;
}
