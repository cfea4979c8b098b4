// The loop page's Oscillations panel: every stored component of the latest window, largest
// first; an assessed window without oscillation; a window not assessed with its reason.
import { render, screen, within } from "@testing-library/react";

import { OscillationsPanel, componentsOf } from "../../src/pages/loop/OscillationsPanel";

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
