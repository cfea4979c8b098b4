// A loop's rating over the chosen period (shift, day, week): status and health, the share of
// time in each status, the findings that persisted, the worst window and the change against
// the previous period.

import type { Assessment, Period } from "../../api/types";
import { HealthBar, StatusBadge, statusText } from "../../components/StatusBadge";
import { healthChange, notAssessedReason, persistentFindings, statusShares } from "../../lib/assessment";
import { formatNumber, formatShare, formatTime, labelOf } from "../../lib/format";
import { periodDescription, periodLabel } from "../../lib/periods";

const SHARE_COLOUR: Record<string, string> = {
  good: "var(--good)",
  fair: "#d99a00",
  poor: "var(--poor)",
  offline: "var(--offline)",
  not_assessed: "#b8c4d1",
};

export function AssessmentPanel({ assessment, period }: { assessment: Assessment; period: Period }) {
  const shares = statusShares(assessment);
  const findings = persistentFindings(assessment.findings);
  const change = healthChange(assessment);
  const reason = notAssessedReason(assessment);
  const previousName = periodDescription(period).replace("the last", "the previous");
  return (
    <section className="panel" aria-labelledby="assessment-heading" data-testid="assessment">
      <div className="panel-head">
        <h2 id="assessment-heading">{periodLabel(period)} assessment</h2>
        <span className="small muted">
          {formatTime(assessment.start)} – {formatTime(assessment.end)} · {assessment.windows_assessed} of {assessment.windows_total} windows assessed
        </span>
      </div>
      <div className="toolbar" style={{ alignItems: "center" }}>
        <StatusBadge status={assessment.status} reason={reason} />
        <div style={{ width: "10rem" }} aria-label={`Health over the ${periodLabel(period).toLowerCase()} ${assessment.health_score ?? "unknown"}`}>
          <HealthBar score={assessment.health_score} />
        </div>
        <span>
          Main problem: <strong>{labelOf(assessment.main_problem)}</strong>
        </span>
        <span data-testid="health-change">
          {change ? (
            <>
              Health <strong className={`change-${change.direction}`}>{change.text}</strong> against {previousName}
              {assessment.previous ? ` (was ${statusText(assessment.previous.status)})` : ""}
            </>
          ) : (
            <span className="muted">No previous period to compare with</span>
          )}
        </span>
      </div>
      {assessment.status === "not_assessed" && (
        <p className="notice notice-info" data-testid="not-assessed-reason">
          Not assessed: {reason ?? "too little data in the period to judge the loop"}. It is left out of health, ranking and roll-ups.
        </p>
      )}

      <h3>Time in each status</h3>
      <div className="share-bar" aria-hidden="true">
        {shares.map((item) => (
          <span key={item.status} style={{ width: `${item.share * 100}%`, background: SHARE_COLOUR[item.status] }} />
        ))}
      </div>
      <table aria-label="Share of the period in each status" style={{ maxWidth: "24rem" }}>
        <tbody>
          {shares.map((item) => (
            <tr key={item.status}>
              <th scope="row">{statusText(item.status)}</th>
              <td className="num">{formatShare(item.share, 0)}</td>
            </tr>
          ))}
        </tbody>
      </table>

      <h3>Persistent findings</h3>
      {findings.length === 0 ? (
        <p className="muted">No finding in this period.</p>
      ) : (
        <table aria-label="Findings over the period">
          <thead>
            <tr>
              <th scope="col">Finding</th>
              <th scope="col" className="num" title="Share of the assessed windows with this finding">
                Present in
              </th>
              <th scope="col" className="num">
                Mean severity
              </th>
            </tr>
          </thead>
          <tbody>
            {findings.map((finding) => (
              <tr key={finding.category}>
                <td>{labelOf(finding.category)}</td>
                <td className="num">{formatShare(finding.persistence, 0)} of windows</td>
                <td className="num">{formatShare(finding.mean_severity, 0)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}

      <h3>Worst window</h3>
      {assessment.worst_window ? (
        <p data-testid="worst-window">
          {formatTime(assessment.worst_window.start)} – {formatTime(assessment.worst_window.end)} · health{" "}
          {formatNumber(assessment.worst_window.health_score, 1)} · <StatusBadge status={assessment.worst_window.status} />
        </p>
      ) : (
        <p className="muted">No assessed window in this period.</p>
      )}
    </section>
  );
}
