// One diagnosis finding: category, severity and confidence, recommendation, evidence.

import type { ExplainedFinding, Finding, SpanSource } from "../api/types";
import { formatEvidence, formatShare, formatTime, labelOf } from "../lib/format";
import { ESTIMATED_SPAN_HELP, PV_SPAN_EVIDENCE, evidenceLabel } from "../lib/spans";

/** ``spanSource``: the loop's span source, to mark evidence in % of an estimated PV span. */
export function FindingCard({ finding, spanSource = null }: { finding: Finding; spanSource?: SpanSource | null }) {
  const severity = Math.max(0, Math.min(1, finding.severity));
  return (
    <article className={`finding${severity < 0.5 ? " minor" : ""}`} aria-label={`Finding: ${labelOf(finding.category)}`}>
      <h3>
        <span>{labelOf(finding.category)}</span>
        <span className="small muted">
          Severity{" "}
          <span className="meter" aria-hidden="true">
            <span style={{ width: `${severity * 100}%` }} />
          </span>{" "}
          {formatShare(finding.severity, 0)} · Confidence {formatShare(finding.confidence, 0)}
        </span>
      </h3>
      <p className="recommendation">
        <strong>Recommendation: </strong>
        {finding.recommendation}
      </p>
      <details open>
        <summary>Evidence</summary>
        <dl>
          {Object.entries(finding.evidence).map(([key, value]) => (
            <div key={key} style={{ display: "contents" }}>
              <dt
                className={spanSource === "estimated" && PV_SPAN_EVIDENCE.has(key) ? "span-estimated" : undefined}
                title={spanSource === "estimated" && PV_SPAN_EVIDENCE.has(key) ? ESTIMATED_SPAN_HELP : undefined}
              >
                {evidenceLabel(key, spanSource)}
              </dt>
              <dd>{formatEvidence(value)}</dd>
            </div>
          ))}
        </dl>
      </details>
      {finding.explained && finding.explained.length > 0 && (
        <ExplainedList findings={finding.explained} rootCategory={finding.category} />
      )}
      <p className="small muted" style={{ margin: "0.5rem 0 0" }}>
        Window {formatTime(finding.window_start)} – {formatTime(finding.window_end)} · {finding.trigger}
      </p>
    </article>
  );
}

/** The findings a root cause explains, nested under it: symptoms, not separate problems. */
function ExplainedList({ findings, rootCategory }: { findings: ExplainedFinding[]; rootCategory: string }) {
  const root = labelOf(rootCategory).toLowerCase();
  return (
    <section className="explained" aria-label={`Explained by ${root}`}>
      <h4 className="small">Also seen, explained by {root}</h4>
      <ul>
        {findings.map((item, index) => (
          <li key={`${item.category}-${index}`}>
            <strong>{labelOf(item.category)}</strong>{" "}
            <span className="small muted">
              explained by {labelOf(item.explained_by).toLowerCase()} · severity {formatShare(item.severity, 0)} ·
              confidence {formatShare(item.confidence, 0)}
            </span>
          </li>
        ))}
      </ul>
    </section>
  );
}
