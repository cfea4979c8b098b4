// "Export CSV": downloads the gateway's CSV answer of a query (with the user's token).

import { useState } from "react";

import { describeError } from "../api/client";

export function CsvButton({ download, label = "Export CSV" }: { download: () => Promise<void>; label?: string }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const run = async () => {
    setBusy(true);
    setError(null);
    try {
      await download();
    } catch (failure) {
      setError(describeError(failure));
    } finally {
      setBusy(false);
    }
  };
  return (
    <span>
      <button type="button" className="secondary" onClick={run} disabled={busy} aria-busy={busy}>
        {busy ? "Exporting…" : `⤓ ${label}`}
      </button>
      {error && (
        <span role="alert" className="field-error" style={{ marginLeft: "0.5rem" }}>
          Export failed: {error}
        </span>
      )}
    </span>
  );
}
