// One loop: headline (status over the chosen period), period assessment, trend, KPI cards,
// diagnosis and PV-OP plot.

import { useState } from "react";
import { Link, useParams, useSearchParams } from "react-router-dom";

import { useApi } from "../../api/ApiProvider";
import { ApiError } from "../../api/client";
import { useAsync } from "../../api/useAsync";
import { AsyncView, ErrorState, Loading } from "../../components/AsyncView";
import { PeriodPicker } from "../../components/PeriodPicker";
import { HealthBar, StatusBadge } from "../../components/StatusBadge";
import { notAssessedReason } from "../../lib/assessment";
import { dataSourceText } from "../../lib/dataSource";
import { formatTime, labelOf } from "../../lib/format";
import { periodDescription, periodOf, withPeriod } from "../../lib/periods";
import type { TrendData } from "../../lib/series";
import { spanSourceOf } from "../../lib/spans";
import { AssessmentPanel } from "./AssessmentPanel";
import { DiagnosisPanel } from "./DiagnosisPanel";
import { HistoryPanel } from "./HistoryPanel";
import { KpiPanel } from "./KpiPanel";
import { LongTermPanel } from "./LongTermPanel";
import { OscillationsPanel } from "./OscillationsPanel";
import { PvOpPanel } from "./PvOpPanel";
import { TrendPanel } from "./TrendPanel";

export function LoopDetailPage() {
  const { loopId = "" } = useParams();
  const api = useApi();
  const overview = useAsync(
    async (signal) => {
      const [loop, range, latest, config] = await Promise.all([
        api.loop(loopId, signal),
        api.dataRange(loopId, signal),
        api.latestKpis(loopId, undefined, signal),
        api.config(loopId, signal),
      ]);
      return { loop, range, latest, config };
    },
    [api, loopId],
  );
  const [raw, setRaw] = useState<TrendData | null>(null);
  const [params, setParams] = useSearchParams();
  const period = periodOf(params.get("period"));
  const assessment = useAsync(
    (signal) => (period === "window" ? Promise.resolve(null) : api.assessment(loopId, period, signal)),
    [api, loopId, period],
  );

  if (overview.state.status === "error" && overview.state.error instanceof ApiError && overview.state.error.status === 404) {
    return (
      <div className="panel">
        <h1>Loop {loopId} not found</h1>
        <p>
          It may have been deleted. Back to the <Link to="/fleet">fleet overview</Link>.
        </p>
      </div>
    );
  }
  if (overview.state.status === "error") return <ErrorState error={overview.state.error} what={`loop ${loopId}`} onRetry={overview.reload} />;
  if (!overview.state.data) return <Loading label={`Loading loop ${loopId}…`} />;
  const { loop, range, latest, config } = overview.state.data;
  const rated = period === "window" ? null : assessment.state.data;
  const headline = rated
    ? { status: rated.status, health: rated.health_score, problem: rated.main_problem, reason: notAssessedReason(rated) }
    : {
        status: loop.status,
        health: loop.health_score,
        problem: loop.main_problem,
        reason: notAssessedReason(loop) ?? notAssessedReason(latest as { reasons?: unknown }),
      };

  return (
    <>
      <nav className="breadcrumb" aria-label="Breadcrumb">
        <Link to="/fleet">Fleet</Link> › {loop.loop_id}
      </nav>
      <div className="page-head">
        <div>
          <h1>
            {loop.loop_id} {loop.name && loop.name !== loop.loop_id && <span className="muted">· {loop.name}</span>}
          </h1>
          <p>
            {[loop.unit && `Unit ${loop.unit}`, loop.area && `Area ${loop.area}`, loop.engineering_units].filter(Boolean).join(" · ") || "No unit or area assigned"}
            {loop.description && ` — ${loop.description}`}
          </p>
          <p className="small muted" data-testid="data-source">
            Data source: {dataSourceText(loop)}
          </p>
        </div>
        <div className="toolbar" style={{ alignItems: "center" }}>
          <PeriodPicker period={period} onChange={(next) => setParams(withPeriod(params, next), { replace: true })} />
          <StatusBadge status={headline.status} reason={headline.reason} />
          <div style={{ width: "10rem" }} aria-label={`Health score ${headline.health ?? "unknown"}`}>
            <HealthBar score={headline.health} />
          </div>
          <span>
            Main problem: <strong>{labelOf(headline.problem)}</strong>
          </span>
          <Link className="button secondary" to={`/fleet/loops/${encodeURIComponent(loop.loop_id)}/config`}>
            Configuration
          </Link>
        </div>
      </div>
      <p className="small muted" style={{ marginTop: "-0.5rem" }}>
        Status over {periodDescription(period)} · latest KPI window ended {formatTime(loop.kpi_window_end)} · criticality {loop.criticality} · loop
        type {config.loop_type}
      </p>
      {headline.status === "not_assessed" && (
        <p className="notice notice-info" data-testid="headline-not-assessed">
          Not assessed: {headline.reason ?? "too little data to judge the loop"}.
        </p>
      )}
      {period !== "window" && (
        <AsyncView state={assessment.state} what={`the ${period} assessment`} onRetry={assessment.reload}>
          {(data) => (data ? <AssessmentPanel assessment={data} period={period} /> : null)}
        </AsyncView>
      )}

      <TrendPanel loopId={loop.loop_id} range={range} units={loop.engineering_units} normalModes={config.normal_modes} onRawData={setRaw} />

      <div className="grid grid-main-side">
        <div>
          {latest.window_end ? (
            <KpiPanel loopId={loop.loop_id} latest={latest} />
          ) : (
            <section className="panel">
              <h2>KPIs</h2>
              <p className="state state-empty">No KPI window has been computed for this loop yet.</p>
            </section>
          )}
          {latest.window_end && <OscillationsPanel latest={latest} units={loop.engineering_units} loopId={loop.loop_id} />}
          <DiagnosisPanel loopId={loop.loop_id} spanSource={spanSourceOf(latest)} />
          <HistoryPanel loopId={loop.loop_id} />
          <LongTermPanel loopId={loop.loop_id} />
        </div>
        <PvOpPanel loopId={loop.loop_id} range={range} raw={raw} units={loop.engineering_units} />
      </div>
    </>
  );
}
