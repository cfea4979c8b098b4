// A loop's period assessment for display: status shares, persistent findings, change.

import type { Assessment, LoopStatus, PeriodFinding } from "../api/types";
import { LOOP_STATUSES } from "../api/types";
import { formatNumber } from "./format";

export interface StatusShare {
  status: LoopStatus;
  share: number;
}

/** The statuses held for part of the period, in the fixed status order, shares 0..1. */
export function statusShares(assessment: Pick<Assessment, "status_shares">): StatusShare[] {
  return LOOP_STATUSES.map((status) => ({ status, share: Number(assessment.status_shares[status] ?? 0) }))
    .filter((item) => Number.isFinite(item.share) && item.share > 0);
}

/** Findings ordered by how much they weigh over the period: persistence x mean severity. */
export function persistentFindings(findings: PeriodFinding[]): PeriodFinding[] {
  return [...findings].sort(
    (a, b) => b.persistence * b.mean_severity - a.persistence * a.mean_severity || a.category.localeCompare(b.category),
  );
}

/** Health change against the previous period: "+4.2", "−3.0", "±0.0"; null when unknown. */
export function healthChange(assessment: Pick<Assessment, "change" | "previous">): { text: string; direction: "better" | "worse" | "same" } | null {
  const delta = assessment.change?.health_score;
  if (delta === null || delta === undefined || !Number.isFinite(delta) || !assessment.previous) return null;
  const rounded = Math.round(delta * 10) / 10;
  if (rounded === 0) return { text: "±0.0", direction: "same" };
  return rounded > 0 ? { text: `+${formatNumber(rounded, 1)}`, direction: "better" } : { text: `−${formatNumber(-rounded, 1)}`, direction: "worse" };
}

/** The reason a loop or period is not assessed, from whichever field the answer carries. */
export function notAssessedReason(item: { reason?: string | null; not_assessed_reason?: string | null; reasons?: unknown } | null | undefined): string | null {
  if (!item) return null;
  if (item.not_assessed_reason) return item.not_assessed_reason;
  if (item.reason) return item.reason;
  const reasons = item.reasons as Record<string, unknown> | null | undefined;
  return typeof reasons?.status === "string" ? reasons.status : null;
}
