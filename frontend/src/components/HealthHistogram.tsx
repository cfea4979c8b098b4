// Loops per 10-point health band, as bars with a table for screen readers.

import type { HealthBand } from "../api/types";
import { healthColour } from "./StatusBadge";

export function HealthHistogram({ bands }: { bands: HealthBand[] }) {
  const most = Math.max(1, ...bands.map((band) => band.loops));
  return (
    <figure style={{ margin: 0 }}>
      <div className="histogram" aria-hidden="true">
        {bands.map((band) => (
          <div className="bar-col" key={band.from}>
            <span className="bar-count">{band.loops || ""}</span>
            <div
              className="bar"
              style={{ height: `${(band.loops / most) * 100}%`, background: healthColour(band.from + 5), opacity: band.loops ? 1 : 0.25 }}
            />
          </div>
        ))}
      </div>
      <div className="histogram-axis" aria-hidden="true">
        {bands.map((band) => (
          <span key={band.from}>{band.from}</span>
        ))}
      </div>
      <figcaption className="muted small">Loops per health band (0 = worst, 100 = best)</figcaption>
      <table className="sr-only">
        <caption>Loops per health band</caption>
        <thead>
          <tr>
            <th scope="col">Health</th>
            <th scope="col">Loops</th>
          </tr>
        </thead>
        <tbody>
          {bands.map((band) => (
            <tr key={band.from}>
              <td>
                {band.from}–{band.to}
              </td>
              <td>{band.loops}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </figure>
  );
}
