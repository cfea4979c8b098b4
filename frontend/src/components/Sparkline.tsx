// A small line of a KPI's recent history (SVG), described for screen readers.

export function sparklinePath(values: (number | null)[], width: number, height: number, pad = 2): string {
  const known = values.filter((value): value is number => value !== null && Number.isFinite(value));
  if (known.length === 0) return "";
  const min = Math.min(...known);
  const max = Math.max(...known);
  const span = max - min || 1;
  const stepX = values.length > 1 ? (width - 2 * pad) / (values.length - 1) : 0;
  let path = "";
  let pen = false;
  values.forEach((value, index) => {
    if (value === null || !Number.isFinite(value)) {
      pen = false;
      return;
    }
    const x = pad + index * stepX;
    const y = height - pad - ((value - min) / span) * (height - 2 * pad);
    path += `${pen ? "L" : "M"}${x.toFixed(1)},${y.toFixed(1)}`;
    pen = true;
  });
  return path;
}

export function Sparkline({ values, label, colour = "#0b5cad" }: { values: (number | null)[]; label: string; colour?: string }) {
  const width = 160;
  const height = 36;
  const path = sparklinePath(values, width, height);
  if (!path) return <p className="muted small">No history</p>;
  return (
    <svg viewBox={`0 0 ${width} ${height}`} preserveAspectRatio="none" role="img" aria-label={label}>
      <path d={path} fill="none" stroke={colour} strokeWidth={1.6} vectorEffect="non-scaling-stroke" />
    </svg>
  );
}
