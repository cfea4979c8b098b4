// Autocorrelation and power spectrum of the loop's latest KPI window (computed on demand by
// the gateway from its raw samples), with the periods of the stored components marked.

import { useApi } from "../../api/ApiProvider";
import { useAsync } from "../../api/useAsync";
import { AsyncView } from "../../components/AsyncView";
import { formatDuration } from "../../lib/format";

export interface OscillationView {
  loop_id: string;
  window_start: string | null;
  window_end: string | null;
  lag_s: number[];
  acf: number[];
  period_s: number[];
  power: number[];
  reason: string | null;
}

const WIDTH = 320;
const HEIGHT = 90;
const PAD = 4;

/** x position of ``value`` in [lo, hi] (log scale when ``log``), inside the padding. */
export function scaleX(value: number, lo: number, hi: number, log = false): number {
  const [a, b, v] = log ? [Math.log(lo), Math.log(hi), Math.log(value)] : [lo, hi, value];
  const span = b - a || 1;
  return PAD + ((v - a) / span) * (WIDTH - 2 * PAD);
}

/** SVG path of (xs, ys) with y in [yLo, yHi]; x linear or logarithmic. */
export function curvePath(xs: number[], ys: number[], yLo: number, yHi: number, log = false): string {
  if (xs.length === 0 || xs.length !== ys.length) return "";
  const lo = Math.min(...xs);
  const hi = Math.max(...xs);
  return xs
    .map((x, i) => {
      const y = HEIGHT - PAD - ((ys[i] - yLo) / (yHi - yLo || 1)) * (HEIGHT - 2 * PAD);
      return `${i === 0 ? "M" : "L"}${scaleX(x, lo, hi, log).toFixed(1)},${y.toFixed(1)}`;
    })
    .join("");
}

export function OscillationCharts({ view, periods }: { view: OscillationView; periods: number[] }) {
  if (view.reason || view.acf.length === 0) return <p className="state state-empty">No chart: {view.reason ?? "no data"}.</p>;
  const pLo = Math.min(...view.period_s);
  const pHi = Math.max(...view.period_s);
  const zero = HEIGHT - PAD - 0.5 * (HEIGHT - 2 * PAD);
  return (
    <div className="grid" style={{ gridTemplateColumns: "repeat(auto-fit, minmax(16rem, 1fr))", gap: "0.75rem" }}>
      <figure style={{ margin: 0 }}>
        <svg viewBox={`0 0 ${WIDTH} ${HEIGHT}`} role="img" aria-label="Autocorrelation of the latest window">
          <line x1={PAD} x2={WIDTH - PAD} y1={zero} y2={zero} stroke="#bbb" strokeWidth={1} />
          <path d={curvePath(view.lag_s, view.acf, -1, 1)} fill="none" stroke="#0b5cad" strokeWidth={1.4} />
        </svg>
        <figcaption className="small muted">Autocorrelation, lag 0 – {formatDuration(view.lag_s[view.lag_s.length - 1])}</figcaption>
      </figure>
      <figure style={{ margin: 0 }}>
        <svg viewBox={`0 0 ${WIDTH} ${HEIGHT}`} role="img" aria-label="Power spectrum of the latest window">
          {periods
            .filter((period) => period >= pLo && period <= pHi)
            .map((period) => {
              const x = scaleX(period, pLo, pHi, true);
              return <line key={period} data-testid="component-period" x1={x} x2={x} y1={PAD} y2={HEIGHT - PAD} stroke="#c0392b" strokeDasharray="3 3" />;
            })}
          <path d={curvePath(view.period_s, view.power, 0, 1, true)} fill="none" stroke="#0b5cad" strokeWidth={1.4} />
        </svg>
        <figcaption className="small muted">
          Relative power by period (log scale), {formatDuration(pLo)} – {formatDuration(pHi)}; dashed: components found
        </figcaption>
      </figure>
    </div>
  );
}

export function OscillationChart({ loopId, periods }: { loopId: string; periods: number[] }) {
  const api = useApi();
  const view = useAsync(
    (signal) => api.http.get<OscillationView>(`/loops/${encodeURIComponent(loopId)}/kpis/latest/oscillation-view`, undefined, signal),
    [api, loopId],
  );
  return (
    <AsyncView state={view.state} what="the spectrum of the latest window" onRetry={view.reload}>
      {(data) => <OscillationCharts view={data} periods={periods} />}
    </AsyncView>
  );
}
