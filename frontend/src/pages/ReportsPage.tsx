// Fleet reports: download the daily / weekly report (PDF, XLSX); engineers and admins manage
// their own e-mail subscriptions to it.

import { type FormEvent, useState } from "react";

import { useApi } from "../api/ApiProvider";
import { ApiError, describeError } from "../api/client";
import {
  type ReportFormat,
  type ReportPeriod,
  type SubscriptionFormat,
  downloadReport,
  mySubscriptions,
  subscribe,
  unsubscribe,
} from "../api/reports";
import { useAsync } from "../api/useAsync";
import { useAuth } from "../auth/AuthProvider";
import { AsyncView } from "../components/AsyncView";
import { CsvButton } from "../components/CsvButton";
import { formatTime } from "../lib/format";

const PERIODS: { value: ReportPeriod; label: string }[] = [
  { value: "day", label: "Daily" },
  { value: "week", label: "Weekly" },
];
const FORMATS: { value: SubscriptionFormat; label: string }[] = [
  { value: "pdf", label: "PDF" },
  { value: "xlsx", label: "XLSX" },
  { value: "both", label: "PDF and XLSX" },
];

function Downloads() {
  const api = useApi();
  return (
    <section className="panel" aria-labelledby="report-downloads">
      <h2 id="report-downloads">Download</h2>
      <p className="muted">
        Bad actors over the period against the previous one, status changes, findings, KPI trends and work items.
        The PDF lists the worst loops; the XLSX lists every loop.
      </p>
      {PERIODS.map((period) => (
        <div className="toolbar" key={period.value}>
          {(["pdf", "xlsx"] as ReportFormat[]).map((format) => (
            <CsvButton
              key={format}
              label={`${period.label} report (${format.toUpperCase()})`}
              download={() => downloadReport(api.http, period.value, format)}
            />
          ))}
        </div>
      ))}
    </section>
  );
}

function Subscriptions() {
  const api = useApi();
  const list = useAsync((signal) => mySubscriptions(api.http, signal), [api]);
  const [email, setEmail] = useState("");
  const [period, setPeriod] = useState<ReportPeriod>("day");
  const [format, setFormat] = useState<SubscriptionFormat>("pdf");
  const [unit, setUnit] = useState("");
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [failure, setFailure] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const add = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setErrors({});
    setFailure(null);
    try {
      await subscribe(api.http, { email, period, format, unit: unit.trim() || null });
      setEmail("");
      setUnit("");
      list.reload();
    } catch (problem) {
      if (problem instanceof ApiError && problem.status === 422) setErrors(problem.parameterErrors);
      setFailure(describeError(problem));
    } finally {
      setBusy(false);
    }
  };

  const remove = async (id: number) => {
    setFailure(null);
    try {
      await unsubscribe(api.http, id);
      list.reload();
    } catch (problem) {
      setFailure(describeError(problem));
    }
  };

  return (
    <section className="panel" aria-labelledby="report-subscriptions">
      <h2 id="report-subscriptions">My subscriptions</h2>
      <p className="muted">Reports are e-mailed when due (daily, and weekly on the configured day), with the files attached.</p>
      <AsyncView
        state={list.state}
        what="your subscriptions"
        onRetry={list.reload}
        isEmpty={(rows) => rows.length === 0}
        empty={<>You have no report subscriptions.</>}
      >
        {(rows) => (
          <div className="table-wrap">
            <table data-testid="subscriptions">
              <thead>
                <tr>
                  <th scope="col">Report</th>
                  <th scope="col">Format</th>
                  <th scope="col">Scope</th>
                  <th scope="col">E-mail</th>
                  <th scope="col">Last sent</th>
                  <th scope="col">
                    <span className="sr-only">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {rows.map((row) => (
                  <tr key={row.id} data-subscription={row.id}>
                    <td>{PERIODS.find((p) => p.value === row.period)?.label}</td>
                    <td>{FORMATS.find((f) => f.value === row.format)?.label}</td>
                    <td>{row.unit ? `unit ${row.unit}` : row.area ? `area ${row.area}` : "whole fleet"}</td>
                    <td>{row.email}</td>
                    <td className="nowrap">{row.last_sent_at ? formatTime(row.last_sent_at) : <span className="muted">–</span>}</td>
                    <td>
                      <button type="button" className="secondary" onClick={() => void remove(row.id)}>
                        Remove
                      </button>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </AsyncView>
      <form className="toolbar" onSubmit={(event) => void add(event)} aria-label="New subscription">
        <label className="field-inline">
          E-mail
          <input type="email" required value={email} onChange={(event) => setEmail(event.target.value)} />
          {errors.email && <span className="field-error">{errors.email}</span>}
        </label>
        <label className="field-inline">
          Report
          <select value={period} onChange={(event) => setPeriod(event.target.value as ReportPeriod)}>
            {PERIODS.map((p) => (
              <option key={p.value} value={p.value}>
                {p.label}
              </option>
            ))}
          </select>
        </label>
        <label className="field-inline">
          Format
          <select value={format} onChange={(event) => setFormat(event.target.value as SubscriptionFormat)}>
            {FORMATS.map((f) => (
              <option key={f.value} value={f.value}>
                {f.label}
              </option>
            ))}
          </select>
        </label>
        <label className="field-inline">
          Unit (empty: whole fleet)
          <input value={unit} onChange={(event) => setUnit(event.target.value)} />
          {errors.unit && <span className="field-error">{errors.unit}</span>}
        </label>
        <button type="submit" disabled={busy} aria-busy={busy}>
          Subscribe
        </button>
      </form>
      {failure && (
        <p role="alert" className="field-error">
          {failure}
        </p>
      )}
    </section>
  );
}

export function ReportsPage() {
  const auth = useAuth();
  return (
    <>
      <div className="page-head">
        <div>
          <h1>Reports</h1>
          <p>The daily and weekly fleet report, to download or to receive by e-mail.</p>
        </div>
      </div>
      <Downloads />
      {auth.can("engineer") ? (
        <Subscriptions />
      ) : (
        <p className="muted">Engineers and admins can subscribe to the reports by e-mail.</p>
      )}
    </>
  );
}
