// Loops admin (admin role): register loops, change their names, units and areas, delete them,
// import a plant's loop list (CSV or JSON, PV ranges included) and upload historian exports.

import { useState, type FormEvent } from "react";
import { Link } from "react-router-dom";

import { useApi } from "../api/ApiProvider";
import { ApiError, describeError } from "../api/client";
import type { Loop, LoopFields } from "../api/types";
import { useAsync } from "../api/useAsync";
import { useAuth } from "../auth/AuthProvider";
import { AsyncView } from "../components/AsyncView";
import { Pagination } from "../components/Pagination";
import { StatusBadge } from "../components/StatusBadge";
import { dataSourceText } from "../lib/dataSource";
import { ExportUploadForm } from "./ExportUploadForm";

const EMPTY = { loop_id: "", name: "", description: "", unit: "", area: "", engineering_units: "" };
type Draft = typeof EMPTY & { active?: boolean };
const LOOP_ID = /^[A-Za-z0-9_.:\-/]{1,128}$/;

/** The fields to send: trimmed, empty text as null (name and description omitted when empty). */
export function fieldsOf(draft: Draft): LoopFields {
  const value = (text: string) => (text.trim() === "" ? null : text.trim());
  const fields: LoopFields = {
    unit: value(draft.unit),
    area: value(draft.area),
    engineering_units: value(draft.engineering_units),
  };
  if (draft.name.trim()) fields.name = draft.name.trim();
  if (draft.description.trim()) fields.description = draft.description.trim();
  if (draft.active !== undefined) fields.active = draft.active;
  return fields;
}

function LoopForm({ initial, creating, onDone, onCancel }: { initial: Draft; creating: boolean; onDone: (message: string) => void; onCancel: () => void }) {
  const api = useApi();
  const [draft, setDraft] = useState<Draft>(initial);
  const [error, setError] = useState<string | null>(null);
  const [fieldErrors, setFieldErrors] = useState<Record<string, string>>({});
  const [busy, setBusy] = useState(false);
  const prefix = creating ? "new" : "edit";
  const input = (name: keyof typeof EMPTY, label: string, extra: Record<string, unknown> = {}) => (
    <div className="field">
      <label htmlFor={`${prefix}-${name}`}>{label}</label>
      <input
        id={`${prefix}-${name}`}
        value={draft[name]}
        aria-invalid={!!fieldErrors[name]}
        aria-describedby={fieldErrors[name] ? `${prefix}-${name}-error` : undefined}
        onChange={(event) => setDraft({ ...draft, [name]: event.target.value })}
        {...extra}
      />
      {fieldErrors[name] && (
        <span className="field-error" id={`${prefix}-${name}-error`}>
          {fieldErrors[name]}
        </span>
      )}
    </div>
  );
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setError(null);
    if (creating && !LOOP_ID.test(draft.loop_id.trim())) {
      setFieldErrors({ loop_id: "1–128 letters, digits and _ . : - /" });
      return;
    }
    setFieldErrors({});
    setBusy(true);
    try {
      if (creating) {
        await api.createLoop({ loop_id: draft.loop_id.trim(), ...fieldsOf(draft) });
        onDone(`Loop ${draft.loop_id.trim()} created.`);
      } else {
        await api.updateLoop(draft.loop_id, fieldsOf(draft));
        onDone(`Loop ${draft.loop_id} saved.`);
      }
    } catch (failure) {
      if (failure instanceof ApiError && failure.status === 422) setFieldErrors(failure.parameterErrors);
      setError(describeError(failure));
    } finally {
      setBusy(false);
    }
  };
  return (
    <form onSubmit={submit} noValidate className="panel" aria-label={creating ? "New loop" : `Edit ${draft.loop_id}`}>
      <h2>{creating ? "New loop" : `Edit ${draft.loop_id}`}</h2>
      {error && (
        <p className="state state-error" role="alert">
          {error}
        </p>
      )}
      <div className="form-grid">
        {creating && input("loop_id", "Loop id (tag)", { required: true, autoFocus: true })}
        {input("name", "Name")}
        {input("unit", "Unit")}
        {input("area", "Area")}
        {input("engineering_units", "Engineering units")}
        {input("description", "Description")}
        {!creating && (
          <label className="field-inline" style={{ alignSelf: "end" }}>
            <input type="checkbox" checked={draft.active ?? true} onChange={(event) => setDraft({ ...draft, active: event.target.checked })} /> Active
          </label>
        )}
      </div>
      <div className="toolbar" style={{ marginTop: "1rem" }}>
        <button type="submit" disabled={busy} aria-busy={busy}>
          {creating ? "Create loop" : "Save loop"}
        </button>
        <button type="button" className="secondary" onClick={onCancel}>
          Cancel
        </button>
      </div>
    </form>
  );
}

/** "csv" or "json" by the file's name (a list exported from a spreadsheet is CSV). */
export function catalogueFormatOf(fileName: string): "csv" | "json" {
  return fileName.toLowerCase().endsWith(".json") ? "json" : "csv";
}

/** A chosen file's text (FileReader: supported wherever file inputs are). */
function readText(file: Blob): Promise<string> {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result));
    reader.onerror = () => reject(reader.error ?? new Error("the file could not be read"));
    reader.readAsText(file);
  });
}

function CatalogueImportForm({ onDone }: { onDone: (message: string) => void }) {
  const api = useApi();
  const [file, setFile] = useState<File | null>(null);
  const [dryRun, setDryRun] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [rows, setRows] = useState<[string, string][]>([]);
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    if (!file) {
      setError("Choose a CSV or JSON file first.");
      return;
    }
    setBusy(true);
    setError(null);
    setRows([]);
    try {
      const answer = await api.importCatalogue(await readText(file), catalogueFormatOf(file.name), dryRun);
      onDone(answer.dry_run ? `${answer.loops} loops valid; nothing imported (validation only).` : `${answer.loops} loops imported from ${file.name}.`);
    } catch (failure) {
      setError(describeError(failure));
      if (failure instanceof ApiError) setRows(Object.entries(failure.parameterErrors));
    } finally {
      setBusy(false);
    }
  };
  return (
    <form onSubmit={submit} className="panel" aria-label="Import a loop list">
      <h2>Import a loop list</h2>
      <p className="hint">
        CSV with a header row or JSON: loop_id, name, unit, area, engineering_units, loop_type, criticality, op_lo, op_hi, pv_lo, pv_hi (the PV range:
        both or neither), … Empty cells keep the defaults; a bad cell refuses the whole list.
      </p>
      {error && (
        <div className="state state-error" role="alert">
          {error}
          {rows.length > 0 && (
            <ul>
              {rows.map(([where, message]) => (
                <li key={where}>
                  {where}: {message}
                </li>
              ))}
            </ul>
          )}
        </div>
      )}
      <div className="toolbar" style={{ alignItems: "end" }}>
        <div className="field">
          <label htmlFor="catalogue-file">Loop list file</label>
          <input id="catalogue-file" type="file" accept=".csv,.json,text/csv,application/json" onChange={(event) => setFile(event.target.files?.[0] ?? null)} />
        </div>
        <label className="field-inline">
          <input type="checkbox" checked={dryRun} onChange={(event) => setDryRun(event.target.checked)} /> Validate only
        </label>
        <button type="submit" disabled={busy} aria-busy={busy}>
          {busy ? "Importing…" : "Import loop list"}
        </button>
      </div>
    </form>
  );
}

const draftOf = (loop: Loop): Draft => ({
  loop_id: loop.loop_id,
  name: loop.name ?? "",
  description: loop.description ?? "",
  unit: loop.unit ?? "",
  area: loop.area ?? "",
  engineering_units: loop.engineering_units ?? "",
  active: loop.active,
});

export function LoopsAdminPage() {
  const api = useApi();
  const auth = useAuth();
  const [offset, setOffset] = useState(0);
  const [limit, setLimit] = useState(25);
  const [editing, setEditing] = useState<Draft | null>(null);
  const [creating, setCreating] = useState(false);
  const [message, setMessage] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const admin = auth.can("admin");
  const loops = useAsync(
    // nothing to list for others: they only see that the page needs the admin role
    (signal) => (admin ? api.listLoops({ sort: "loop_id", order: "asc", offset, limit }, signal) : new Promise<never>(() => undefined)),
    [api, admin, offset, limit],
  );

  if (!admin) {
    return (
      <div className="panel" role="alert">
        <h1>Loops admin</h1>
        <p>This page needs the admin role. Your role does not allow registering or deleting loops.</p>
      </div>
    );
  }

  const done = (text: string) => {
    setMessage(text);
    setEditing(null);
    setCreating(false);
    loops.reload();
  };
  const remove = async (loop: Loop) => {
    if (!window.confirm(`Delete loop ${loop.loop_id}? Its history stays stored; it can be registered again.`)) return;
    setError(null);
    try {
      await api.deleteLoop(loop.loop_id);
      done(`Loop ${loop.loop_id} deleted.`);
    } catch (failure) {
      setError(`Not deleted: ${describeError(failure)}`);
    }
  };

  return (
    <>
      <div className="page-head">
        <div>
          <h1>Loops admin</h1>
          <p>Register loops, name them and place them in units and areas. Loops also register themselves when their data arrives.</p>
        </div>
        {!creating && (
          <button
            type="button"
            onClick={() => {
              setCreating(true);
              setEditing(null);
              setMessage(null);
            }}
          >
            + New loop
          </button>
        )}
      </div>
      {message && (
        <p className="notice notice-success" role="status">
          {message}
        </p>
      )}
      {error && (
        <p className="state state-error" role="alert">
          {error}
        </p>
      )}
      <CatalogueImportForm onDone={done} />
      <ExportUploadForm onDone={loops.reload} />
      {creating && <LoopForm initial={EMPTY} creating onDone={done} onCancel={() => setCreating(false)} />}
      {editing && <LoopForm key={editing.loop_id} initial={editing} creating={false} onDone={done} onCancel={() => setEditing(null)} />}
      <section className="panel" aria-labelledby="loops-heading">
        <h2 id="loops-heading">Loops</h2>
        <AsyncView state={loops.state} what="the loops" onRetry={loops.reload} isEmpty={(data) => data.total === 0} empty="No loops registered.">
          {(data) => (
            <>
              <div className="table-wrap">
                <table>
                  <thead>
                    <tr>
                      <th scope="col">Loop</th>
                      <th scope="col">Name</th>
                      <th scope="col">Unit</th>
                      <th scope="col">Area</th>
                      <th scope="col">Eng. units</th>
                      <th scope="col">Data source</th>
                      <th scope="col">Status</th>
                      <th scope="col">
                        <span className="sr-only">Actions</span>
                      </th>
                    </tr>
                  </thead>
                  <tbody>
                    {data.items.map((loop) => (
                      <tr key={loop.loop_id}>
                        <td>
                          <Link to={`/fleet/loops/${encodeURIComponent(loop.loop_id)}`}>{loop.loop_id}</Link>
                        </td>
                        <td>{loop.name}</td>
                        <td>{loop.unit ?? "–"}</td>
                        <td>{loop.area ?? "–"}</td>
                        <td>{loop.engineering_units ?? "–"}</td>
                        <td className="small">{dataSourceText(loop)}</td>
                        <td>
                          <StatusBadge status={loop.status} />
                        </td>
                        <td className="nowrap">
                          <button
                            type="button"
                            className="secondary"
                            onClick={() => {
                              setEditing(draftOf(loop));
                              setCreating(false);
                              setMessage(null);
                            }}
                            aria-label={`Edit ${loop.loop_id}`}
                          >
                            Edit
                          </button>{" "}
                          <button type="button" className="danger" onClick={() => void remove(loop)} aria-label={`Delete ${loop.loop_id}`}>
                            Delete
                          </button>
                        </td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
              <Pagination total={data.total} offset={offset} pageSize={limit} label="Loops" onOffset={setOffset} onPageSize={(size) => { setLimit(size); setOffset(0); }} />
            </>
          )}
        </AsyncView>
      </section>
    </>
  );
}
