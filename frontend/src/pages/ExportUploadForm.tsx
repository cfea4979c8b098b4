// Upload of historian exports and their tag map (loops admin page): every file is validated by
// the gateway before anything is written; the report, or the problems with file, line and
// column, are shown.

import { useState, type FormEvent } from "react";

import { useApi } from "../api/ApiProvider";
import { ApiError, describeError } from "../api/client";
import type { ExportImport, ImportProblem } from "../api/types";
import { formatTime } from "../lib/format";

/** The problems of a refused upload (422 ``problems``), else none. */
export function problemsOf(failure: unknown): ImportProblem[] {
  if (!(failure instanceof ApiError) || failure.status !== 422) return [];
  const listed = (failure.problem as { problems?: unknown } | null)?.problems;
  return Array.isArray(listed) ? (listed as ImportProblem[]) : [];
}

/** "b.csv: line 3: FIC1.PV: not a number: 'one'" */
export function problemText(problem: ImportProblem): string {
  return `${problem.file}: line ${problem.line ?? "?"}: ${problem.column}: ${problem.reason}`;
}

function Report({ report }: { report: ExportImport }) {
  return (
    <div aria-label="Import report">
      <p>
        {report.dry_run
          ? `Valid: ${report.values} values of ${report.loops.length} loops; nothing written (validation only).`
          : `Imported ${report.samples_stored} samples of ${report.loops.length} loops; ${report.catalogue_loops} loops in the catalogue.`}{" "}
        {report.bad_quality} bad-quality values not stored, {report.bad_rows} rows skipped. Time range {formatTime(report.start)} – {formatTime(report.end)}.
      </p>
      <div className="table-wrap">
        <table>
          <thead>
            <tr>
              <th scope="col">Loop</th>
              <th scope="col" className="num">
                Samples
              </th>
              <th scope="col">First</th>
              <th scope="col">Last</th>
            </tr>
          </thead>
          <tbody>
            {report.loops.map((loop) => (
              <tr key={loop.loop_id}>
                <td>{loop.loop_id}</td>
                <td className="num">{loop.samples}</td>
                <td>{formatTime(loop.start)}</td>
                <td>{formatTime(loop.end)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {report.files.some((file) => file.unmapped_tags.length > 0) && (
        <p className="small muted">
          Not in the tag map (ignored):{" "}
          {report.files
            .filter((file) => file.unmapped_tags.length > 0)
            .map((file) => `${file.file}: ${file.unmapped_tags.join(", ")}`)
            .join("; ")}
        </p>
      )}
      {report.skipped.length > 0 && (
        <ul aria-label="Skipped rows">
          {report.skipped.map((problem) => (
            <li key={problemText(problem)}>{problemText(problem)}</li>
          ))}
        </ul>
      )}
      {report.next_steps.length > 0 && (
        <p className="small muted">
          Aggregates and KPI history of the range: <code>{report.next_steps.join(" && ")}</code>
        </p>
      )}
    </div>
  );
}

export function ExportUploadForm({ onDone }: { onDone: () => void }) {
  const api = useApi();
  const [exports, setExports] = useState<File[]>([]);
  const [tagMap, setTagMap] = useState<File | null>(null);
  const [timezone, setTimezone] = useState("");
  const [dryRun, setDryRun] = useState(false);
  const [skipBadRows, setSkipBadRows] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [problems, setProblems] = useState<ImportProblem[]>([]);
  const [report, setReport] = useState<ExportImport | null>(null);
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setError(null);
    setProblems([]);
    setReport(null);
    if (exports.length === 0 || !tagMap) {
      setError("Choose at least one export file and the tag map first.");
      return;
    }
    setBusy(true);
    try {
      const answer = await api.importExports(exports, tagMap, { timezone, dryRun, skipBadRows });
      setReport(answer);
      if (!answer.dry_run) onDone();
    } catch (failure) {
      setError(describeError(failure));
      setProblems(problemsOf(failure));
    } finally {
      setBusy(false);
    }
  };
  return (
    <form onSubmit={submit} className="panel" aria-label="Upload historian exports">
      <h2>Upload historian exports</h2>
      <p className="hint">
        Wide or long CSV, or Parquet, with a tag map (CSV or JSON: loop_id, pv_tag, sp_tag, op_tag, mode_tag, scales, …). Every file is checked
        before anything is written; a bad row refuses the whole upload unless bad rows are skipped.
      </p>
      {error && (
        <div className="state state-error" role="alert">
          {error}
          {problems.length > 0 && (
            <ul aria-label="Problems">
              {problems.map((problem) => (
                <li key={problemText(problem)}>{problemText(problem)}</li>
              ))}
            </ul>
          )}
        </div>
      )}
      {report && (
        <div className="notice notice-success" role="status">
          <Report report={report} />
        </div>
      )}
      <div className="form-grid">
        <div className="field">
          <label htmlFor="upload-exports">Export files</label>
          <input
            id="upload-exports"
            type="file"
            multiple
            accept=".csv,.txt,.parquet,.pq,text/csv"
            onChange={(event) => setExports(Array.from(event.target.files ?? []))}
          />
        </div>
        <div className="field">
          <label htmlFor="upload-tag-map">Tag map</label>
          <input id="upload-tag-map" type="file" accept=".csv,.json,.txt,text/csv,application/json" onChange={(event) => setTagMap(event.target.files?.[0] ?? null)} />
        </div>
        <div className="field">
          <label htmlFor="upload-timezone">Timezone of timestamps without one</label>
          <input id="upload-timezone" value={timezone} placeholder="e.g. Europe/Berlin" onChange={(event) => setTimezone(event.target.value)} />
        </div>
      </div>
      <div className="toolbar" style={{ marginTop: "1rem", alignItems: "center" }}>
        <label className="field-inline">
          <input type="checkbox" checked={dryRun} onChange={(event) => setDryRun(event.target.checked)} /> Dry run (validate only)
        </label>
        <label className="field-inline">
          <input type="checkbox" checked={skipBadRows} onChange={(event) => setSkipBadRows(event.target.checked)} /> Skip bad rows
        </label>
        <button type="submit" disabled={busy} aria-busy={busy}>
          {busy ? "Uploading…" : "Upload exports"}
        </button>
      </div>
    </form>
  );
}
