// A loop status as a labelled pill (text and colour: never colour alone).

import type { LoopStatus } from "../api/types";

const TEXT: Record<LoopStatus, string> = { good: "Good", fair: "Fair", poor: "Poor", offline: "Offline", not_assessed: "Not assessed" };

/** ``reason``: why a loop is not assessed, as the badge's tooltip and accessible name. */
export function StatusBadge({ status, reason }: { status: LoopStatus | null | undefined; reason?: string | null }) {
  const value: LoopStatus = status && status in TEXT ? status : "offline";
  if (value === "not_assessed") {
    const why = reason || "too little data to judge";
    return (
      <span className="status status-not_assessed" title={`Not assessed: ${why}`} aria-label={`Not assessed: ${why}`} data-reason={why}>
        {TEXT[value]}
      </span>
    );
  }
  return <span className={`status status-${value}`}>{TEXT[value]}</span>;
}

export function statusText(status: LoopStatus): string {
  return TEXT[status];
}

/** Colour of a health score 0..100 (bars and histogram). */
export function healthColour(score: number | null | undefined): string {
  if (score === null || score === undefined) return "#8a96a3";
  if (score >= 80) return "#1c7c3c";
  if (score >= 60) return "#d99a00";
  return "#b3261e";
}

export function HealthBar({ score }: { score: number | null | undefined }) {
  const known = typeof score === "number" && Number.isFinite(score);
  const width = known ? Math.max(0, Math.min(100, score)) : 0;
  return (
    <div className="health-cell">
      <span className="num" style={{ minWidth: "2.5rem" }}>
        {known ? score.toFixed(1) : "–"}
      </span>
      <div className="health-bar" aria-hidden="true">
        <span style={{ width: `${width}%`, background: healthColour(score) }} />
      </div>
    </div>
  );
}
