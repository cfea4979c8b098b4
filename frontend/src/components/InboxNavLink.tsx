// Navigation entry of the inbox with the number of unread notifications (polled each minute
// and reloaded when the inbox page marks entries read).

import { useEffect } from "react";
import { NavLink } from "react-router-dom";

import { INBOX_CHANGED, alertsApi } from "../api/alerts";
import { useApi } from "../api/ApiProvider";
import { useAsync } from "../api/useAsync";

export const UNREAD_POLL_MS = 60_000;

export function InboxNavLink() {
  const api = useApi();
  const { state, reload } = useAsync((signal) => alertsApi.unreadCount(api, signal), [api]);
  useEffect(() => {
    const timer = window.setInterval(reload, UNREAD_POLL_MS);
    window.addEventListener(INBOX_CHANGED, reload);
    return () => {
      window.clearInterval(timer);
      window.removeEventListener(INBOX_CHANGED, reload);
    };
  }, [reload]);
  const unread = state.data?.unread ?? 0;
  return (
    <NavLink to="/notifications" aria-label={unread ? `Inbox, ${unread} unread` : "Inbox"}>
      Inbox
      {unread > 0 && (
        <span className="badge unread-badge" aria-hidden="true">
          {unread > 99 ? "99+" : unread}
        </span>
      )}
    </NavLink>
  );
}
