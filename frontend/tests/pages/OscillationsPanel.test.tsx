// The loop page's Oscillations panel: every stored component of the latest window, largest
// first; an assessed window without oscillation; a window not assessed with its reason.
import { render, screen, within } from "@testing-library/react";

import { curvePath, scaleX } from "../../src/pages/loop/OscillationChart";
import { OscillationsPanel, componentsOf } from "../../src/pages/loop/OscillationsPanel";
import { fakeGateway, json } from "../fakeGateway";
import { renderPage } from "../renderApp";

const LATEST = {
  loop_id: "PIC-301",
  window_start: "2026-01-10T10:45:00Z",
  window_end: "2026-01-10T11:00:00Z",
  osc_components: [
    { period_s: 51.2, strength: 0.91, regularity: 4.3, share: 0.83, amplitude: 1.5, peak_ratio: 30, amplitude_pct: 1.25 },
    { period_s: 17.0, strength: 0.98, regularity: 12.0, share: 1.0, amplitude: 0.4, peak_ratio: 80, amplitude_pct: null },
  ],
};

describe("OscillationsPanel", () => {
  it("lists period, strength, regularity, share and amplitude of each component", () => {
    render(<OscillationsPanel latest={LATEST} units="bar" />);
    const table = screen.getByRole("table", { name: /oscillation components/i });
    const rows = within(table).getAllByRole("row").slice(1);
    expect(rows).toHaveLength(2);
    const first = within(rows[0]).getAllByRole("cell").map((cell) => cell.textContent);
    expect(first).toEqual(["51 s", "0.91", "4.3", "83 %", "1.25 % of span"]);
    const second = within(rows[1]).getAllByRole("cell").map((cell) => cell.textContent);
    expect(second).toEqual(["17 s", "0.98", "12.0", "100 %", "0.400 bar"]);
  });

  it("says so when the window was assessed and nothing oscillates", () => {
    render(<OscillationsPanel latest={{ ...LATEST, osc_components: [] }} />);
    expect(screen.getByText("No significant oscillation in the latest window.")).toBeInTheDocument();
    expect(screen.queryByRole("table")).not.toBeInTheDocument();
  });

  it("gives the reason when the window was not assessed", () => {
    const latest = { ...LATEST, osc_components: null, reasons: { osc_components: "oscillation not assessed: too few samples" } };
    render(<OscillationsPanel latest={latest} />);
    expect(screen.getByText(/Not assessed in the latest window: oscillation not assessed: too few samples/)).toBeInTheDocument();
  });

  it("reads only well-formed components", () => {
    expect(componentsOf({ osc_components: "bad" })).toBeNull();
    expect(componentsOf({})).toBeNull();
    expect(componentsOf({ osc_components: [{ period_s: 20 }, { nope: 1 }, null] })).toHaveLength(1);
  });
});

describe("OscillationChart", () => {
  const view = {
    loop_id: "PIC-301",
    window_start: LATEST.window_start,
    window_end: LATEST.window_end,
    lag_s: [0, 150, 300, 450],
    acf: [1, -1, 1, 0],
    period_s: [2, 20, 200],
    power: [0, 1, 0.5],
    reason: null,
  };

  it("maps lags linearly and periods logarithmically into the chart", () => {
    expect(curvePath([0, 450], [1, -1], -1, 1)).toBe("M4.0,4.0L316.0,86.0");
    expect(scaleX(20, 2, 200, true)).toBeCloseTo(160, 5); // a decade of two: the middle
    expect(curvePath([], [], 0, 1)).toBe("");
    expect(curvePath([1, 2], [1], 0, 1)).toBe("");
  });

  it("fetches the ACF and spectrum of the latest window and marks each component's period", async () => {
    const { api, requests } = fakeGateway({ "GET /loops/PIC-301/kpis/latest/oscillation-view": () => json(view) });
    renderPage(<OscillationsPanel latest={LATEST} loopId="PIC-301" />, { api, path: "/", at: "/" });
    const acf = await screen.findByRole("img", { name: "Autocorrelation of the latest window" });
    expect(acf.querySelector("path")?.getAttribute("d")).toBe(curvePath(view.lag_s, view.acf, -1, 1));
    const spectrum = screen.getByRole("img", { name: "Power spectrum of the latest window" });
    const marks = within(spectrum as unknown as HTMLElement).getAllByTestId("component-period");
    expect(marks.map((mark) => Number(mark.getAttribute("x1")))).toEqual([scaleX(51.2, 2, 200, true), scaleX(17.0, 2, 200, true)]);
    expect(requests.map((request) => request.path)).toEqual(["/loops/PIC-301/kpis/latest/oscillation-view"]);
  });

  it("shows why there is no chart", async () => {
    const empty = { ...view, lag_s: [], acf: [], period_s: [], power: [], reason: "no raw samples in the window" };
    const { api } = fakeGateway({ "GET /loops/PIC-301/kpis/latest/oscillation-view": () => json(empty) });
    renderPage(<OscillationsPanel latest={LATEST} loopId="PIC-301" />, { api, path: "/", at: "/" });
    expect(await screen.findByText("No chart: no raw samples in the window.")).toBeInTheDocument();
  });
});
