// The loop page against a fake gateway: the period picker and the period's assessment, the
// not-assessed status with its reason, "% of est. span" labels, and the on-demand diagnosis
// shown where it was asked for.
import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";

import type { Assessment, Loop } from "../../src/api/types";
import { LoopDetailPage } from "../../src/pages/loop/LoopDetailPage";
import { fakeGateway, json } from "../fakeGateway";
import { renderPage } from "../renderApp";

const LOOP: Loop = {
  loop_id: "TIC-205",
  name: "Reactor temperature",
  description: "",
  unit: "U100",
  area: "Reactors",
  engineering_units: "degC",
  active: true,
  created_at: null,
  updated_at: null,
  status: "poor",
  health_score: 41,
  main_problem: "stiction",
  kpi_window_end: "2026-01-10T11:00:00Z",
  criticality: 4,
  bad_actor_score: 236,
};

const LATEST = {
  loop_id: "TIC-205",
  window_start: "2026-01-10T10:45:00Z",
  window_end: "2026-01-10T11:00:00Z",
  source: "raw",
  status: "poor",
  health_score: 41,
  error_std_pct: 0.1234,
  span_source: "estimated",
  reasons: {},
};

const DAY: Assessment = {
  loop_id: "TIC-205",
  period: "day",
  start: "2026-01-09T11:00:00Z",
  end: "2026-01-10T11:00:00Z",
  status: "poor",
  health_score: 44.5,
  main_problem: "stiction",
  status_shares: { good: 0, fair: 0.25, poor: 0.625, offline: 0, not_assessed: 0.125 },
  findings: [
    { category: "external_disturbance", persistence: 0.3, mean_severity: 0.4 },
    { category: "stiction", persistence: 0.9, mean_severity: 0.7 },
  ],
  worst_window: { start: "2026-01-10T03:00:00Z", end: "2026-01-10T03:15:00Z", health_score: 21.5, status: "poor" },
  windows_assessed: 84,
  windows_total: 96,
  previous: { health_score: 50, status: "poor" },
  change: { health_score: -5.5 },
};

const STORED_FINDING = {
  loop_id: "TIC-205",
  window_start: "2026-01-10T10:45:00Z",
  window_end: "2026-01-10T11:00:00Z",
  category: "oscillation",
  severity: 0.6,
  confidence: 0.9,
  evidence: { amplitude_pct_of_span: 0.8 },
  recommendation: "An older stored finding.",
  trigger: "kpi_cycle",
  created_at: null,
};

function gateway(routes: Parameters<typeof fakeGateway>[0] = {}) {
  return fakeGateway({
    "GET /loops/TIC-205": () => LOOP,
    "GET /data/range": () => ({ loop_id: "TIC-205", start: null, end: null, raw: null, agg_1m: null, agg_1h: null }),
    "GET /loops/TIC-205/kpis/latest": () => LATEST,
    "GET /loops/TIC-205/kpis": () => ({ loop_id: "TIC-205", start: "", end: "", count: 1, columns: [], items: [LATEST] }),
    "GET /loops/TIC-205/config": () => ({ loop_id: "TIC-205", loop_type: "temperature", criticality: 4, normal_modes: null, pv_lo: null, pv_hi: null }),
    "GET /loops/TIC-205/diagnostics": () => ({ loop_id: "TIC-205", count: 1, items: [STORED_FINDING] }),
    "GET /loops/TIC-205/kpis/latest/oscillation-view": () => ({
      loop_id: "TIC-205",
      window_start: null,
      window_end: null,
      lag_s: [],
      acf: [],
      period_s: [],
      power: [],
      reason: "no raw samples in the window",
    }),
    "GET /loops/TIC-205/assessment": (request) => ({ ...DAY, period: request.query.get("period") }),
    ...routes,
  });
}

describe("LoopDetailPage", () => {
  it("shows the day's assessment by default and another period on request", async () => {
    const { api, requests } = gateway();
    renderPage(<LoopDetailPage />, { api, path: "/fleet/loops/:loopId", at: "/fleet/loops/TIC-205" });
    const panel = await screen.findByTestId("assessment");
    expect(within(panel).getByRole("heading", { name: "Day assessment" })).toBeInTheDocument();
    expect(panel).toHaveTextContent("84 of 96 windows assessed");
    const shares = within(panel).getByRole("table", { name: "Share of the period in each status" });
    expect(within(shares).getAllByRole("row").map((row) => row.textContent)).toEqual(["Fair25 %", "Poor63 %", "Not assessed13 %"]);
    const findings = within(panel).getByRole("table", { name: "Findings over the period" });
    expect(within(findings).getAllByRole("row")[1]).toHaveTextContent("Valve stiction90 % of windows70 %");
    expect(within(panel).getByTestId("worst-window")).toHaveTextContent("21.5");
    expect(within(panel).getByTestId("health-change")).toHaveTextContent("Health −5.5 against the previous day (was Poor)");
    expect(requests.find((r) => r.path === "/loops/TIC-205/assessment")!.query.get("period")).toBe("day");

    const picker = screen.getByRole("group", { name: "Assessment period" });
    await userEvent.click(within(picker).getByRole("button", { name: "Week" }));
    expect(await screen.findByRole("heading", { name: "Week assessment" })).toBeInTheDocument();
    expect(requests.some((r) => r.path === "/loops/TIC-205/assessment" && r.query.get("period") === "week")).toBe(true);

    await userEvent.click(within(picker).getByRole("button", { name: "Window" }));
    await waitFor(() => expect(screen.queryByTestId("assessment")).not.toBeInTheDocument());
    expect(screen.getByText(/Status over the latest KPI window/)).toBeInTheDocument();
  });

  it("shows a not-assessed period with its reason and without a health", async () => {
    const unjudged = {
      ...DAY,
      status: "not_assessed",
      health_score: null,
      main_problem: null,
      reason: "40 % of the windows assessed (at least 50 % needed)",
      worst_window: null,
      previous: null,
      change: { health_score: null },
    };
    const { api } = gateway({ "GET /loops/TIC-205/assessment": () => unjudged });
    renderPage(<LoopDetailPage />, { api, path: "/fleet/loops/:loopId", at: "/fleet/loops/TIC-205?period=shift" });
    const reason = await screen.findByTestId("not-assessed-reason");
    expect(reason).toHaveTextContent("Not assessed: 40 % of the windows assessed (at least 50 % needed)");
    expect(screen.getAllByText("Not assessed")[0]).toHaveAttribute("title", "Not assessed: 40 % of the windows assessed (at least 50 % needed)");
    expect(screen.getByTestId("headline-not-assessed")).toBeInTheDocument();
    expect(screen.getByTestId("health-change")).toHaveTextContent("No previous period to compare with");
  });

  it("labels percentages of an estimated span and explains them", async () => {
    const { api } = gateway();
    renderPage(<LoopDetailPage />, { api, path: "/fleet/loops/:loopId", at: "/fleet/loops/TIC-205" });
    const value = await screen.findByText("0.12 % of est. span");
    expect(value).toHaveClass("span-estimated");
    expect(value.closest(".kpi-card")).toHaveAttribute("title", expect.stringContaining("no PV range (pv_lo/pv_hi) is configured"));
    expect(screen.getByTestId("span-estimated-note")).toHaveTextContent("% of est. span");
    expect(within(screen.getByTestId("span-estimated-note")).getByRole("link", { name: "Set the PV range" })).toHaveAttribute(
      "href",
      "/fleet/loops/TIC-205/config",
    );
    // evidence in % of the PV span says so too
    expect(await screen.findByText("Amplitude pct of span (of est. span)")).toBeInTheDocument();
  });

  it("labels percentages of a configured span plainly", async () => {
    const { api } = gateway({ "GET /loops/TIC-205/kpis/latest": () => ({ ...LATEST, span_source: "configured" }) });
    renderPage(<LoopDetailPage />, { api, path: "/fleet/loops/:loopId", at: "/fleet/loops/TIC-205" });
    expect(await screen.findByText("0.12 % of span")).not.toHaveClass("span-estimated");
    expect(screen.queryByTestId("span-estimated-note")).not.toBeInTheDocument();
    expect(await screen.findByText("Amplitude pct of span")).toBeInTheDocument();
  });

  it("shows the on-demand diagnosis in the panel, marked, with its window and time", async () => {
    const asked: unknown[] = [];
    const { api } = gateway({
      "POST /loops/TIC-205/diagnostics/run": (request) => {
        asked.push(request.body);
        return json({
          loop_id: "TIC-205",
          window_start: "2026-01-10T10:07:00Z",
          window_end: "2026-01-10T11:07:00Z",
          samples: 3600,
          sample_period_s: 1,
          primary: "sluggish_tuning",
          findings: [
            { category: "sluggish_tuning", severity: 0.5, confidence: 0.8, evidence: { idle_index: 0.7 }, recommendation: "Increase the gain." },
          ],
          stiction: null,
          oscillation: null,
          health_score: 70,
          notes: {},
        });
      },
    });
    renderPage(<LoopDetailPage />, { api, roles: ["viewer", "engineer"], path: "/fleet/loops/:loopId", at: "/fleet/loops/TIC-205" });
    expect(await screen.findByText("An older stored finding.")).toBeInTheDocument();
    await userEvent.click(screen.getByRole("button", { name: "Diagnose the last hour" }));
    const result = await screen.findByTestId("on-demand-diagnosis");
    expect(asked).toEqual([{}]);
    expect(within(result).getByRole("status")).toHaveTextContent(/On-demand diagnosis of .*10 Jan 2026.* run at .* 3,600 samples · most likely cause: Sluggish tuning/);
    expect(within(result).getByText("Increase the gain.")).toBeInTheDocument();
    expect(within(result).getByText(/on_demand/)).toBeInTheDocument();
    expect(screen.queryByText("An older stored finding.")).not.toBeInTheDocument();
    await userEvent.click(within(result).getByRole("button", { name: "Back to the stored findings" }));
    expect(await screen.findByText("An older stored finding.")).toBeInTheDocument();
  });

  it("says so when the on-demand diagnosis finds nothing, instead of keeping older findings", async () => {
    const { api } = gateway({
      "POST /loops/TIC-205/diagnostics/run": () =>
        json({ loop_id: "TIC-205", window_start: "2026-01-10T10:07:00Z", window_end: "2026-01-10T11:07:00Z", samples: 3600, primary: null, findings: [], health_score: 95, notes: {} }),
    });
    renderPage(<LoopDetailPage />, { api, roles: ["engineer"], path: "/fleet/loops/:loopId", at: "/fleet/loops/TIC-205" });
    await screen.findByText("An older stored finding.");
    await userEvent.click(screen.getByRole("button", { name: "Diagnose the last hour" }));
    expect(await screen.findByText("No problem found in this window.")).toBeInTheDocument();
    expect(screen.queryByText("An older stored finding.")).not.toBeInTheDocument();
  });
});
