// Work items (acknowledgements, annotations, assignments) and the audit trail, typed.

import type { ApiClient, Query } from "./client";

export type WorkItemKind = "acknowledgement" | "annotation" | "assignment";
export type WorkItemState = "open" | "in_progress" | "done" | "wont_fix";

export const WORK_ITEM_STATES: { value: WorkItemState; label: string }[] = [
  { value: "open", label: "Open" },
  { value: "in_progress", label: "In progress" },
  { value: "done", label: "Done" },
  { value: "wont_fix", label: "Won't fix" },
];

export interface WorkItem {
  id: number;
  loop_id: string;
  category: string | null;
  kind: WorkItemKind;
  text: string;
  assignee: string | null;
  due_date: string | null;
  state: WorkItemState;
  work_order: string | null;
  acknowledged_until: string | null;
  acknowledged_state: Record<string, unknown> | null;
  active: boolean;
  created_by: string;
  created_at: string;
  updated_by: string;
  updated_at: string;
}

export interface WorkItemPage {
  items: WorkItem[];
  total: number;
  offset: number;
  limit: number;
}

export interface NewWorkItem {
  kind: "annotation" | "assignment";
  text?: string;
  category?: string | null;
  assignee?: string | null;
  due_date?: string | null;
  work_order?: string | null;
}

export interface WorkItemChange {
  state?: WorkItemState;
  text?: string;
  assignee?: string | null;
  due_date?: string | null;
  work_order?: string | null;
}

export interface Acknowledgement {
  category?: string | null;
  until?: string | null;
  text?: string;
}

export interface FleetWorkItems {
  loop_id: string;
  open_items: number;
  acknowledged: boolean;
  acknowledged_categories: string[];
  acknowledged_until: string | null;
}

export interface AuditEntry {
  id: number;
  at: string;
  actor: string;
  action: string;
  entity: string;
  entity_id: string;
  before: Record<string, unknown> | null;
  after: Record<string, unknown> | null;
}

export interface AuditPage {
  items: AuditEntry[];
  total: number;
  offset: number;
  limit: number;
}

export interface AuditQuery {
  actor?: string;
  entity?: string;
  entity_id?: string;
  action?: string;
  start?: string;
  end?: string;
  offset?: number;
  limit?: number;
}

const loopPath = (loopId: string) => `/loops/${encodeURIComponent(loopId)}`;

export function loopWorkItems(http: ApiClient, loopId: string, signal?: AbortSignal): Promise<WorkItemPage> {
  return http.get<WorkItemPage>(`${loopPath(loopId)}/work-items`, { limit: 200 }, signal);
}

export function createWorkItem(http: ApiClient, loopId: string, item: NewWorkItem): Promise<WorkItem> {
  return http.post<WorkItem>(`${loopPath(loopId)}/work-items`, item);
}

export function acknowledge(http: ApiClient, loopId: string, body: Acknowledgement): Promise<WorkItem> {
  return http.post<WorkItem>(`${loopPath(loopId)}/acknowledge`, body);
}

export function updateWorkItem(http: ApiClient, id: number, change: WorkItemChange): Promise<WorkItem> {
  return http.patch<WorkItem>(`/work-items/${id}`, change);
}

export function myWorkItems(http: ApiClient, openOnly: boolean, signal?: AbortSignal): Promise<WorkItemPage> {
  return http.get<WorkItemPage>("/work-items/mine", { open: openOnly, limit: 500 }, signal);
}

export async function fleetWorkItems(http: ApiClient, signal?: AbortSignal): Promise<Map<string, FleetWorkItems>> {
  const answer = await http.get<{ loops: FleetWorkItems[] }>("/work-items/fleet", undefined, signal);
  return new Map(answer.loops.map((entry) => [entry.loop_id, entry]));
}

/** Query parameters of an audit filter, empty fields left out. */
export function auditQuery(query: AuditQuery): Query {
  return Object.fromEntries(Object.entries(query).filter(([, value]) => value !== undefined && value !== "")) as Query;
}

export function auditTrail(http: ApiClient, query: AuditQuery, signal?: AbortSignal): Promise<AuditPage> {
  return http.get<AuditPage>("/audit", auditQuery(query), signal);
}

/** A short text of what a work item is: acknowledgement window, assignment, note. */
export function describeItem(item: WorkItem): string {
  const subject = item.category ? `finding ${item.category}` : "loop";
  if (item.kind === "acknowledgement") {
    const until = item.acknowledged_until ? `until ${item.acknowledged_until.slice(0, 10)}` : "until it changes";
    return `Acknowledged ${subject} ${until}${item.active ? "" : " (no longer holds)"}`;
  }
  if (item.kind === "assignment") {
    const due = item.due_date ? `, due ${item.due_date}` : "";
    return `Assigned ${subject} to ${item.assignee ?? "nobody"}${due}`;
  }
  return `Note on ${subject}`;
}

/** Names of the fields that differ between an audit entry's before and after. */
export function changedFields(entry: AuditEntry): string[] {
  const before = entry.before ?? {};
  const after = entry.after ?? {};
  const names = new Set([...Object.keys(before), ...Object.keys(after)]);
  return [...names].filter((name) => JSON.stringify(before[name]) !== JSON.stringify(after[name])).sort();
}
