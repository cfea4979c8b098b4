// A loop's work history: acknowledgements, notes and assignments, newest first; engineers
// acknowledge the loop, add notes, assign work and move items through their states.

import { useState, type FormEvent } from "react";

import { useApi } from "../../api/ApiProvider";
import { describeError } from "../../api/client";
import { useAsync } from "../../api/useAsync";
import {
  WORK_ITEM_STATES,
  acknowledge,
  createWorkItem,
  describeItem,
  loopWorkItems,
  updateWorkItem,
  type WorkItem,
  type WorkItemState,
} from "../../api/workItems";
import { AsyncView } from "../../components/AsyncView";
import { useAuth } from "../../auth/AuthProvider";
import { formatTime, labelOf } from "../../lib/format";

type Form = "none" | "acknowledge" | "note" | "assign";

/** The end of a chosen day (local date input) as an ISO instant; null without a date. */
export function untilOf(day: string): string | null {
  if (!day) return null;
  return new Date(`${day}T23:59:59`).toISOString();
}

export function HistoryPanel({ loopId }: { loopId: string }) {
  const api = useApi();
  const auth = useAuth();
  const canWrite = auth.can("engineer");
  const items = useAsync((signal) => loopWorkItems(api.http, loopId, signal), [api, loopId]);
  const [form, setForm] = useState<Form>("none");
  const [text, setText] = useState("");
  const [until, setUntil] = useState("");
  const [category, setCategory] = useState("");
  const [assignee, setAssignee] = useState("");
  const [due, setDue] = useState("");
  const [workOrder, setWorkOrder] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const acknowledging = form === "acknowledge";
  const findings = useAsync(
    async (signal) => (acknowledging ? [...new Set((await api.findings(loopId, signal)).items.map((finding) => finding.category))] : []),
    [api, loopId, acknowledging],
  );

  const reset = () => {
    setForm("none");
    setText("");
    setUntil("");
    setCategory("");
    setAssignee("");
    setDue("");
    setWorkOrder("");
  };

  const run = async (action: () => Promise<unknown>) => {
    setBusy(true);
    setError(null);
    try {
      await action();
      reset();
      items.reload();
    } catch (failure) {
      setError(describeError(failure));
    } finally {
      setBusy(false);
    }
  };

  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (form === "acknowledge") void run(() => acknowledge(api.http, loopId, { text, until: untilOf(until), category: category || null }));
    if (form === "note") void run(() => createWorkItem(api.http, loopId, { kind: "annotation", text }));
    if (form === "assign")
      void run(() =>
        createWorkItem(api.http, loopId, {
          kind: "assignment",
          text,
          assignee: assignee || null,
          due_date: due || null,
          work_order: workOrder || null,
        }),
      );
  };

  const setState = (item: WorkItem, state: WorkItemState) => void run(() => updateWorkItem(api.http, item.id, { state }));

  return (
    <section className="panel" aria-labelledby="history-heading" data-testid="history-panel">
      <div className="panel-head">
        <h2 id="history-heading">Work history</h2>
        {canWrite && (
          <div className="toolbar">
            <button type="button" onClick={() => setForm("acknowledge")}>
              Acknowledge
            </button>
            <button type="button" onClick={() => setForm("note")}>
              Add note
            </button>
            <button type="button" onClick={() => setForm("assign")}>
              Assign
            </button>
          </div>
        )}
      </div>
      {form !== "none" && (
        <form onSubmit={submit} className="history-form" aria-label={form === "acknowledge" ? "Acknowledge the loop" : form === "note" ? "Add a note" : "Assign work"}>
          {form === "acknowledge" && (
            <>
              <div className="field">
                <label htmlFor="ack-what">What</label>
                <select id="ack-what" value={category} onChange={(event) => setCategory(event.target.value)}>
                  <option value="">The whole loop</option>
                  {(findings.state.data ?? []).map((name) => (
                    <option key={name} value={name}>
                      Finding: {labelOf(name)}
                    </option>
                  ))}
                </select>
              </div>
              <div className="field">
                <label htmlFor="ack-until">Until (empty: until it changes)</label>
                <input id="ack-until" type="date" value={until} onChange={(event) => setUntil(event.target.value)} />
              </div>
            </>
          )}
          {form === "assign" && (
            <>
              <div className="field">
                <label htmlFor="assign-to">Assignee</label>
                <input id="assign-to" required value={assignee} onChange={(event) => setAssignee(event.target.value)} />
              </div>
              <div className="field">
                <label htmlFor="assign-due">Due date</label>
                <input id="assign-due" type="date" value={due} onChange={(event) => setDue(event.target.value)} />
              </div>
              <div className="field">
                <label htmlFor="assign-wo">Work order</label>
                <input id="assign-wo" value={workOrder} onChange={(event) => setWorkOrder(event.target.value)} />
              </div>
            </>
          )}
          <div className="field">
            <label htmlFor="item-text">{form === "note" ? "Note" : "Comment"}</label>
            <textarea id="item-text" rows={2} value={text} required={form === "note"} onChange={(event) => setText(event.target.value)} />
          </div>
          <div className="toolbar">
            <button type="submit" disabled={busy}>
              Save
            </button>
            <button type="button" onClick={reset}>
              Cancel
            </button>
          </div>
        </form>
      )}
      {error && (
        <p className="notice notice-error" role="alert">
          {error}
        </p>
      )}
      <AsyncView
        state={items.state}
        what="the work history"
        onRetry={items.reload}
        isEmpty={(page) => page.items.length === 0}
        empty={<>No acknowledgements, notes or assignments yet.</>}
      >
        {(page) => (
          <ul className="history-list">
            {page.items.map((item) => (
              <li key={item.id} data-item={item.id} data-kind={item.kind}>
                <div>
                  <strong>{describeItem(item)}</strong>
                  {item.work_order && <span className="small"> · work order {item.work_order}</span>}
                </div>
                {item.text && <div>{item.text}</div>}
                <div className="small muted">
                  {item.created_by} · {formatTime(item.created_at)}
                  {item.updated_at !== item.created_at && ` · changed by ${item.updated_by} ${formatTime(item.updated_at)}`}
                </div>
                {canWrite ? (
                  <label className="small">
                    State{" "}
                    <select value={item.state} disabled={busy} onChange={(event) => setState(item, event.target.value as WorkItemState)}>
                      {WORK_ITEM_STATES.map((state) => (
                        <option key={state.value} value={state.value}>
                          {state.label}
                        </option>
                      ))}
                    </select>
                  </label>
                ) : (
                  <span className="small">State: {WORK_ITEM_STATES.find((state) => state.value === item.state)?.label}</span>
                )}
              </li>
            ))}
          </ul>
        )}
      </AsyncView>
    </section>
  );
}
