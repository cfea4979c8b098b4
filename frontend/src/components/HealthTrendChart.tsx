// Health (0-100) per day or week over weeks and months (SVG), with the first and last bucket
// dates under it; buckets without windows leave a gap.

import type { TrendPoint } from "../api/trends";

const WIDTH = 600;
const HEIGHT = 140;
const PAD = 6;

/** The SVG path of the health per bucket on a fixed 0-100 scale, x by time. */
export function healthPath(points: TrendPoint[], start: number, end: number): string {
  const span = end - start || 1;
  let path = "";
  let previous: number | null = null;
  for (const point of points) {
    const health = point.means.health_score;
    const t = Date.parse(point.bucket_start);
    if (health === null || health === undefined || !Number.isFinite(health)) {
      previous = null;
      continue;
    }
    const x = PAD + ((t - start) / span) * (WIDTH - 2 * PAD);
    const y = HEIGHT - PAD - (Math.min(100, Math.max(0, health)) / 100) * (HEIGHT - 2 * PAD);
    path += `${previous === null ? "M" : "L"}${x.toFixed(1)},${y.toFixed(1)}`;
    previous = t;
  }
  return path;
}

export function HealthTrendChart({ points, start, end, label }: { points: TrendPoint[]; start: string; end: string; label: string }) {
  const from = Date.parse(start);
  const to = Date.parse(end);
  const path = healthPath(points, from, to);
  if (!path) return <p className="state state-empty">No health in this range.</p>;
  const gridY = (value: number) => HEIGHT - PAD - (value / 100) * (HEIGHT - 2 * PAD);
  return (
    <figure className="health-trend" style={{ margin: 0 }}>
      <svg viewBox={`0 0 ${WIDTH} ${HEIGHT}`} preserveAspectRatio="none" role="img" aria-label={label} style={{ width: "100%", height: HEIGHT }}>
        {[0, 50, 100].map((value) => (
          <line key={value} x1={PAD} x2={WIDTH - PAD} y1={gridY(value)} y2={gridY(value)} stroke="#eceff2" vectorEffect="non-scaling-stroke" />
        ))}
        <path d={path} fill="none" stroke="#0b5cad" strokeWidth={1.8} vectorEffect="non-scaling-stroke" data-testid="health-trend-line" />
      </svg>
      <figcaption className="small muted">
        {start.slice(0, 10)} – {end.slice(0, 10)} · health 0–100
      </figcaption>
    </figure>
  );
}
