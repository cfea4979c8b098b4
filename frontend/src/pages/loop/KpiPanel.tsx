// KPI cards of a loop's latest window with sparklines of the previous 24 hours, the health
// breakdown, and a CSV export of the KPI history.

import { Link } from "react-router-dom";

import { useApi } from "../../api/ApiProvider";
import type { KpiRow } from "../../api/types";
import { useAsync } from "../../api/useAsync";
import { AsyncView } from "../../components/AsyncView";
import { CsvButton } from "../../components/CsvButton";
import { KpiCard } from "../../components/KpiCard";
import { HealthBar } from "../../components/StatusBadge";
import { formatTime, isoOf, labelOf } from "../../lib/format";
import { HISTORY_COLUMNS, KPI_CARDS } from "../../lib/kpis";
import { ESTIMATED_SPAN_HELP, spanSourceOf } from "../../lib/spans";

export const HISTORY_SPAN_S = 24 * 3600;

/** The values of ``key`` over the rows (null where missing or not a number). */
export function columnOf(rows: KpiRow[], key: string): (number | null)[] {
  return rows.map((row) => {
    const value = row[key];
    return typeof value === "number" && Number.isFinite(value) ? value : null;
  });
}

export function KpiPanel({ loopId, latest }: { loopId: string; latest: KpiRow }) {
  const api = useApi();
  const end = latest.window_end ? Date.parse(latest.window_end) : Date.now();
  const range = { start: isoOf(end - HISTORY_SPAN_S * 1000), end: isoOf(end + 1000) };
  const history = useAsync((signal) => api.kpiHistory(loopId, { ...range, columns: HISTORY_COLUMNS, limit: 2000 }, signal), [api, loopId, range.start]);
  const subScores = (latest.sub_scores ?? {}) as Record<string, number | null>;
  const reasons = (latest.reasons ?? {}) as Record<string, string>;
  const spanSource = spanSourceOf(latest);

  return (
    <section className="panel" aria-labelledby="kpi-heading">
      <div className="panel-head">
        <h2 id="kpi-heading">KPIs</h2>
        <span className="small muted">
          Latest window {formatTime(latest.window_start ?? null)} – {formatTime(latest.window_end ?? null)}
          {latest.source ? ` · from ${latest.source === "raw" ? "raw samples" : String(latest.source)}` : ""}
        </span>
        <CsvButton
          label="Export KPI history CSV"
          download={() => api.http.downloadCsv(`/loops/${encodeURIComponent(loopId)}/kpis`, { ...range, limit: 2000 }, `${loopId}-kpis.csv`)}
        />
      </div>
      {spanSource === "estimated" && (
        <p className="small muted" data-testid="span-estimated-note">
          <span className="span-estimated" title={ESTIMATED_SPAN_HELP}>
            % of est. span
          </span>
          : no PV range is configured, so percentages of the PV span are of a span estimated from the data (upper bounds).{" "}
          <Link to={`/fleet/loops/${encodeURIComponent(loopId)}/config`}>Set the PV range</Link>
        </p>
      )}
      <AsyncView state={history.state} what="the KPI history" onRetry={history.reload}>
        {(rows) => (
          <div className="kpi-cards">
            {KPI_CARDS.map((definition) => {
              const value = latest[definition.key];
              return (
                <KpiCard
                  key={definition.key}
                  definition={definition}
                  value={typeof value === "number" ? value : null}
                  history={columnOf(rows.items, definition.key)}
                  spanSource={spanSource}
                />
              );
            })}
          </div>
        )}
      </AsyncView>
      {Object.keys(subScores).length > 0 && (
        <details style={{ marginTop: "0.75rem" }}>
          <summary>Health breakdown (sub-scores, 100 = best)</summary>
          <table style={{ maxWidth: "34rem", marginTop: "0.5rem" }}>
            <tbody>
              {Object.entries(subScores).map(([name, score]) => (
                <tr key={name}>
                  <th scope="row">{labelOf(name)}</th>
                  <td>
                    <HealthBar score={score} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          {Object.keys(reasons).length > 0 && (
            <ul className="small muted">
              {Object.entries(reasons).map(([name, reason]) => (
                <li key={name}>
                  {labelOf(name)}: {reason}
                </li>
              ))}
            </ul>
          )}
        </details>
      )}
    </section>
  );
}
