// APC attainment: share of time each APC loop was available to the advanced controller, and
// why not otherwise (wrong mode, saturated, bad data).

import { useState } from "react";
import { Link } from "react-router-dom";

import { useApi } from "../api/ApiProvider";
import type { ApcLoop } from "../api/types";
import { useAsync } from "../api/useAsync";
import { AsyncView } from "../components/AsyncView";
import { CsvButton } from "../components/CsvButton";
import { SortHeader, type SortOrder } from "../components/SortHeader";
import { HealthBar } from "../components/StatusBadge";
import { formatNumber, formatShare, isoOf } from "../lib/format";
import { sortRows } from "../lib/table";

const PERIODS = [
  { label: "Last 24 hours", hours: 24 },
  { label: "Last 7 days", hours: 168 },
  { label: "Last 30 days", hours: 720 },
];

type ApcSort = "loop_id" | "unit" | "attainment" | "wrong_mode_share" | "saturated_share" | "bad_data_share" | "windows";

export function ApcPage() {
  const api = useApi();
  const [hours, setHours] = useState(24);
  const [sort, setSort] = useState<ApcSort>("attainment");
  const [order, setOrder] = useState<SortOrder>("asc");
  const [end] = useState(() => Date.now());
  const range = { start: isoOf(end - hours * 3600_000), end: isoOf(end) };
  const summary = useAsync((signal) => api.apcAttainment(range, signal), [api, hours]);
  const onSort = (column: ApcSort, next: SortOrder) => {
    setSort(column);
    setOrder(next);
  };
  const header = (column: ApcSort, label: string, initial: SortOrder = "asc") => (
    <SortHeader column={column} sort={sort} order={order} onSort={onSort} initialOrder={initial} className={column === "loop_id" || column === "unit" ? undefined : "num"}>
      {label}
    </SortHeader>
  );

  return (
    <>
      <div className="page-head">
        <div>
          <h1>APC attainment</h1>
          <p>Time each loop with advanced process control spent in an APC mode, unsaturated, with valid data.</p>
        </div>
        <div className="toolbar">
          <div className="field">
            <label htmlFor="apc-period">Period</label>
            <select id="apc-period" value={hours} onChange={(event) => setHours(Number(event.target.value))}>
              {PERIODS.map((period) => (
                <option key={period.hours} value={period.hours}>
                  {period.label}
                </option>
              ))}
            </select>
          </div>
          <CsvButton download={() => api.http.downloadCsv("/apc/attainment", range, "apc-attainment.csv")} />
        </div>
      </div>
      <AsyncView
        state={summary.state}
        what="the APC attainment"
        onRetry={summary.reload}
        isEmpty={(data) => data.items.length === 0}
        empty={
          <>
            No loop with APC enabled has KPI windows in this period. Engineers enable APC in a loop's configuration (
            <em>APC enabled</em> and its APC modes).
          </>
        }
      >
        {(data) => (
          <>
            <section className="stat-cards" aria-label="Overall" style={{ marginBottom: "1rem", gridTemplateColumns: "repeat(3, minmax(0, 1fr))" }}>
              <div className="stat-card total">
                <div className="value">{formatShare(data.attainment)}</div>
                <div className="label">Overall attainment (sample-weighted)</div>
              </div>
              <div className="stat-card good">
                <div className="value">{data.loops}</div>
                <div className="label">APC loops</div>
              </div>
              <div className="stat-card poor">
                <div className="value">{data.items.filter((item) => (item.attainment ?? 1) < 0.9).length}</div>
                <div className="label">Below 90 %</div>
              </div>
            </section>
            <section className="panel" aria-labelledby="apc-table">
              <h2 id="apc-table">Per loop</h2>
              <div className="table-wrap">
                <table>
                  <thead>
                    <tr>
                      {header("loop_id", "Loop")}
                      {header("unit", "Unit")}
                      {header("attainment", "Attainment")}
                      {header("wrong_mode_share", "Wrong mode", "desc")}
                      {header("saturated_share", "Saturated", "desc")}
                      {header("bad_data_share", "Bad data", "desc")}
                      {header("windows", "Windows", "desc")}
                    </tr>
                  </thead>
                  <tbody>
                    {sortRows<ApcLoop>(data.items, (row) => row[sort], order).map((row) => (
                      <tr key={row.loop_id}>
                        <td>
                          <Link to={`/fleet/loops/${encodeURIComponent(row.loop_id)}`}>{row.loop_id}</Link>
                          {row.name !== row.loop_id && <div className="small muted">{row.name}</div>}
                        </td>
                        <td>{row.unit ?? "–"}</td>
                        <td>
                          <HealthBar score={row.attainment === null ? null : row.attainment * 100} />
                        </td>
                        <td className="num">{formatShare(row.wrong_mode_share)}</td>
                        <td className="num">{formatShare(row.saturated_share)}</td>
                        <td className="num">{formatShare(row.bad_data_share)}</td>
                        <td className="num">{formatNumber(row.windows, 0)}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
            </section>
          </>
        )}
      </AsyncView>
    </>
  );
}
