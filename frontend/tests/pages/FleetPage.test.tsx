// The fleet page against a fake gateway (route table): counts, ranking, KPI columns, sorting
// and filtering through the address, empty and error states.
import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";

import type { Loop } from "../../src/api/types";
import { FleetPage, LIVE_REFRESH_MS, fleetQueryOf } from "../../src/pages/FleetPage";
import { fakeGateway, json } from "../fakeGateway";
import { renderPage } from "../renderApp";

function loop(loopId: string, health: number | null, status: Loop["status"], problem: string | null): Loop {
  return {
    loop_id: loopId,
    name: loopId,
    description: "",
    unit: "U100",
    area: "Reactors",
    engineering_units: "m3/h",
    active: true,
    created_at: null,
    updated_at: null,
    status,
    health_score: health,
    main_problem: problem,
    kpi_window_end: health === null ? null : "2026-01-10T11:00:00Z",
    criticality: 3,
    bad_actor_score: health === null ? null : (100 - health) * 3,
  };
}

const LOOPS = [loop("TIC-205", 35, "poor", "stiction"), loop("FIC-101", 72, "fair", "oscillation"), loop("LIC-300", 95, "good", null)];
const SUMMARY = {
  loops: 3,
  health_score: 67.3,
  status_counts: { good: 1, fair: 1, poor: 1, offline: 0 },
  health_histogram: [...Array(10).keys()].map((i) => ({ from: i * 10, to: i * 10 + 10, loops: [3, 7, 9].includes(i) ? 1 : 0 })),
  bad_actors: LOOPS.map((item, index) => ({ ...item, rank: index + 1 })),
  units: [{ unit: "U100", loops: 3, health_score: 67.3, status_counts: { good: 1, fair: 1, poor: 1, offline: 0 } }],
};
const KPIS: Record<string, object> = {
  "TIC-205": { service_factor: 0.981, saturation: 0.12, oscillating: true, osc_period_s: 164, osc_regularity: 3.2 },
  "FIC-101": { service_factor: 1, saturation: 0, oscillating: false, osc_period_s: null, osc_regularity: 0.4 },
  "LIC-300": { service_factor: 1, saturation: 0, oscillating: false, osc_period_s: null, osc_regularity: 0.2 },
};

function gateway(loops = LOOPS) {
  const routes: Record<string, Parameters<typeof fakeGateway>[0][string]> = {
    "GET /fleet/summary": () => SUMMARY,
    "GET /fleet/ranking": () => ({ status: 200, body: "rank,loop_id\n1,TIC-205\n", headers: { "content-type": "text/csv" } }),
    "GET /loops": (request) => {
      const status = request.query.get("status");
      const items = loops.filter((item) => !status || item.status === status);
      return { items, total: items.length, offset: 0, limit: 25 };
    },
  };
  for (const item of loops) routes[`GET /loops/${item.loop_id}/kpis/latest`] = () => KPIS[item.loop_id];
  return { ...fakeGateway(routes), routes };
}

describe("FleetPage", () => {
  it("shows counts per status, the ranking and the latest KPIs of each loop", async () => {
    const { api, requests } = gateway();
    renderPage(<FleetPage />, { api, path: "/fleet", at: "/fleet" });
    expect(await screen.findByTestId("count-poor")).toHaveTextContent("1");
    const table = await screen.findByRole("table", { name: /bad-actor score/ });
    const rows = within(table).getAllByRole("row").slice(1);
    expect(rows.map((row) => row.getAttribute("data-loop"))).toEqual(["TIC-205", "FIC-101", "LIC-300"]);
    await waitFor(() => expect(within(rows[0]).getByText("98.1 %")).toBeInTheDocument());
    expect(within(rows[0]).getByText("Yes, 2.7 min")).toBeInTheDocument();
    expect(within(rows[0]).getByText("12.0 %")).toBeInTheDocument();
    expect(within(rows[0]).getByText("Valve stiction")).toBeInTheDocument();
    expect(within(rows[0]).getByRole("link", { name: "TIC-205" })).toHaveAttribute("href", "/fleet/loops/TIC-205");
    const list = requests.find((request) => request.path === "/loops")!;
    expect(list.query.get("sort")).toBe("bad_actor");
    expect(list.query.get("order")).toBe("desc");
    expect(requests.find((request) => request.path === "/loops/TIC-205/kpis/latest")!.query.get("columns")).toContain("service_factor");
  });

  it("shows live PV/SP/OP/mode of the rows on screen from one batched request, refreshed", async () => {
    vi.useFakeTimers({ shouldAdvanceTime: true });
    try {
      let calls = 0;
      const { api, requests } = fakeGateway({
        ...gateway().routes,
        "GET /data/realtime": (request) => {
          calls += 1;
          const ids = request.query.get("loopIds")!.split(",");
          return {
            generated_at: "2026-01-10T11:00:00Z",
            count: ids.length - 1,
            loops: ids
              .filter((id) => id !== "LIC-300")
              .map((id) => ({ loop_id: id, ts: "2026-01-10T11:00:00Z", pv: 50 + calls, sp: 52.5, op: 31.25, mode: id === "TIC-205" ? "MAN" : "AUT", age_s: 1.2, times: {} })),
            unknown: [],
          };
        },
      });
      renderPage(<FleetPage />, { api, path: "/fleet", at: "/fleet" });
      await waitFor(() => expect(screen.getByTestId("live-TIC-205")).toHaveTextContent("51.00 / 52.50 / 31.25 · MAN"));
      expect(screen.getByTestId("live-FIC-101")).toHaveTextContent("51.00 / 52.50 / 31.25 · AUT");
      expect(screen.getByTestId("live-LIC-300")).toHaveTextContent("–");
      const live = requests.filter((r) => r.path === "/data/realtime");
      expect(live).toHaveLength(1);
      expect(live[0].query.get("loopIds")).toBe("TIC-205,FIC-101,LIC-300");
      expect(live[0].query.get("loopId")).toBeNull();
      vi.advanceTimersByTime(LIVE_REFRESH_MS);
      await waitFor(() => expect(screen.getByTestId("live-TIC-205")).toHaveTextContent("52.00 / 52.50 / 31.25 · MAN"));
      expect(requests.filter((r) => r.path === "/data/realtime")).toHaveLength(2);
    } finally {
      vi.useRealTimers();
    }
  });

  it("sorts and filters through the gateway", async () => {
    const { api, requests } = gateway();
    renderPage(<FleetPage />, { api, path: "/fleet", at: "/fleet" });
    await screen.findByRole("table", { name: /bad-actor score/ });
    await userEvent.click(screen.getByRole("button", { name: /^Health/ }));
    await waitFor(() => expect(requests.some((r) => r.path === "/loops" && r.query.get("sort") === "health_score" && r.query.get("order") === "asc")).toBe(true));
    await userEvent.selectOptions(screen.getByLabelText("Status"), "good");
    await waitFor(() => expect(screen.queryByRole("link", { name: "TIC-205" })).not.toBeInTheDocument());
    expect(screen.getByRole("link", { name: "LIC-300" })).toBeInTheDocument();
    expect(requests.some((r) => r.path === "/loops" && r.query.get("status") === "good" && r.query.get("sort") === "health_score")).toBe(true);
  });

  it("rolls the loops up per area on request", async () => {
    const { api, requests } = gateway();
    renderPage(<FleetPage />, { api, path: "/fleet", at: "/fleet" });
    await userEvent.click(await screen.findByRole("button", { name: "Area" }));
    expect(await screen.findByRole("heading", { name: "Roll-up per area" })).toBeInTheDocument();
    const reactors = await screen.findByRole("button", { name: "Reactors" });
    // criticality 3 everywhere: (35 + 72 + 95) / 3
    expect(reactors.closest("tr")).toHaveTextContent("67.3");
    expect(requests.some((r) => r.path === "/loops" && r.query.get("limit") === "1000")).toBe(true);
  });

  it("says when there are no loops, and when the gateway fails", async () => {
    const empty = gateway([]);
    renderPage(<FleetPage />, { api: empty.api, path: "/fleet", at: "/fleet" });
    expect(await screen.findByText(/No loops yet/)).toBeInTheDocument();
  });

  it("shows the error of the gateway with a retry", async () => {
    const { api } = fakeGateway({ "GET /fleet/summary": () => json({ detail: "database unavailable" }, 503, { "retry-after": "5" }), "GET /loops": () => json({ detail: "database unavailable" }, 503) });
    renderPage(<FleetPage />, { api, path: "/fleet", at: "/fleet" });
    const alerts = await screen.findAllByRole("alert");
    expect(alerts[0]).toHaveTextContent("Could not load the fleet summary. Database unavailable. Try again in 5 s.");
    expect(screen.getAllByRole("button", { name: "Retry" }).length).toBeGreaterThan(0);
  });

  it("reads the table query from the address, ignoring unknown values", () => {
    expect(fleetQueryOf(new URLSearchParams("status=poor&sort=unit&offset=50&limit=50"))).toEqual({
      period: "day",
      status: "poor",
      unit: undefined,
      area: undefined,
      sort: "unit",
      order: "asc",
      offset: 50,
      limit: 50,
    });
    expect(fleetQueryOf(new URLSearchParams("status=bogus&sort=drop&limit=7"))).toMatchObject({ status: undefined, sort: "bad_actor", order: "desc", limit: 25 });
    expect(fleetQueryOf(new URLSearchParams("period=week")).period).toBe("week");
    expect(fleetQueryOf(new URLSearchParams("period=month")).period).toBe("day");
    expect(fleetQueryOf(new URLSearchParams("status=not_assessed")).status).toBe("not_assessed");
  });

  it("ranks over a day by default and over the period the user picks", async () => {
    const { api, requests } = gateway();
    renderPage(<FleetPage />, { api, path: "/fleet", at: "/fleet" });
    await screen.findByRole("table", { name: /bad-actor score/ });
    const picker = screen.getByRole("group", { name: "Assessment period" });
    expect(within(picker).getByRole("button", { name: "Day" })).toHaveAttribute("aria-pressed", "true");
    expect(requests.find((r) => r.path === "/fleet/summary")!.query.get("period")).toBe("day");
    expect(requests.find((r) => r.path === "/loops")!.query.get("period")).toBe("day");
    await userEvent.click(within(picker).getByRole("button", { name: "Shift" }));
    await waitFor(() => expect(requests.some((r) => r.path === "/loops" && r.query.get("period") === "shift")).toBe(true));
    expect(requests.some((r) => r.path === "/fleet/summary" && r.query.get("period") === "shift")).toBe(true);
    expect(within(picker).getByRole("button", { name: "Shift" })).toHaveAttribute("aria-pressed", "true");
    expect(screen.getByText(/over the last shift \(8 h\)/)).toBeInTheDocument();
    expect(screen.getByRole("link", { name: "TIC-205" })).toHaveAttribute("href", "/fleet/loops/TIC-205?period=shift");
  });

  it("shows a not-assessed loop as such, with its reason", async () => {
    const unjudged = { ...loop("PIC-400", null, "not_assessed", null), reason: "data 49 % complete" };
    const { api } = gateway([...LOOPS, unjudged]);
    renderPage(<FleetPage />, { api, path: "/fleet", at: "/fleet" });
    const row = (await screen.findByRole("link", { name: "PIC-400" })).closest("tr")!;
    const badge = within(row).getByText("Not assessed");
    expect(badge).toHaveAttribute("title", "Not assessed: data 49 % complete");
    expect(badge).toHaveAccessibleName("Not assessed: data 49 % complete");
    expect(screen.getByRole("option", { name: "Not assessed" })).toBeInTheDocument();
  });

  it("exports the whole fleet's ranking as one CSV request for the chosen period", async () => {
    const { api, requests } = gateway();
    const created: string[] = [];
    URL.createObjectURL = (() => {
      created.push("blob");
      return "blob:fleet";
    }) as typeof URL.createObjectURL;
    URL.revokeObjectURL = (() => undefined) as typeof URL.revokeObjectURL;
    renderPage(<FleetPage />, { api, path: "/fleet", at: "/fleet?period=week" });
    await screen.findByRole("table", { name: /bad-actor score/ });
    const before = requests.length;
    await userEvent.click(screen.getByRole("button", { name: /Export fleet CSV/ }));
    const isExport = (r: (typeof requests)[number]) =>
      r.path === "/fleet/ranking" && r.query.get("format") === "csv";
    await waitFor(() => expect(requests.slice(before).some(isExport)).toBe(true));
    // the rows' own live values and KPIs may still be loading: only the fleet's requests count
    const exported = requests.slice(before).filter((r) => r.path.startsWith("/fleet"));
    expect(exported.map((r) => r.path)).toEqual(["/fleet/ranking"]);
    expect(exported[0].query.get("format")).toBe("csv");
    expect(exported[0].query.get("period")).toBe("week");
  });
});
