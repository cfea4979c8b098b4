import { render, screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";

import { AsyncView } from "../../src/components/AsyncView";
import { FindingCard } from "../../src/components/FindingCard";
import { HealthHistogram } from "../../src/components/HealthHistogram";
import { Pagination, pageCount } from "../../src/components/Pagination";
import { extentOf, niceTicks } from "../../src/components/PvOpPlot";
import { SortHeader } from "../../src/components/SortHeader";
import { sparklinePath } from "../../src/components/Sparkline";
import { HealthBar, StatusBadge } from "../../src/components/StatusBadge";
import { TrendChart, panView, zoomView } from "../../src/components/TrendChart";

describe("SortHeader", () => {
  it("marks the sorted column and toggles the order", async () => {
    const onSort = vi.fn();
    render(
      <table>
        <thead>
          <tr>
            <SortHeader column="health_score" sort="health_score" order="asc" onSort={onSort}>
              Health
            </SortHeader>
            <SortHeader column="unit" sort="health_score" order="asc" onSort={onSort} initialOrder="desc">
              Unit
            </SortHeader>
          </tr>
        </thead>
      </table>,
    );
    const [health, unit] = screen.getAllByRole("columnheader");
    expect(health).toHaveAttribute("aria-sort", "ascending");
    expect(unit).toHaveAttribute("aria-sort", "none");
    await userEvent.click(screen.getByRole("button", { name: /Health/ }));
    expect(onSort).toHaveBeenLastCalledWith("health_score", "desc");
    await userEvent.click(screen.getByRole("button", { name: /Unit/ }));
    expect(onSort).toHaveBeenLastCalledWith("unit", "desc");
  });
});

describe("Pagination", () => {
  it("counts pages and disables the ends", async () => {
    expect(pageCount(0, 25)).toBe(1);
    expect(pageCount(51, 25)).toBe(3);
    const onOffset = vi.fn();
    const onPageSize = vi.fn();
    render(<Pagination total={51} offset={25} pageSize={25} label="Loops" onOffset={onOffset} onPageSize={onPageSize} />);
    expect(screen.getByText("26–50 of 51")).toBeInTheDocument();
    expect(screen.getByText("Page 2 of 3")).toBeInTheDocument();
    await userEvent.click(screen.getByRole("button", { name: /Next/ }));
    expect(onOffset).toHaveBeenCalledWith(50);
    await userEvent.selectOptions(screen.getByLabelText("Rows per page"), "50");
    expect(onPageSize).toHaveBeenCalledWith(50);
  });

  it("cannot go before the first page", () => {
    render(<Pagination total={3} offset={0} pageSize={25} label="Loops" onOffset={() => undefined} onPageSize={() => undefined} />);
    expect(screen.getByRole("button", { name: /Previous/ })).toBeDisabled();
    expect(screen.getByRole("button", { name: /Next/ })).toBeDisabled();
  });
});

describe("AsyncView", () => {
  it("shows loading, error with retry, empty and the data", async () => {
    const { rerender } = render(
      <AsyncView state={{ status: "loading", data: undefined, error: null }} what="the loops">
        {() => <p>data</p>}
      </AsyncView>,
    );
    expect(screen.getByRole("status")).toHaveTextContent("Loading the loops");
    const retry = vi.fn();
    rerender(
      <AsyncView state={{ status: "error", data: undefined, error: new Error("boom") }} what="the loops" onRetry={retry}>
        {() => <p>data</p>}
      </AsyncView>,
    );
    expect(screen.getByRole("alert")).toHaveTextContent("Could not load the loops. boom");
    await userEvent.click(screen.getByRole("button", { name: "Retry" }));
    expect(retry).toHaveBeenCalled();
    rerender(
      <AsyncView state={{ status: "ready", data: [] as number[], error: null }} what="the loops" isEmpty={(d) => d.length === 0} empty="Nothing here.">
        {() => <p>data</p>}
      </AsyncView>,
    );
    expect(screen.getByText("Nothing here.")).toBeInTheDocument();
    rerender(
      <AsyncView state={{ status: "loading", data: [1], error: null }} what="the loops">
        {(d) => <p>{d.length} rows</p>}
      </AsyncView>,
    );
    expect(screen.getByText("1 rows")).toBeInTheDocument(); // the previous data stays while reloading
  });
});

describe("status and health", () => {
  it("says the status in words", () => {
    render(
      <>
        <StatusBadge status="poor" />
        <StatusBadge status={null} />
        <HealthBar score={51.94} />
      </>,
    );
    expect(screen.getByText("Poor")).toHaveClass("status-poor");
    expect(screen.getByText("Offline")).toBeInTheDocument();
    expect(screen.getByText("51.9")).toBeInTheDocument();
  });

  it("gives the histogram as a table for screen readers", () => {
    render(<HealthHistogram bands={[{ from: 0, to: 10, loops: 2 }, { from: 10, to: 20, loops: 0 }]} />);
    const table = screen.getByRole("table", { name: "Loops per health band" });
    expect(table).toHaveTextContent("0–102");
  });
});

describe("FindingCard", () => {
  it("shows category, severity, recommendation and evidence", () => {
    render(
      <FindingCard
        finding={{
          loop_id: "TIC-205",
          window_start: "2026-01-10T10:00:00Z",
          window_end: "2026-01-10T11:00:00Z",
          category: "stiction",
          severity: 0.7,
          confidence: 0.85,
          evidence: { stiction_index: 0.78, method_scores: { curve_fit: 0.8 } },
          recommendation: "Inspect valve TV-205 for static friction.",
          trigger: "scheduled",
          created_at: null,
        }}
      />,
    );
    expect(screen.getByRole("article", { name: "Finding: Valve stiction" })).toBeInTheDocument();
    expect(screen.getByText(/Severity/)).toHaveTextContent("70 %");
    expect(screen.getByText(/Confidence 85 %/)).toBeInTheDocument();
    expect(screen.getByText("Inspect valve TV-205 for static friction.")).toBeInTheDocument();
    expect(screen.getByText("Stiction index").nextSibling).toHaveTextContent("0.780");
    expect(screen.getByText("Method scores").nextSibling).toHaveTextContent("Curve fit: 0.800");
    expect(screen.queryByRole("region", { name: /Explained by/ })).not.toBeInTheDocument();
  });

  it("nests the findings a root cause explains under it", () => {
    render(
      <FindingCard
        finding={{
          loop_id: "TIC-205",
          window_start: "2026-01-10T10:00:00Z",
          window_end: "2026-01-10T11:00:00Z",
          category: "stiction",
          severity: 0.7,
          confidence: 0.85,
          evidence: { stiction_index: 0.78 },
          recommendation: "Inspect valve TV-205 for static friction.",
          trigger: "kpi_cycle",
          created_at: null,
          explained: [
            {
              category: "oscillation",
              severity: 0.6,
              confidence: 0.9,
              evidence: { period_s: 120 },
              recommendation: "Find the source.",
              explained_by: "stiction",
            },
          ],
        }}
      />,
    );
    const nested = screen.getByRole("region", { name: "Explained by valve stiction" });
    expect(nested).toHaveTextContent("Oscillation");
    expect(nested).toHaveTextContent("explained by valve stiction");
    expect(nested).toHaveTextContent("severity 60 %");
    // a symptom, not a finding card of its own
    expect(screen.getAllByRole("article")).toHaveLength(1);
  });
});

describe("charts", () => {
  it("draws sparklines with breaks at missing values", () => {
    expect(sparklinePath([], 100, 30)).toBe("");
    const path = sparklinePath([1, 2, null, 3], 100, 30);
    expect(path.match(/M/g)).toHaveLength(2);
    expect(path.startsWith("M2.0,28.0")).toBe(true);
  });

  it("zooms around an anchor and pans by a share of the view", () => {
    expect(zoomView({ start: 0, end: 100 }, 0.5)).toEqual({ start: 25, end: 75 });
    expect(zoomView({ start: 0, end: 100 }, 0.5, 0)).toEqual({ start: 0, end: 50 });
    expect(zoomView({ start: 0, end: 100 }, 0.01)).toEqual({ start: 45, end: 55 }); // at least 10 s
    expect(panView({ start: 0, end: 100 }, -0.25)).toEqual({ start: -25, end: 75 });
  });

  it("picks round ticks and padded extents for the PV-OP plot", () => {
    expect(niceTicks({ min: 0, max: 100 })).toEqual([0, 20, 40, 60, 80, 100]);
    expect(niceTicks({ min: 396.2, max: 403.7 })).toEqual([398, 400, 402]);
    expect(extentOf([])).toBeNull();
    expect(extentOf([5, 5])).toEqual({ min: 4, max: 6 });
  });

  it("explains when the browser cannot draw the trend", () => {
    render(<TrendChart data={null} view={{ start: 0, end: 1 }} onViewChange={() => undefined} />);
    expect(screen.getByRole("note")).toHaveTextContent("canvas");
  });
});
