// Fleet overview over an assessment period (latest window, shift, day or week; default day):
// status counts, health distribution, roll-up per unit, and the bad-actor table (sorted,
// filtered and paged by the gateway; KPI columns from each loop's latest window).

import { useCallback, useEffect, useState } from "react";
import { Link, useSearchParams } from "react-router-dom";

import { useApi } from "../api/ApiProvider";
import type { ClpmApi, LoopListQuery } from "../api/endpoints";
import { LOOP_STATUSES, type Loop, type LoopSortKey, type LoopStatus, type Period, type RealtimeData } from "../api/types";
import { useAsync } from "../api/useAsync";
import { fleetWorkItems } from "../api/workItems";
import { WorkCell } from "../components/WorkCell";
import { AsyncView, ErrorState } from "../components/AsyncView";
import { CsvButton } from "../components/CsvButton";
import { HealthHistogram } from "../components/HealthHistogram";
import { FleetTrendPanel } from "./FleetTrendPanel";
import { Pagination } from "../components/Pagination";
import { PeriodPicker } from "../components/PeriodPicker";
import { SortHeader, type SortOrder } from "../components/SortHeader";
import { HealthBar, StatusBadge, statusText } from "../components/StatusBadge";
import { formatNumber, formatShare, labelOf } from "../lib/format";
import { FLEET_KPI_COLUMNS, headlineOf, oscillationText, type KpiHeadline } from "../lib/kpis";
import { notAssessedReason } from "../lib/assessment";
import { dataSourceText } from "../lib/dataSource";
import { DEFAULT_PERIOD, periodDescription, periodOf } from "../lib/periods";
import { rollUpBy, type GroupRollup } from "../lib/rollup";

const SORTS: LoopSortKey[] = ["bad_actor", "loop_id", "name", "unit", "area", "health_score", "status", "criticality"];
const DEFAULT_PAGE_SIZE = 25;
/** How often the live values of the rows on screen are fetched (one batched request). */
export const LIVE_REFRESH_MS = 5000;

export interface FleetQuery {
  period: Period;
  status?: LoopStatus;
  unit?: string;
  area?: string;
  sort: LoopSortKey;
  order: SortOrder;
  offset: number;
  limit: number;
}

/** The table query from the address bar (unknown values fall back to the defaults). */
export function fleetQueryOf(params: URLSearchParams): FleetQuery {
  const status = params.get("status") as LoopStatus | null;
  const requested = params.get("sort") as LoopSortKey | null;
  const sort = requested && SORTS.includes(requested) ? requested : "bad_actor";
  const order = params.get("order");
  const offset = Number(params.get("offset"));
  const limit = Number(params.get("limit"));
  return {
    period: periodOf(params.get("period")),
    status: status && LOOP_STATUSES.includes(status) ? status : undefined,
    unit: params.get("unit") || undefined,
    area: params.get("area") || undefined,
    sort,
    order: order === "asc" || order === "desc" ? order : sort === "bad_actor" ? "desc" : "asc",
    offset: Number.isInteger(offset) && offset > 0 ? offset : 0,
    limit: [10, 25, 50, 100].includes(limit) ? limit : DEFAULT_PAGE_SIZE,
  };
}

async function headlines(api: ClpmApi, loops: Loop[], signal?: AbortSignal): Promise<Record<string, KpiHeadline>> {
  const entries = await Promise.all(
    loops.map(async (loop) => {
      if (loop.status === "offline" && loop.kpi_window_end === null) return [loop.loop_id, headlineOf(null)] as const;
      const row = await api.latestKpis(loop.loop_id, FLEET_KPI_COLUMNS, signal);
      return [loop.loop_id, headlineOf(row)] as const;
    }),
  );
  return Object.fromEntries(entries);
}

/** Latest PV/SP/OP/mode of ``loopIds``, refreshed every LIVE_REFRESH_MS with one request. */
function useLiveValues(api: ClpmApi, loopIds: string[]): Record<string, RealtimeData> {
  const [values, setValues] = useState<Record<string, RealtimeData>>({});
  const key = loopIds.join(",");
  useEffect(() => {
    if (!key) return undefined;
    const controller = new AbortController();
    const fetchValues = () =>
      api
        .realtimeMany(key.split(","), controller.signal)
        .then((answer) => setValues(Object.fromEntries(answer.loops.map((item) => [item.loop_id, item]))))
        .catch(() => undefined); // live values are a bonus: the table stays usable without them
    void fetchValues();
    const timer = setInterval(fetchValues, LIVE_REFRESH_MS);
    return () => {
      clearInterval(timer);
      controller.abort();
    };
  }, [api, key]);
  return values;
}

function liveText(value: RealtimeData | undefined): string {
  if (!value || value.ts === null) return "–";
  const numbers = [value.pv, value.sp, value.op].map((item) => formatNumber(item ?? null, 2)).join(" / ");
  return value.mode ? `${numbers} · ${value.mode}` : numbers;
}

function RollupTable({ label, groups, onPick }: { label: string; groups: GroupRollup[]; onPick: (name: string) => void }) {
  return (
    <div className="table-wrap">
      <table>
        <thead>
          <tr>
            <th scope="col">{label}</th>
            <th scope="col" className="num">
              Loops
            </th>
            <th scope="col">Health</th>
            {LOOP_STATUSES.map((name) => (
              <th scope="col" className="num" key={name}>
                {statusText(name)}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {groups.map((group) => (
            <tr key={group.name ?? "(none)"}>
              <td>
                {group.name ? (
                  <button type="button" className="link" onClick={() => onPick(group.name as string)}>
                    {group.name}
                  </button>
                ) : (
                  <span className="muted">No {label.toLowerCase()} assigned</span>
                )}
              </td>
              <td className="num">{group.loops}</td>
              <td>
                <HealthBar score={group.health_score} />
              </td>
              {LOOP_STATUSES.map((name) => (
                <td className="num" key={name}>
                  {group.status_counts[name] ?? 0}
                </td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

export function FleetPage() {
  const api = useApi();
  const [params, setParams] = useSearchParams();
  const query = fleetQueryOf(params);
  const { period, status, unit, area, sort, order, offset, limit } = query;

  const update = useCallback(
    (change: Partial<FleetQuery>) => {
      const next = { ...query, offset: 0, ...change };
      const out = new URLSearchParams();
      if (next.period !== DEFAULT_PERIOD) out.set("period", next.period);
      if (next.status) out.set("status", next.status);
      if (next.unit) out.set("unit", next.unit);
      if (next.area) out.set("area", next.area);
      if (next.sort !== "bad_actor" || next.order !== "desc") {
        out.set("sort", next.sort);
        out.set("order", next.order);
      }
      if (next.offset) out.set("offset", String(next.offset));
      if (next.limit !== DEFAULT_PAGE_SIZE) out.set("limit", String(next.limit));
      setParams(out);
    },
    [query, setParams],
  );

  const summary = useAsync((signal) => api.fleetSummary({ unit, area, top: 500, period }, signal), [api, unit, area, period]);
  const listQuery: LoopListQuery = { period, unit, area, status, sort, order, offset, limit };
  const page = useAsync((signal) => api.listLoops(listQuery, signal), [api, period, unit, area, status, sort, order, offset, limit]);
  const work = useAsync((signal) => fleetWorkItems(api.http, signal), [api]);
  const pageLoops = page.state.data?.items;
  const kpis = useAsync(
    (signal) => (pageLoops ? headlines(api, pageLoops, signal) : Promise.resolve({} as Record<string, KpiHeadline>)),
    [api, pageLoops],
  );

  const live = useLiveValues(api, (pageLoops ?? []).map((item) => item.loop_id));

  const [groupBy, setGroupBy] = useState<"unit" | "area">("unit");
  const [showSource, setShowSource] = useState(false);
  const areaLoops = useAsync(
    (signal) => (groupBy === "area" ? api.listLoops({ period, unit, area, sort: "loop_id", limit: 1000 }, signal) : Promise.resolve(null)),
    [api, groupBy, period, unit, area],
  );
  const ranks = new Map((summary.state.data?.bad_actors ?? []).map((actor) => [actor.loop_id, actor.rank]));
  const units = (summary.state.data?.units ?? []).map((item) => item.unit).filter((name): name is string => !!name);

  // the whole fleet's ranking in one request: the gateway renders the CSV
  const exportCsv = () => api.http.downloadCsv("/fleet/ranking", { period, unit, area }, `clpm-fleet-${period}.csv`);

  return (
    <>
      <div className="page-head">
        <div>
          <h1>Fleet overview</h1>
          <p>Health of every loop over {periodDescription(period)}; the worst, most critical loops first.</p>
        </div>
        <div className="toolbar" style={{ alignItems: "center" }}>
          <PeriodPicker period={period} onChange={(next) => update({ period: next })} />
          <CsvButton download={exportCsv} label="Export fleet CSV" />
        </div>
      </div>

      <AsyncView state={summary.state} what="the fleet summary" onRetry={summary.reload}>
        {(data) => (
          <>
            <section aria-label="Loops per status" className="stat-cards" style={{ marginBottom: "1rem" }}>
              <div className="stat-card total">
                <div className="value">{data.loops}</div>
                <div className="label">
                  Loops · plant health <strong>{formatNumber(data.health_score, 1)}</strong>
                </div>
              </div>
              {LOOP_STATUSES.map((name) => (
                <button
                  key={name}
                  type="button"
                  className={`stat-card ${name}`}
                  aria-pressed={status === name}
                  onClick={() => update({ status: status === name ? undefined : name })}
                  title={`Show only ${statusText(name).toLowerCase()} loops`}
                >
                  <span className="value" style={{ display: "block" }} data-testid={`count-${name}`}>
                    {data.status_counts[name] ?? 0}
                  </span>
                  <span className="label" style={{ display: "block" }}>
                    {statusText(name)}
                  </span>
                </button>
              ))}
            </section>
            <div className="grid grid-2">
              <section className="panel" aria-labelledby="health-distribution">
                <h2 id="health-distribution">Health distribution</h2>
                <HealthHistogram bands={data.health_histogram} />
              </section>
              <section className="panel" aria-labelledby="unit-rollup">
                <div className="panel-head">
                  <h2 id="unit-rollup">Roll-up per {groupBy}</h2>
                  <div className="button-group" role="group" aria-label="Roll up by">
                    <button type="button" className="secondary" aria-pressed={groupBy === "unit"} onClick={() => setGroupBy("unit")}>
                      Unit
                    </button>
                    <button type="button" className="secondary" aria-pressed={groupBy === "area"} onClick={() => setGroupBy("area")}>
                      Area
                    </button>
                  </div>
                </div>
                {groupBy === "unit" ? (
                  <RollupTable
                    label="Unit"
                    groups={data.units.map((item) => ({ ...item, name: item.unit }))}
                    onPick={(name) => update({ unit: name })}
                  />
                ) : (
                  <AsyncView state={areaLoops.state} what="the areas" onRetry={areaLoops.reload}>
                    {(page) =>
                      page ? (
                        <>
                          <RollupTable label="Area" groups={rollUpBy(page.items, (loop) => loop.area)} onPick={(name) => update({ area: name })} />
                          {page.total > page.items.length && (
                            <p className="small muted">Areas of the first {page.items.length} of {page.total} loops.</p>
                          )}
                        </>
                      ) : null
                    }
                  </AsyncView>
                )}
              </section>
            </div>
          </>
        )}
      </AsyncView>

      <FleetTrendPanel />

      <section className="panel" aria-labelledby="bad-actors">
        <div className="panel-head">
          <h2 id="bad-actors">Bad actors</h2>
          <form className="toolbar" onSubmit={(event) => event.preventDefault()} aria-label="Filter loops">
            <div className="field">
              <label htmlFor="filter-status">Status</label>
              <select id="filter-status" value={status ?? ""} onChange={(event) => update({ status: (event.target.value || undefined) as LoopStatus | undefined })}>
                <option value="">All</option>
                {LOOP_STATUSES.map((name) => (
                  <option key={name} value={name}>
                    {statusText(name)}
                  </option>
                ))}
              </select>
            </div>
            <div className="field">
              <label htmlFor="filter-unit">Unit</label>
              <select id="filter-unit" value={unit ?? ""} onChange={(event) => update({ unit: event.target.value || undefined })}>
                <option value="">All units</option>
                {unit && !units.includes(unit) && <option value={unit}>{unit}</option>}
                {units.map((name) => (
                  <option key={name} value={name}>
                    {name}
                  </option>
                ))}
              </select>
            </div>
            <div className="field">
              <label htmlFor="filter-area">Area</label>
              <input
                key={area ?? ""}
                id="filter-area"
                defaultValue={area ?? ""}
                placeholder="All areas"
                onBlur={(event) => event.target.value !== (area ?? "") && update({ area: event.target.value.trim() || undefined })}
                onKeyDown={(event) => {
                  if (event.key === "Enter") update({ area: event.currentTarget.value.trim() || undefined });
                }}
              />
            </div>
            {(status || unit || area) && (
              <button type="button" className="secondary" onClick={() => update({ status: undefined, unit: undefined, area: undefined })}>
                Clear filters
              </button>
            )}
            <label className="field-inline" style={{ alignSelf: "end" }}>
              <input type="checkbox" checked={showSource} onChange={(event) => setShowSource(event.target.checked)} /> Data source column
            </label>
          </form>
        </div>
        <AsyncView
          state={page.state}
          what="the loops"
          onRetry={page.reload}
          isEmpty={(data) => data.total === 0}
          empty={status || unit || area ? "No loop matches these filters." : "No loops yet: they appear once data arrives."}
        >
          {(data) => (
            <>
              {kpis.state.status === "error" && <ErrorState error={kpis.state.error} what="the KPI columns" onRetry={kpis.reload} />}
              <div className="table-wrap">
                <table aria-describedby="bad-actors-caption" aria-busy={page.state.status === "loading"}>
                  <caption id="bad-actors-caption" className="sr-only">
                    Loops ranked by bad-actor score, (100 − health) × criticality
                  </caption>
                  <thead>
                    <tr>
                      <SortHeader column="bad_actor" sort={sort} order={order} initialOrder="desc" onSort={(s, o) => update({ sort: s, order: o })}>
                        Rank
                      </SortHeader>
                      <SortHeader column="loop_id" sort={sort} order={order} onSort={(s, o) => update({ sort: s, order: o })}>
                        Loop
                      </SortHeader>
                      <SortHeader column="unit" sort={sort} order={order} onSort={(s, o) => update({ sort: s, order: o })}>
                        Unit
                      </SortHeader>
                      <SortHeader column="health_score" sort={sort} order={order} onSort={(s, o) => update({ sort: s, order: o })}>
                        Health
                      </SortHeader>
                      <SortHeader column="status" sort={sort} order={order} onSort={(s, o) => update({ sort: s, order: o })}>
                        Status
                      </SortHeader>
                      <th scope="col">Main problem</th>
                      <th scope="col" className="num">
                        Service factor
                      </th>
                      <th scope="col">Oscillation</th>
                      <th scope="col" className="num">
                        Saturation
                      </th>
                      <th scope="col" className="num nowrap hide-narrow" title={`Latest values, refreshed every ${LIVE_REFRESH_MS / 1000} s`}>
                        Live PV / SP / OP · mode
                      </th>
                      <SortHeader column="criticality" sort={sort} order={order} initialOrder="desc" className="hide-narrow" onSort={(s, o) => update({ sort: s, order: o })}>
                        Criticality
                      </SortHeader>
                      {showSource && <th scope="col">Data source</th>}
                      <th scope="col">Work</th>
                    </tr>
                  </thead>
                  <tbody>
                    {data.items.map((loop) => {
                      const headline = kpis.state.data?.[loop.loop_id];
                      return (
                        <tr key={loop.loop_id} data-loop={loop.loop_id}>
                          <td className="num">{ranks.get(loop.loop_id) ?? "–"}</td>
                          <td>
                            <Link to={`/fleet/loops/${encodeURIComponent(loop.loop_id)}${period === DEFAULT_PERIOD ? "" : `?period=${period}`}`}>{loop.loop_id}</Link>
                            {loop.name && loop.name !== loop.loop_id && <div className="small muted">{loop.name}</div>}
                          </td>
                          <td className="nowrap">{loop.unit ?? <span className="muted">–</span>}</td>
                          <td>
                            <HealthBar score={loop.health_score} />
                          </td>
                          <td>
                            <StatusBadge status={loop.status} reason={notAssessedReason(loop)} />
                          </td>
                          <td>{loop.main_problem ? labelOf(loop.main_problem) : <span className="muted">–</span>}</td>
                          <td className="num">{headline ? formatShare(headline.service_factor) : "…"}</td>
                          <td className="nowrap">{headline ? oscillationText(headline) : "…"}</td>
                          <td className="num">{headline ? formatShare(headline.saturation) : "…"}</td>
                          <td className="num nowrap hide-narrow" data-testid={`live-${loop.loop_id}`}>
                            {liveText(live[loop.loop_id])}
                          </td>
                          <td className="num hide-narrow">{loop.criticality}</td>
                          {showSource && (
                            <td className="small" data-testid={`source-${loop.loop_id}`}>
                              {dataSourceText(loop)}
                            </td>
                          )}
                          <td className="nowrap" data-testid="work-cell">
                            <WorkCell entry={work.state.data?.get(loop.loop_id)} />
                          </td>
                        </tr>
                      );
                    })}
                  </tbody>
                </table>
              </div>
              <Pagination
                total={data.total}
                offset={offset}
                pageSize={limit}
                label="Bad actors"
                onOffset={(next) => update({ offset: next })}
                onPageSize={(size) => update({ limit: size })}
              />
            </>
          )}
        </AsyncView>
      </section>
    </>
  );
}
