// The gateway's alert endpoints (/alerts/rules, /alerts/events) and the caller's /inbox, typed.

import type { ClpmApi } from "./endpoints";

export type AlertScope = "loop" | "unit" | "area" | "fleet";
export type AlertCondition = "health_below" | "finding" | "status_change" | "stale_data" | "heartbeat_missing";
export type AlertChannel = "inbox" | "email" | "webhook";

export interface AlertRuleFields {
  name: string;
  scope: AlertScope;
  scope_value: string | null;
  condition: AlertCondition;
  threshold: number | null;
  for_s: number;
  categories: string[];
  statuses: string[];
  services: string[];
  renotify_s: number;
  channels: AlertChannel[];
  recipients: string[];
  emails: string[];
  webhook_url: string | null;
  quiet_start: string | null;
  quiet_end: string | null;
  quiet_timezone: string | null;
  enabled: boolean;
}

export interface AlertRule extends AlertRuleFields {
  id: number;
  created_by: string | null;
  created_at: string | null;
  updated_by: string | null;
  updated_at: string | null;
}

export interface InboxEntry {
  id: number;
  event_id: number;
  rule_id: number;
  loop_id: string | null;
  kind: "opened" | "reminder" | "cleared";
  title: string;
  created_at: string;
  read_at: string | null;
}

export interface InboxPage {
  items: InboxEntry[];
  unread: number;
}

export interface MarkedRead {
  marked: number;
  unread: number;
}

export const alertsApi = {
  rules: (api: ClpmApi, signal?: AbortSignal) => api.http.get<AlertRule[]>("/alerts/rules", undefined, signal),
  createRule: (api: ClpmApi, fields: AlertRuleFields) => api.http.post<AlertRule>("/alerts/rules", fields),
  updateRule: (api: ClpmApi, id: number, fields: AlertRuleFields) => api.http.put<AlertRule>(`/alerts/rules/${id}`, fields),
  deleteRule: (api: ClpmApi, id: number) => api.http.delete(`/alerts/rules/${id}`),
  inbox: (api: ClpmApi, unread: boolean, signal?: AbortSignal) =>
    api.http.get<InboxPage>("/inbox", unread ? { unread: true, limit: 100 } : { limit: 100 }, signal),
  unreadCount: (api: ClpmApi, signal?: AbortSignal) => api.http.get<{ unread: number }>("/inbox/unread-count", undefined, signal),
  markRead: (api: ClpmApi, id: number) => api.http.post<MarkedRead>(`/inbox/${id}/read`, {}),
  markAllRead: (api: ClpmApi) => api.http.post<MarkedRead>("/inbox/read-all", {}),
};

/** Event name dispatched on window when the unread count changed (the nav badge reloads). */
export const INBOX_CHANGED = "clpm:inbox-changed";
