// Diagnosis findings of the latest analysed window, and "Diagnose now" for engineers.

import { useState } from "react";

import { useApi } from "../../api/ApiProvider";
import { describeError } from "../../api/client";
import { useAsync } from "../../api/useAsync";
import { AsyncView } from "../../components/AsyncView";
import { FindingCard } from "../../components/FindingCard";
import { useAuth } from "../../auth/AuthProvider";

export function DiagnosisPanel({ loopId }: { loopId: string }) {
  const api = useApi();
  const auth = useAuth();
  const findings = useAsync((signal) => api.findings(loopId, signal), [api, loopId]);
  const [running, setRunning] = useState(false);
  const [runError, setRunError] = useState<string | null>(null);

  const run = async () => {
    setRunning(true);
    setRunError(null);
    try {
      await api.runDiagnosis(loopId);
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
              <FindingCard key={`${finding.category}-${finding.window_start}`} finding={finding} />
            ))}
          </div>
        )}
      </AsyncView>
    </section>
  );
}
