// The caller's inbox: alert notifications newest first, unread ones marked; mark one or all read.

import { useState } from "react";
import { Link } from "react-router-dom";

import { INBOX_CHANGED, alertsApi, type InboxEntry } from "../../api/alerts";
import { useApi } from "../../api/ApiProvider";
import { describeError } from "../../api/client";
import { useAsync } from "../../api/useAsync";
import { AsyncView } from "../../components/AsyncView";

const KIND_LABEL: Record<InboxEntry["kind"], string> = { opened: "Opened", reminder: "Reminder", cleared: "Cleared" };

export function InboxPage() {
  const api = useApi();
  const [unreadOnly, setUnreadOnly] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const { state, reload } = useAsync((signal) => alertsApi.inbox(api, unreadOnly, signal), [api, unreadOnly]);
  const changed = () => {
    window.dispatchEvent(new Event(INBOX_CHANGED));
    reload();
  };
  const act = async (action: () => Promise<unknown>) => {
    setError(null);
    try {
      await action();
      changed();
    } catch (problem) {
      setError(describeError(problem));
    }
  };
  return (
    <section aria-labelledby="inbox-title">
      <h1 id="inbox-title">Inbox</h1>
      <div className="toolbar">
        <label>
          <input type="checkbox" checked={unreadOnly} onChange={(event) => setUnreadOnly(event.target.checked)} /> Unread only
        </label>
        <button type="button" className="secondary" disabled={!state.data?.unread} onClick={() => void act(() => alertsApi.markAllRead(api))}>
          Mark all read
        </button>
      </div>
      {error && (
        <p className="state state-error" role="alert">
          {error}
        </p>
      )}
      <AsyncView state={state} what="your notifications" onRetry={reload} isEmpty={(page) => page.items.length === 0} empty="No notifications.">
        {(page) => (
          <>
            <p role="status">{page.unread === 1 ? "1 unread notification" : `${page.unread} unread notifications`}</p>
            <ul className="inbox-list">
              {page.items.map((entry) => (
                <li key={entry.id} className={entry.read_at ? "inbox-entry" : "inbox-entry unread"} aria-label={entry.title}>
                  <span className={`kind kind-${entry.kind}`}>{KIND_LABEL[entry.kind]}</span> <span className="inbox-title">{entry.title}</span>{" "}
                  <time dateTime={entry.created_at}>{new Date(entry.created_at).toLocaleString()}</time>{" "}
                  {entry.loop_id && <Link to={`/fleet/loops/${encodeURIComponent(entry.loop_id)}`}>Open loop {entry.loop_id}</Link>}{" "}
                  {!entry.read_at && (
                    <button type="button" className="secondary" onClick={() => void act(() => alertsApi.markRead(api, entry.id))}>
                      Mark read<span className="sr-only">: {entry.title}</span>
                    </button>
                  )}
                </li>
              ))}
            </ul>
          </>
        )}
      </AsyncView>
    </section>
  );
}
