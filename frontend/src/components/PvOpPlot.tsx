// PV against OP (canvas): a sticky valve draws a parallelogram-like cycle (OP moves while PV
// stays, then PV jumps), a linear loop an ellipse or a cloud. Colour runs from old to new.

import { useEffect, useMemo, useRef } from "react";

import { formatNumber } from "../lib/format";

export interface Extent {
  min: number;
  max: number;
}

export function extentOf(values: number[]): Extent | null {
  if (values.length === 0) return null;
  const [min, max] = rangeOf(values);
  if (min === max) return { min: min - 1, max: max + 1 };
  const pad = (max - min) * 0.05;
  return { min: min - pad, max: max + pad };
}

function rangeOf(values: number[]): [number, number] {
  let low = Infinity;
  let high = -Infinity;
  for (const value of values) {
    if (value < low) low = value;
    if (value > high) high = value;
  }
  return [low, high];
}

/** Up to ``count`` round tick values covering ``extent``. */
export function niceTicks(extent: Extent, count = 5): number[] {
  const raw = (extent.max - extent.min) / count;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * magnitude).find((candidate) => candidate >= raw) ?? raw;
  const ticks: number[] = [];
  for (let value = Math.ceil(extent.min / step) * step; value <= extent.max + step * 1e-9; value += step) {
    ticks.push(Number(value.toPrecision(12)));
  }
  return ticks;
}

export function PvOpPlot({ op, pv, units }: { op: number[]; pv: number[]; units?: string | null }) {
  const canvas = useRef<HTMLCanvasElement>(null);
  const xExtent = useMemo(() => extentOf(op), [op]);
  const yExtent = useMemo(() => extentOf(pv), [pv]);

  useEffect(() => {
    const element = canvas.current;
    const ctx = element?.getContext("2d");
    if (!element || !ctx || !xExtent || !yExtent) return;
    const ratio = window.devicePixelRatio || 1;
    const width = element.clientWidth || 400;
    const height = element.clientHeight || 280;
    element.width = Math.round(width * ratio);
    element.height = Math.round(height * ratio);
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, width, height);
    const margin = { left: 62, right: 12, top: 10, bottom: 38 };
    const plotW = width - margin.left - margin.right;
    const plotH = height - margin.top - margin.bottom;
    const px = (value: number) => margin.left + ((value - xExtent.min) / (xExtent.max - xExtent.min)) * plotW;
    const py = (value: number) => margin.top + plotH - ((value - yExtent.min) / (yExtent.max - yExtent.min)) * plotH;

    ctx.font = "12px system-ui, sans-serif";
    ctx.strokeStyle = "#eceff2";
    ctx.fillStyle = "#4f5b69";
    ctx.lineWidth = 1;
    ctx.textAlign = "center";
    for (const tick of niceTicks(xExtent)) {
      const x = px(tick);
      ctx.beginPath();
      ctx.moveTo(x, margin.top);
      ctx.lineTo(x, margin.top + plotH);
      ctx.stroke();
      ctx.fillText(formatNumber(tick, tick % 1 ? 1 : 0), x, margin.top + plotH + 14);
    }
    ctx.textAlign = "right";
    for (const tick of niceTicks(yExtent)) {
      const y = py(tick);
      ctx.beginPath();
      ctx.moveTo(margin.left, y);
      ctx.lineTo(margin.left + plotW, y);
      ctx.stroke();
      ctx.fillText(formatNumber(tick, Math.abs(tick) < 10 && tick % 1 ? 2 : 1), margin.left - 6, y + 4);
    }
    ctx.textAlign = "center";
    ctx.fillText("OP %", margin.left + plotW / 2, height - 6);
    ctx.save();
    ctx.translate(14, margin.top + plotH / 2);
    ctx.rotate(-Math.PI / 2);
    ctx.fillText(units ? `PV (${units})` : "PV", 0, 0);
    ctx.restore();

    // points in time order, coloured old (blue) to new (orange) in a few shades: one fill
    // style per shade keeps 20,000 points at a few milliseconds
    const count = op.length;
    const shades = 12;
    for (let shade = 0; shade < shades; shade += 1) {
      const from = Math.floor((shade * count) / shades);
      const to = Math.floor(((shade + 1) * count) / shades);
      ctx.fillStyle = `hsla(${210 - (shade / (shades - 1)) * 190}, 75%, 40%, 0.55)`;
      ctx.beginPath();
      for (let index = from; index < to; index += 1) ctx.rect(px(op[index]) - 1.25, py(pv[index]) - 1.25, 2.5, 2.5);
      ctx.fill();
    }
  }, [op, pv, units, xExtent, yExtent]);

  if (!xExtent || !yExtent) return <p className="muted">No samples with both PV and OP in this range.</p>;
  const [opLow, opHigh] = rangeOf(op);
  const [pvLow, pvHigh] = rangeOf(pv);
  const description =
    `PV against OP for ${op.length.toLocaleString("en-US")} samples: OP from ${formatNumber(opLow, 1)} ` +
    `to ${formatNumber(opHigh, 1)} %, PV from ${formatNumber(pvLow, 2)} to ${formatNumber(pvHigh, 2)}.`;
  return (
    <figure className="scatter" style={{ margin: 0 }}>
      <canvas ref={canvas} role="img" aria-label={description} />
      <figcaption className="small muted">
        {description} Colour runs from blue (oldest) to orange (newest).
      </figcaption>
    </figure>
  );
}
