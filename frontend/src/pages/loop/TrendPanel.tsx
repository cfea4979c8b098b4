// The trend of a loop: presets, zoom and pan controls, live following from /data/realtime,
// resolution chosen by the zoom, CSV export of what is shown, and the mode legend.

import { useEffect, useMemo, useRef, useState } from "react";

import { useApi } from "../../api/ApiProvider";
import type { DataRange, RealtimeData } from "../../api/types";
import { ErrorState, Loading } from "../../components/AsyncView";
import { CsvButton } from "../../components/CsvButton";
import { TrendChart, panView, zoomView, type View } from "../../components/TrendChart";
import { formatDuration, formatNumber, formatTime, isoOf } from "../../lib/format";
import { modeColour, modeName } from "../../lib/modes";
import { describeResolution } from "../../lib/resolution";
import { modeShares, sliceTrend, toSeconds, type TrendData } from "../../lib/series";
import { useTrendData } from "./useTrendData";

export const PRESETS: { label: string; seconds: number | null }[] = [
  { label: "15 min", seconds: 900 },
  { label: "1 h", seconds: 3600 },
  { label: "6 h", seconds: 6 * 3600 },
  { label: "24 h", seconds: 86400 },
  { label: "7 d", seconds: 7 * 86400 },
  { label: "All", seconds: null },
];
export const DEFAULT_SPAN_S = 3600;
export const REFRESH_MS = 5000;
const PV_OP_DELAY_MS = 300;

/** The data span of a loop in seconds, or null when it has no data. */
export function boundsOf(range: DataRange | undefined): { start: number; end: number } | null {
  if (!range?.start || !range.end) return null;
  return { start: toSeconds(range.start), end: toSeconds(range.end) + 1 };
}

/** The last ``span`` seconds of the data. */
export function latestView(bounds: { start: number; end: number }, span: number | null): View {
  const width = span ?? bounds.end - bounds.start;
  return { start: Math.max(bounds.start, bounds.end - width), end: bounds.end };
}

interface TrendPanelProps {
  loopId: string;
  range: DataRange;
  units: string | null;
  normalModes: string[] | null;
  /** the raw trend currently loaded, for the PV-OP plot */
  onRawData?: (data: TrendData | null) => void;
}

export function TrendPanel({ loopId, range, units, normalModes, onRawData }: TrendPanelProps) {
  const api = useApi();
  const [bounds, setBounds] = useState(() => boundsOf(range));
  const [view, setView] = useState<View>(() => (bounds ? latestView(bounds, DEFAULT_SPAN_S) : { start: 0, end: 1 }));
  const [live, setLive] = useState(true);
  const [realtime, setRealtime] = useState<RealtimeData | null>(null);
  const [realtimeError, setRealtimeError] = useState<unknown>(null);
  const trend = useTrendData(api, loopId, view, bounds);
  const following = !!bounds && view.end >= bounds.end - (view.end - view.start) * 0.02;
  const state = useRef({ view, bounds, following, live });
  state.current = { view, bounds, following, live };

  // auto-refresh: the latest values every few seconds; when following the end, extend the trend
  useEffect(() => {
    if (!live) return;
    let active = true;
    const tick = async () => {
      try {
        const sample = await api.realtime(loopId);
        if (!active) return;
        setRealtime(sample);
        setRealtimeError(null);
        if (!sample.ts) return;
        const newest = toSeconds(sample.ts) + 1;
        const { bounds: known, following: follow, view: shown } = state.current;
        if (!known || newest <= known.end) return;
        setBounds({ start: known.start, end: newest });
        if (follow) {
          await trend.extend(newest - 1);
          if (active) setView({ start: shown.start + (newest - shown.end), end: newest });
        }
      } catch (failure) {
        if (active) setRealtimeError(failure);
      }
    };
    void tick();
    const timer = window.setInterval(tick, REFRESH_MS);
    return () => {
      active = false;
      window.clearInterval(timer);
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [api, loopId, live]);

  const shown = useMemo(() => (trend.loaded ? sliceTrend(trend.loaded.data, view.start, view.end) : null), [trend.loaded, view]);
  const rawData = trend.loaded?.resolution.kind === "raw" ? trend.loaded.data : null;
  // the PV-OP plot follows the view once it settles (not on every zoom or pan step)
  useEffect(() => {
    const timer = window.setTimeout(() => onRawData?.(rawData ? sliceTrend(rawData, view.start, view.end) : null), PV_OP_DELAY_MS);
    return () => window.clearTimeout(timer);
  }, [rawData, view, onRawData]);

  if (!bounds) {
    return <p className="state state-empty">No data has been recorded for this loop yet.</p>;
  }

  const clamp = (next: View): View => {
    const span = Math.min(next.end - next.start, bounds.end - bounds.start || 1);
    let start = Math.max(bounds.start, Math.min(next.start, bounds.end - span));
    if (!Number.isFinite(start)) start = bounds.start;
    return { start, end: start + span };
  };
  const changeView = (next: View) => setView(clamp(next));
  const span = view.end - view.start;
  const shares = shown ? modeShares(shown.modes) : [];
  const resolution = trend.resolution;

  const exportCsv = () => {
    const range = { start: isoOf(view.start * 1000), end: isoOf(view.end * 1000) };
    return resolution.kind === "raw"
      ? api.http.downloadCsv("/data/raw", { loopId, ...range, fields: ["pv", "op", "sp", "mode"], limit: 100000 }, `${loopId}-raw.csv`)
      : api.http.downloadCsv("/data/aggregated", { loopId, ...range, interval: resolution.interval }, `${loopId}-aggregated.csv`);
  };

  return (
    <section className="panel" aria-labelledby="trend-heading">
      <div className="trend-toolbar">
        <h2 id="trend-heading" style={{ margin: 0 }}>
          Trend
        </h2>
        <div className="button-group" role="group" aria-label="Time range">
          {PRESETS.map((preset) => {
            const pressed = preset.seconds === null ? Math.abs(span - (bounds.end - bounds.start)) < 1 : Math.abs(span - preset.seconds) < 1;
            return (
              <button key={preset.label} type="button" className="secondary" aria-pressed={pressed} onClick={() => changeView(latestView(bounds, preset.seconds))}>
                {preset.label}
              </button>
            );
          })}
        </div>
        <div className="button-group" role="group" aria-label="Zoom and pan">
          <button type="button" className="secondary" onClick={() => changeView(panView(view, -0.5))} aria-label="Pan back in time">
            ◀
          </button>
          <button type="button" className="secondary" onClick={() => changeView(zoomView(view, 0.5))} aria-label="Zoom in">
            +
          </button>
          <button type="button" className="secondary" onClick={() => changeView(zoomView(view, 2))} aria-label="Zoom out">
            −
          </button>
          <button type="button" className="secondary" onClick={() => changeView(panView(view, 0.5))} aria-label="Pan forward in time">
            ▶
          </button>
          <button type="button" className="secondary" onClick={() => changeView(latestView(bounds, span))} disabled={following}>
            Latest
          </button>
        </div>
        <label className="field-inline">
          <input type="checkbox" checked={live} onChange={(event) => setLive(event.target.checked)} /> Live (every {REFRESH_MS / 1000} s)
        </label>
        <CsvButton download={exportCsv} />
      </div>

      <div className="realtime" aria-live="off" aria-label="Latest values" style={{ marginBottom: "0.5rem" }}>
        {realtimeError ? (
          <span className="field-error" role="alert">
            Latest values unavailable.
          </span>
        ) : (
          <>
            <div>
              <span className="k">PV</span>
              <span className="v" data-testid="realtime-pv">
                {formatNumber(realtime?.pv ?? null, 2)} {units ?? ""}
              </span>
            </div>
            <div>
              <span className="k">SP</span>
              <span className="v">{formatNumber(realtime?.sp ?? null, 2)}</span>
            </div>
            <div>
              <span className="k">OP</span>
              <span className="v">{formatNumber(realtime?.op ?? null, 1)} %</span>
            </div>
            <div>
              <span className="k">Mode</span>
              <span className="v">{realtime?.mode ?? "–"}</span>
            </div>
            <div>
              <span className="k">Age</span>
              <span className="v">{realtime?.age_s !== undefined && realtime?.age_s !== null ? formatDuration(realtime.age_s) : "–"}</span>
            </div>
          </>
        )}
      </div>

      <div style={{ position: "relative" }}>
        {trend.error ? (
          <ErrorState error={trend.error} what="the trend" onRetry={trend.retry} />
        ) : !trend.loaded ? (
          <Loading label="Loading the trend…" />
        ) : (
          <TrendChart data={trend.loaded.data} view={view} onViewChange={changeView} units={units} normalModes={normalModes} />
        )}
        {trend.loading && trend.loaded && (
          <span className="trend-loading" role="status">
            <span className="spinner" aria-hidden="true" /> Loading {describeResolution(resolution)}…
          </span>
        )}
      </div>
      <div className="legend">
        <span>
          <span className="swatch" style={{ background: "#0b5cad" }} />
          PV
        </span>
        <span>
          <span className="swatch" style={{ background: "repeating-linear-gradient(90deg,#1b1f24 0 6px,transparent 6px 10px)" }} />
          SP
        </span>
        <span>
          <span className="swatch" style={{ background: "#c2410c" }} />
          OP (right axis)
        </span>
        {shares.map(({ mode, share }) => (
          <span key={mode}>
            <span className="swatch box" style={{ background: modeColour(mode) }} />
            {modeName(mode)} ({mode}) {formatNumber(share * 100, 0)} %
          </span>
        ))}
      </div>
      <p className="small muted" style={{ margin: "0.4rem 0 0" }} data-testid="trend-summary">
        {shown
          ? `${shown.x.length.toLocaleString("en-US")} ${resolution.kind === "raw" ? "samples" : "buckets"} (${describeResolution(resolution)}) from ${formatTime(isoOf(view.start * 1000))} to ${formatTime(isoOf(view.end * 1000))}.`
          : "…"}{" "}
        Drag on the chart to zoom; Shift+drag, the arrow keys or ◀ ▶ to pan; the mouse wheel or + and − to zoom.
      </p>
    </section>
  );
}
