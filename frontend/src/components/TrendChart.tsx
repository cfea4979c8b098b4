// PV / SP / OP trend (uPlot: canvas, fast for 100,000+ points) with the controller mode as a
// band, drag-to-zoom, wheel zoom, Shift+drag pan and keyboard zoom/pan. The view (x range) is
// owned by the parent: the chart reports user zoom/pan through onViewChange.

import { useEffect, useRef, useState } from "react";
import type uPlot from "uplot";
import "uplot/dist/uPlot.min.css";

import type { TrendData } from "../lib/series";
import { modeColour } from "../lib/modes";

export interface View {
  /** seconds since the epoch */
  start: number;
  end: number;
}

export interface TrendChartProps {
  data: TrendData | null;
  view: View;
  onViewChange: (view: View) => void;
  units?: string | null;
  height?: number;
  /** the modes in which the loop is in normal operation (others are shaded) */
  normalModes?: string[] | null;
}

/** Zoom a view around ``anchor`` (seconds) by ``factor`` (< 1 zooms in). */
export function zoomView(view: View, factor: number, anchor = (view.start + view.end) / 2, minSpan = 10): View {
  const span = Math.max(minSpan, (view.end - view.start) * factor);
  const ratio = (anchor - view.start) / (view.end - view.start || 1);
  const start = anchor - span * ratio;
  return { start, end: start + span };
}

/** Shift a view by ``fraction`` of its span (negative: back in time). */
export function panView(view: View, fraction: number): View {
  const shift = (view.end - view.start) * fraction;
  return { start: view.start + shift, end: view.end + shift };
}

function canvasAvailable(): boolean {
  try {
    return typeof window.matchMedia === "function" && !!document.createElement("canvas").getContext("2d");
  } catch {
    return false;
  }
}

function alignedData(data: TrendData | null): uPlot.AlignedData {
  if (!data) return [[], [], [], [], [], []];
  const empty = data.pvMin ?? new Array<number | null>(data.x.length).fill(null);
  return [data.x, data.pv, data.sp, data.op, data.pvMin ?? empty, data.pvMax ?? empty];
}

export function TrendChart({ data, view, onViewChange, units, height = 340, normalModes }: TrendChartProps) {
  const frame = useRef<HTMLDivElement>(null);
  const target = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const programmatic = useRef(false);
  const latest = useRef({ data, view, onViewChange, normalModes });
  latest.current = { data, view, onViewChange, normalModes };
  const [supported] = useState(canvasAvailable);

  // create the chart once (uPlot is loaded on demand: it is only needed on this page)
  useEffect(() => {
    if (!supported || !target.current) return;
    let disposed = false;
    let observer: ResizeObserver | null = null;
    void import("uplot").then(({ default: UPlot }) => {
      if (disposed || !target.current) return;
      const width = target.current.clientWidth || 800;
      const drawModes = (u: uPlot) => {
        const { data: current, normalModes: normal } = latest.current;
        if (!current || current.modes.length === 0) return;
        const { left, top, width: w, height: h } = u.bbox;
        const ctx = u.ctx;
        const strip = Math.round(10 * devicePixelRatio);
        ctx.save();
        ctx.beginPath();
        ctx.rect(left, top, w, h);
        ctx.clip();
        for (const segment of current.modes) {
          const x0 = u.valToPos(segment.start, "x", true);
          const x1 = u.valToPos(segment.end, "x", true);
          if (x1 < left || x0 > left + w) continue;
          const colour = modeColour(segment.mode);
          const abnormal = normal && normal.length ? !normal.includes(segment.mode) : segment.mode === "MAN";
          if (abnormal) {
            ctx.fillStyle = `${colour}22`;
            ctx.fillRect(x0, top, Math.max(1, x1 - x0), h - strip);
          }
          ctx.fillStyle = colour;
          ctx.fillRect(x0, top + h - strip, Math.max(1, x1 - x0), strip);
        }
        ctx.restore();
      };
      const options: uPlot.Options = {
        width,
        height,
        scales: { x: { time: true }, pv: { auto: true }, op: { auto: true } },
        legend: { show: true, live: true },
        cursor: {
          drag: { x: true, y: false, setScale: true },
          bind: {
            mousedown: (_u, _target, handler) => (event: MouseEvent) => {
              if (!event.shiftKey) handler(event);
              return null;
            },
          },
        },
        series: [
          { label: "Time" },
          { label: "PV", scale: "pv", stroke: "#0b5cad", width: 1.5, spanGaps: false },
          { label: "SP", scale: "pv", stroke: "#1b1f24", width: 1.5, dash: [6, 4] },
          { label: "OP %", scale: "op", stroke: "#c2410c", width: 1.2 },
          { label: "PV min", scale: "pv", stroke: "rgba(11,92,173,0.25)", width: 0.5, show: true },
          { label: "PV max", scale: "pv", stroke: "rgba(11,92,173,0.25)", width: 0.5, show: true },
        ],
        bands: [{ series: [5, 4], fill: "rgba(11,92,173,0.12)" }],
        axes: [
          { stroke: "#4f5b69", grid: { stroke: "#eceff2" } },
          { scale: "pv", label: units ? `PV / SP (${units})` : "PV / SP", stroke: "#0b5cad", grid: { stroke: "#eceff2" }, size: 70 },
          { scale: "op", side: 1, label: "OP %", stroke: "#c2410c", grid: { show: false }, size: 55 },
        ],
        hooks: {
          drawClear: [drawModes],
          setScale: [
            (u, key) => {
              if (key !== "x" || programmatic.current) return;
              const min = u.scales.x.min;
              const max = u.scales.x.max;
              if (min === undefined || max === undefined || !(max > min)) return;
              const { view: shown } = latest.current;
              const tolerance = (shown.end - shown.start) * 1e-6;
              if (Math.abs(min - shown.start) <= tolerance && Math.abs(max - shown.end) <= tolerance) return;
              latest.current.onViewChange({ start: min, end: max });
            },
          ],
        },
      };
      const chart = new UPlot(options, alignedData(latest.current.data), target.current);
      plot.current = chart;
      programmatic.current = true;
      chart.setScale("x", { min: latest.current.view.start, max: latest.current.view.end });
      programmatic.current = false;

      // wheel: zoom around the pointer
      chart.over.addEventListener(
        "wheel",
        (event: WheelEvent) => {
          event.preventDefault();
          const anchor = chart.posToVal(event.offsetX, "x");
          latest.current.onViewChange(zoomView(latest.current.view, event.deltaY < 0 ? 0.8 : 1.25, anchor));
        },
        { passive: false },
      );
      // Shift + drag: pan
      chart.over.addEventListener("mousedown", (event: MouseEvent) => {
        if (!event.shiftKey) return;
        const startX = event.clientX;
        const startView = latest.current.view;
        const perPixel = (startView.end - startView.start) / chart.over.clientWidth;
        const move = (moveEvent: MouseEvent) => {
          const shift = -(moveEvent.clientX - startX) * perPixel;
          latest.current.onViewChange({ start: startView.start + shift, end: startView.end + shift });
        };
        const up = () => {
          window.removeEventListener("mousemove", move);
          window.removeEventListener("mouseup", up);
        };
        window.addEventListener("mousemove", move);
        window.addEventListener("mouseup", up);
      });
      observer = new ResizeObserver(() => {
        if (target.current) chart.setSize({ width: target.current.clientWidth, height });
      });
      observer.observe(target.current);
    });
    return () => {
      disposed = true;
      observer?.disconnect();
      plot.current?.destroy();
      plot.current = null;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [supported, height, units]);

  // new data or view: redraw without losing the zoom
  useEffect(() => {
    const chart = plot.current;
    if (!chart) return;
    programmatic.current = true;
    chart.setData(alignedData(data), false);
    chart.setScale("x", { min: view.start, max: view.end });
    programmatic.current = false;
  }, [data, view]);

  const onKeyDown = (event: React.KeyboardEvent) => {
    const actions: Record<string, () => View> = {
      ArrowLeft: () => panView(view, -0.25),
      ArrowRight: () => panView(view, 0.25),
      "+": () => zoomView(view, 0.5),
      "=": () => zoomView(view, 0.5),
      "-": () => zoomView(view, 2),
    };
    const action = actions[event.key];
    if (action) {
      event.preventDefault();
      onViewChange(action());
    }
  };

  if (!supported) {
    return (
      <p className="muted" role="note">
        The trend needs a browser with canvas support.
      </p>
    );
  }
  return (
    <div
      ref={frame}
      className={`trend-frame${data?.kind === "aggregated" ? "" : " raw"}`}
      tabIndex={0}
      role="group"
      aria-label="Trend of PV, SP and OP. Drag to zoom, Shift+drag or the arrow keys to pan, + and - to zoom."
      onKeyDown={onKeyDown}
    >
      <div ref={target} />
    </div>
  );
}
