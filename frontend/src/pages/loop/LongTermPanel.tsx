// A loop's long-term health (30 / 90 / 365 days, per day or week) and a before/after comparison
// of its KPI means around a date (e.g. a valve repair).

import { useState, type FormEvent } from "react";

import { useApi } from "../../api/ApiProvider";
import { describeError } from "../../api/client";
import { compareLoop, loopTrend, type Comparison } from "../../api/trends";
import { useAsync } from "../../api/useAsync";
import { AsyncView } from "../../components/AsyncView";
import { HealthTrendChart } from "../../components/HealthTrendChart";
import { formatNumber, labelOf } from "../../lib/format";

export const LONG_TERM_RANGES = [30, 90, 365] as const;

/** A signed change with its percentage ("+5.0 (+6.2 %)"); a dash when unknown. */
export function changeText(change: number | null, pct: number | null): string {
  if (change === null) return "–";
  const sign = (value: number) => (value > 0 ? "+" : "");
  const absolute = `${sign(change)}${formatNumber(change, 2)}`;
  return pct === null ? absolute : `${absolute} (${sign(pct)}${formatNumber(pct, 1)} %)`;
}

export function LongTermPanel({ loopId }: { loopId: string }) {
  const api = useApi();
  const [days, setDays] = useState<number>(90);
  const trend = useAsync((signal) => loopTrend(api.http, loopId, days, signal), [api, loopId, days]);
  const [at, setAt] = useState("");
  const [sideDays, setSideDays] = useState(14);
  const [comparison, setComparison] = useState<Comparison | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      setComparison(await compareLoop(api.http, loopId, at, sideDays));
    } catch (failure) {
      setComparison(null);
      setError(describeError(failure));
    } finally {
      setBusy(false);
    }
  };

  return (
    <section className="panel" aria-labelledby="long-term-heading" data-testid="long-term-panel">
      <div className="panel-head">
        <h2 id="long-term-heading">Long-term</h2>
        <div className="button-group" role="group" aria-label="Long-term range">
          {LONG_TERM_RANGES.map((value) => (
            <button key={value} type="button" className="secondary" aria-pressed={days === value} onClick={() => setDays(value)}>
              {value} days
            </button>
          ))}
        </div>
      </div>
      <AsyncView state={trend.state} what="the long-term trend" onRetry={trend.reload}>
        {(data) => (
          <>
            <HealthTrendChart points={data.items} start={data.start} end={data.end} label={`Health per ${data.resolution} over the last ${days} days`} />
            <p className="small muted" data-testid="long-term-summary">
              {data.count} {data.resolution === "week" ? "weeks" : "days"} with KPI windows
            </p>
          </>
        )}
      </AsyncView>

      <form onSubmit={(event) => void submit(event)} className="history-form" aria-label="Compare before and after a date">
        <div className="field">
          <label htmlFor="compare-at">Date (e.g. a valve repair)</label>
          <input id="compare-at" type="date" required value={at} onChange={(event) => setAt(event.target.value)} />
        </div>
        <div className="field">
          <label htmlFor="compare-days">Days on each side</label>
          <input id="compare-days" type="number" min={1} max={180} required value={sideDays} onChange={(event) => setSideDays(Number(event.target.value))} />
        </div>
        <div className="toolbar">
          <button type="submit" disabled={busy || !at}>
            Compare
          </button>
        </div>
      </form>
      {error && (
        <p className="notice notice-error" role="alert">
          {error}
        </p>
      )}
      {comparison && (
        <table className="table" data-testid="compare-table">
          <caption className="small muted">
            {comparison.days} days before and after {comparison.at.slice(0, 10)}: {comparison.windows_before} and {comparison.windows_after} KPI windows
          </caption>
          <thead>
            <tr>
              <th scope="col">KPI</th>
              <th scope="col">Before</th>
              <th scope="col">After</th>
              <th scope="col">Change</th>
            </tr>
          </thead>
          <tbody>
            {comparison.items
              .filter((item) => item.before !== null || item.after !== null)
              .map((item) => (
                <tr key={item.kpi} data-kpi={item.kpi}>
                  <th scope="row">{labelOf(item.kpi)}</th>
                  <td>{formatNumber(item.before, 2)}</td>
                  <td>{formatNumber(item.after, 2)}</td>
                  <td>{changeText(item.change, item.change_pct)}</td>
                </tr>
              ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
