// Every significant oscillation of the loop's latest KPI window (period, strength, regularity,
// share of the window, amplitude), largest first, as the KPI worker stored it.

import type { KpiRow } from "../../api/types";
import { formatDuration, formatNumber, formatShare } from "../../lib/format";
import { OscillationChart } from "./OscillationChart";

export interface OscillationComponent {
  period_s: number;
  strength: number;
  regularity: number;
  share: number;
  amplitude: number;
  amplitude_pct?: number | null;
}

/** The stored components of a KPI row: null when the window was not assessed for them. */
export function componentsOf(row: KpiRow): OscillationComponent[] | null {
  const value = row.osc_components;
  if (!Array.isArray(value)) return null;
  return value.filter(
    (item): item is OscillationComponent =>
      typeof item === "object" && item !== null && typeof (item as { period_s?: unknown }).period_s === "number",
  );
}

/** ``loopId`` adds the ACF and spectrum of the latest window, fetched from the gateway. */
export function OscillationsPanel({ latest, units, loopId }: { latest: KpiRow; units?: string | null; loopId?: string }) {
  const components = componentsOf(latest);
  const reasons = (latest.reasons ?? {}) as Record<string, string>;
  return (
    <section className="panel" aria-labelledby="oscillations-heading">
      <h2 id="oscillations-heading">Oscillations</h2>
      {components === null ? (
        <p className="state state-empty">Not assessed in the latest window{reasons.osc_components ? `: ${reasons.osc_components}` : ""}.</p>
      ) : components.length === 0 ? (
        <p className="state state-empty">No significant oscillation in the latest window.</p>
      ) : (
        <div className="table-wrap">
          <table aria-label="Oscillation components of the latest window">
            <thead>
              <tr>
                <th scope="col">Period</th>
                <th scope="col">Strength</th>
                <th scope="col">Regularity</th>
                <th scope="col">Share of window</th>
                <th scope="col">Amplitude</th>
              </tr>
            </thead>
            <tbody>
              {components.map((component, index) => (
                <tr key={index}>
                  <td>{formatDuration(component.period_s)}</td>
                  <td title="autocorrelation of the component one period later (1 = steady sine)">{formatNumber(component.strength, 2)}</td>
                  <td title="Thornhill regularity r (> 1: regular)">{formatNumber(component.regularity, 1)}</td>
                  <td>{formatShare(component.share, 0)}</td>
                  <td>
                    {component.amplitude_pct !== null && component.amplitude_pct !== undefined
                      ? `${formatNumber(component.amplitude_pct, 2)} % of span`
                      : `${formatNumber(component.amplitude, 3)}${units ? ` ${units}` : ""}`}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {loopId && <OscillationChart loopId={loopId} periods={(components ?? []).map((component) => component.period_s)} />}
    </section>
  );
}
