// The audit trail (admin): who changed what and when, with the state before and after;
// filters by actor, entity, id, action and time; pages; CSV of every matching entry.

import { useState, type FormEvent } from "react";

import { useApi } from "../api/ApiProvider";
import { useAsync } from "../api/useAsync";
import { auditQuery, auditTrail, changedFields, type AuditEntry, type AuditQuery } from "../api/workItems";
import { AsyncView } from "../components/AsyncView";
import { CsvButton } from "../components/CsvButton";
import { Pagination } from "../components/Pagination";
import { formatTime } from "../lib/format";

const ENTITIES = ["", "loop", "loop_config", "work_item"];

/** "name: before → after" per changed field of an entry. */
export function diffText(entry: AuditEntry): string {
  const show = (value: unknown) => (value === undefined ? "–" : JSON.stringify(value));
  if (entry.before === null) return "created";
  if (entry.after === null) return "removed";
  return changedFields(entry)
    .map((name) => `${name}: ${show(entry.before?.[name])} → ${show(entry.after?.[name])}`)
    .join("\n");
}

function isoOfLocal(value: string): string | undefined {
  return value ? new Date(value).toISOString() : undefined;
}

export function AuditPage() {
  const api = useApi();
  const [draft, setDraft] = useState({ actor: "", entity: "", entity_id: "", action: "", start: "", end: "" });
  const [filter, setFilter] = useState<AuditQuery>({});
  const [offset, setOffset] = useState(0);
  const [limit, setLimit] = useState(50);
  const trail = useAsync((signal) => auditTrail(api.http, { ...filter, offset, limit }, signal), [api, filter, offset, limit]);

  const apply = (event: FormEvent) => {
    event.preventDefault();
    setOffset(0);
    setFilter({
      actor: draft.actor || undefined,
      entity: draft.entity || undefined,
      entity_id: draft.entity_id || undefined,
      action: draft.action || undefined,
      start: isoOfLocal(draft.start),
      end: isoOfLocal(draft.end),
    });
  };
  const field = (name: keyof typeof draft) => ({
    id: `audit-${name}`,
    value: draft[name],
    onChange: (event: { target: { value: string } }) => setDraft({ ...draft, [name]: event.target.value }),
  });

  return (
    <>
      <div className="page-head">
        <div>
          <h1>Audit trail</h1>
          <p>Every change of loops, their configuration, catalogue imports and work items: who, when, before and after.</p>
        </div>
        <div className="toolbar">
          <CsvButton download={() => api.http.downloadCsv("/audit", auditQuery(filter), "audit.csv")} />
        </div>
      </div>
      <form className="toolbar panel" onSubmit={apply} aria-label="Filter the audit trail">
        <div className="field">
          <label htmlFor="audit-actor">Who</label>
          <input {...field("actor")} />
        </div>
        <div className="field">
          <label htmlFor="audit-entity">What</label>
          <select {...field("entity")}>
            {ENTITIES.map((entity) => (
              <option key={entity} value={entity}>
                {entity || "anything"}
              </option>
            ))}
          </select>
        </div>
        <div className="field">
          <label htmlFor="audit-entity_id">Id</label>
          <input {...field("entity_id")} />
        </div>
        <div className="field">
          <label htmlFor="audit-action">Action</label>
          <input {...field("action")} />
        </div>
        <div className="field">
          <label htmlFor="audit-start">From</label>
          <input type="datetime-local" {...field("start")} />
        </div>
        <div className="field">
          <label htmlFor="audit-end">To</label>
          <input type="datetime-local" {...field("end")} />
        </div>
        <button type="submit">Apply</button>
      </form>
      <AsyncView
        state={trail.state}
        what="the audit trail"
        onRetry={trail.reload}
        isEmpty={(page) => page.items.length === 0}
        empty={<>No recorded change matches.</>}
      >
        {(page) => (
          <>
            <div className="table-wrap">
              <table>
                <thead>
                  <tr>
                    <th scope="col">When</th>
                    <th scope="col">Who</th>
                    <th scope="col">Action</th>
                    <th scope="col">What</th>
                    <th scope="col">Change</th>
                  </tr>
                </thead>
                <tbody>
                  {page.items.map((entry) => (
                    <tr key={entry.id} data-entry={entry.id}>
                      <td className="nowrap">{formatTime(entry.at)}</td>
                      <td>{entry.actor}</td>
                      <td>{entry.action}</td>
                      <td className="nowrap">
                        {entry.entity} {entry.entity_id}
                      </td>
                      <td>
                        <pre className="audit-diff">{diffText(entry)}</pre>
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
            <Pagination total={page.total} offset={offset} pageSize={limit} label="Audit entries" onOffset={setOffset} onPageSize={setLimit} />
          </>
        )}
      </AsyncView>
    </>
  );
}
