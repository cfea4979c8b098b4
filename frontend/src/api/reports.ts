// Fleet reports: downloads (PDF / XLSX) and the signed-in user's e-mail subscriptions.

import type { ApiClient } from "./client";

export type ReportPeriod = "day" | "week";
export type ReportFormat = "pdf" | "xlsx";
export type SubscriptionFormat = ReportFormat | "both";

export const REPORT_MEDIA: Record<ReportFormat, string> = {
  pdf: "application/pdf",
  xlsx: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
};

export interface ReportSubscription {
  id: number;
  username: string;
  email: string;
  period: ReportPeriod;
  format: SubscriptionFormat;
  unit: string | null;
  area: string | null;
  enabled: boolean;
  created_at: string | null;
  last_sent_at: string | null;
}

export interface NewSubscription {
  email: string;
  period: ReportPeriod;
  format: SubscriptionFormat;
  unit?: string | null;
  area?: string | null;
}

export function downloadReport(http: ApiClient, period: ReportPeriod, format: ReportFormat): Promise<void> {
  return http.download("/reports/fleet", { period, format }, REPORT_MEDIA[format], `clpm-fleet-${period}.${format}`);
}

export function mySubscriptions(http: ApiClient, signal?: AbortSignal): Promise<ReportSubscription[]> {
  return http.get<ReportSubscription[]>("/reports/subscriptions", undefined, signal);
}

export function subscribe(http: ApiClient, body: NewSubscription): Promise<ReportSubscription> {
  return http.post<ReportSubscription>("/reports/subscriptions", body);
}

export function unsubscribe(http: ApiClient, id: number): Promise<void> {
  return http.delete(`/reports/subscriptions/${id}`);
}
