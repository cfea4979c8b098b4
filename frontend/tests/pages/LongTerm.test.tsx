// The loop page's long-term panel and the fleet health trend against a fake gateway: the range
// buttons choose the query (days, then weeks beyond 90 days), the chart draws the health per
// bucket, and the before/after form shows each KPI's change.
import { fireEvent, screen, waitFor, within } from "@testing-library/react";

import { healthPath } from "../../src/components/HealthTrendChart";
import { rangeOf, resolutionFor, type Trend } from "../../src/api/trends";
import { FleetTrendPanel } from "../../src/pages/FleetTrendPanel";
import { LongTermPanel, changeText } from "../../src/pages/loop/LongTermPanel";
import { fakeGateway, json } from "../fakeGateway";
import { renderPage } from "../renderApp";

function trendAnswer(resolution: "day" | "week", healths: (number | null)[]): Trend {
  const start = Date.parse("2025-01-06T00:00:00Z");
  const step = resolution === "day" ? 86_400_000 : 7 * 86_400_000;
  return {
    loop_id: "FIC-101",
    start: new Date(start).toISOString(),
    end: new Date(start + healths.length * step).toISOString(),
    resolution,
    kpis: ["health_score"],
    count: healths.length,
    items: healths.map((health, index) => ({
      bucket_start: new Date(start + index * step).toISOString(),
      group: null,
      windows: 96,
      loops: 1,
      means: { health_score: health },
      status_shares: { good: 1 },
    })),
  };
}

describe("trend helpers", () => {
  it("uses days up to 90 days and weeks beyond", () => {
    expect(resolutionFor(30)).toBe("day");
    expect(resolutionFor(90)).toBe("day");
    expect(resolutionFor(365)).toBe("week");
  });

  it("spans the chosen number of days back from now", () => {
    const { start, end } = rangeOf(30, new Date("2025-03-01T00:00:00Z"));
    expect(start).toBe("2025-01-30T00:00:00.000Z");
    expect(end).toBe("2025-03-01T00:00:00.000Z");
  });

  it("draws health on a 0-100 scale by time and breaks the line at a missing bucket", () => {
    const trend = trendAnswer("day", [100, 0, null, 50]);
    const path = healthPath(trend.items, Date.parse(trend.start), Date.parse(trend.end));
    // 4 days over 588 px (600 - 2 x 6): x = 6, 153, 447; y = 6 (100), 134 (0), 70 (50)
    expect(path).toBe("M6.0,6.0L153.0,134.0M447.0,70.0");
  });

  it("writes signed changes with their percentage", () => {
    expect(changeText(-20, -24.54)).toBe("-20.00 (-24.5 %)");
    expect(changeText(0.05, 5.56)).toBe("+0.05 (+5.6 %)");
    expect(changeText(3, null)).toBe("+3.00");
    expect(changeText(null, null)).toBe("–");
  });
});

describe("LongTermPanel", () => {
  it("loads 90 days per day, switches to 365 days per week and compares around a date", async () => {
    const { api, requests } = fakeGateway({
      "GET /loops/FIC-101/trends": (request) =>
        request.query.get("resolution") === "week" ? trendAnswer("week", [80, 70, 60]) : trendAnswer("day", [81.5, 81.5, 61.5, 61.5]),
      "GET /loops/FIC-101/compare": (request) => ({
        loop_id: "FIC-101",
        at: `${request.query.get("at")}T00:00:00.000Z`,
        days: Number(request.query.get("days")),
        before_start: "2025-01-20T00:00:00.000Z",
        after_end: "2025-02-17T00:00:00.000Z",
        windows_before: 56,
        windows_after: 56,
        items: [
          { kpi: "health_score", before: 81.5, after: 61.5, change: -20, change_pct: -24.54, windows_before: 56, windows_after: 56 },
          { kpi: "service_factor", before: 0.9, after: 0.95, change: 0.05, change_pct: 5.56, windows_before: 56, windows_after: 56 },
          { kpi: "harris_index", before: null, after: null, change: null, change_pct: null, windows_before: 0, windows_after: 0 },
        ],
      }),
    });
    renderPage(<LongTermPanel loopId="FIC-101" />, { api, path: "/", at: "/" });
    expect(await screen.findByTestId("long-term-summary")).toHaveTextContent("4 days with KPI windows");
    expect(screen.getByTestId("health-trend-line").getAttribute("d")).toMatch(/^M/);
    const first = requests.find((request) => request.path === "/loops/FIC-101/trends")!;
    expect(first.query.get("resolution")).toBe("day");
    const span = Date.parse(first.query.get("end")!) - Date.parse(first.query.get("start")!);
    expect(span).toBe(90 * 86_400_000);

    fireEvent.click(screen.getByRole("button", { name: "365 days" }));
    await waitFor(() => expect(screen.getByTestId("long-term-summary")).toHaveTextContent("3 weeks with KPI windows"));
    expect(requests.filter((request) => request.path === "/loops/FIC-101/trends").at(-1)!.query.get("resolution")).toBe("week");

    fireEvent.change(screen.getByLabelText(/Date/), { target: { value: "2025-02-03" } });
    fireEvent.change(screen.getByLabelText("Days on each side"), { target: { value: "14" } });
    fireEvent.click(screen.getByRole("button", { name: "Compare" }));
    const table = await screen.findByTestId("compare-table");
    const compare = requests.find((request) => request.path === "/loops/FIC-101/compare")!;
    expect(compare.query.get("at")).toBe("2025-02-03");
    expect(compare.query.get("days")).toBe("14");
    expect(table).toHaveTextContent("56 and 56 KPI windows");
    const health = table.querySelector('tr[data-kpi="health_score"]') as HTMLElement;
    expect(within(health).getByText("-20.00 (-24.5 %)")).toBeInTheDocument();
    expect(within(health).getByText("81.50")).toBeInTheDocument();
    expect(table.querySelector('tr[data-kpi="harris_index"]')).toBeNull();
  });

  it("shows the gateway's message when the comparison is refused", async () => {
    const { api } = fakeGateway({
      "GET /loops/FIC-101/trends": () => trendAnswer("day", [80]),
      "GET /loops/FIC-101/compare": () =>
        json({ title: "Invalid parameter", status: 422, detail: "at: not a date: 'x'" }, 422),
    });
    renderPage(<LongTermPanel loopId="FIC-101" />, { api, path: "/", at: "/" });
    await screen.findByTestId("long-term-summary");
    fireEvent.change(screen.getByLabelText(/Date/), { target: { value: "2025-02-03" } });
    fireEvent.click(screen.getByRole("button", { name: "Compare" }));
    expect(await screen.findByRole("alert")).toHaveTextContent("not a date");
    expect(screen.queryByTestId("compare-table")).toBeNull();
  });
});

describe("FleetTrendPanel", () => {
  it("draws the plant health trend and reloads per range", async () => {
    const { api, requests } = fakeGateway({
      "GET /fleet/trends": () => ({ ...trendAnswer("day", [76.25, 59.6]), by: "plant", weighting: "criticality" }),
    });
    renderPage(<FleetTrendPanel />, { api, path: "/", at: "/" });
    expect(await screen.findByRole("img", { name: /Plant health per day over the last 90 days/ })).toBeInTheDocument();
    expect(requests[0].query.get("by")).toBe("plant");
    fireEvent.click(screen.getByRole("button", { name: "30 days" }));
    await waitFor(() => expect(requests.length).toBe(2));
    const span = Date.parse(requests[1].query.get("end")!) - Date.parse(requests[1].query.get("start")!);
    expect(span).toBe(30 * 86_400_000);
  });
});
