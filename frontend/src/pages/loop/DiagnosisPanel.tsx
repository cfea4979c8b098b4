// Diagnosis findings stored last for the loop, and "Diagnose the last hour" for engineers: the
// run's own answer replaces them in the panel (marked as on demand, with the window it covers
// and when it ran) until the user goes back to the stored findings.

import { useState } from "react";

import { useApi } from "../../api/ApiProvider";
import { describeError } from "../../api/client";
import type { Finding, OnDemandDiagnosis, SpanSource } from "../../api/types";
import { useAsync } from "../../api/useAsync";
import { AsyncView } from "../../components/AsyncView";
import { FindingCard } from "../../components/FindingCard";
import { useAuth } from "../../auth/AuthProvider";
import { formatTime, labelOf } from "../../lib/format";

export interface OnDemandRun {
  diagnosis: OnDemandDiagnosis;
  /** When the run finished (ISO). */
  at: string;
}

/** The findings of an on-demand run, shaped like stored ones (its window, trigger on_demand). */
export function onDemandFindings(run: OnDemandRun): Finding[] {
  const { diagnosis } = run;
  return diagnosis.findings.map((finding) => ({
    ...finding,
    loop_id: diagnosis.loop_id,
    window_start: diagnosis.window_start,
    window_end: diagnosis.window_end,
    trigger: "on_demand",
    created_at: run.at,
  }));
}

function OnDemandResult({ run, spanSource, onBack }: { run: OnDemandRun; spanSource: SpanSource | null; onBack: () => void }) {
  const items = onDemandFindings(run);
  const { diagnosis } = run;
  return (
    <div className="on-demand" data-testid="on-demand-diagnosis">
      <p role="status">
        <strong>On-demand diagnosis</strong> of {formatTime(diagnosis.window_start)} – {formatTime(diagnosis.window_end)}, run at{" "}
        {formatTime(run.at)} · {diagnosis.samples.toLocaleString("en-US")} samples
        {diagnosis.primary ? ` · most likely cause: ${labelOf(diagnosis.primary)}` : ""}
      </p>
      {items.length === 0 ? (
        <p className="state state-empty">No problem found in this window.</p>
      ) : (
        <div data-testid="findings">
          {items.map((finding) => (
            <FindingCard key={finding.category} finding={finding} spanSource={spanSource} />
          ))}
        </div>
      )}
      {Object.keys(diagnosis.notes ?? {}).length > 0 && (
        <ul className="small muted">
          {Object.entries(diagnosis.notes).map(([name, note]) => (
            <li key={name}>
              {labelOf(name)}: {note}
            </li>
          ))}
        </ul>
      )}
      <button type="button" className="secondary" onClick={onBack}>
        Back to the stored findings
      </button>
    </div>
  );
}

export function DiagnosisPanel({ loopId, spanSource = null }: { loopId: string; spanSource?: SpanSource | null }) {
  const api = useApi();
  const auth = useAuth();
  const findings = useAsync((signal) => api.findings(loopId, signal), [api, loopId]);
  const [running, setRunning] = useState(false);
  const [runError, setRunError] = useState<string | null>(null);
  const [onDemand, setOnDemand] = useState<OnDemandRun | null>(null);

  const run = async () => {
    setRunning(true);
    setRunError(null);
    try {
      const diagnosis = await api.runDiagnosis(loopId);
      setOnDemand({ diagnosis, at: new Date().toISOString() });
      findings.reload();
    } catch (failure) {
      setRunError(describeError(failure));
    } finally {
      setRunning(false);
    }
  };

  return (
    <section className="panel" aria-labelledby="diagnosis-heading">
      <div className="panel-head">
        <h2 id="diagnosis-heading">Diagnosis</h2>
        {auth.can("engineer") && (
          <button type="button" onClick={run} disabled={running} aria-busy={running}>
            {running ? "Diagnosing…" : "Diagnose the last hour"}
          </button>
        )}
      </div>
      {runError && (
        <p className="state state-error" role="alert">
          The diagnosis could not run: {runError}
        </p>
      )}
      {onDemand ? (
        <OnDemandResult run={onDemand} spanSource={spanSource} onBack={() => setOnDemand(null)} />
      ) : (
        <AsyncView
          state={findings.state}
          what="the diagnosis"
          onRetry={findings.reload}
          isEmpty={(data) => data.items.length === 0}
          empty="No findings: the diagnostics service has not flagged a problem for this loop's latest analysed window."
        >
          {(data) => (
            <div data-testid="findings">
              {data.items.map((finding) => (
                <FindingCard key={`${finding.category}-${finding.window_start}`} finding={finding} spanSource={spanSource} />
              ))}
            </div>
          )}
        </AsyncView>
      )}
    </section>
  );
}
