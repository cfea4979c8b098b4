// The trend panel against a fake gateway: raw samples for a short view, the latest values from
// /data/realtime, and auto-refresh that extends a followed trend with the new samples.
import { act, screen, waitFor } from "@testing-library/react";

import type { DataRange } from "../../src/api/types";
import { TrendPanel } from "../../src/pages/loop/TrendPanel";
import { fakeGateway } from "../fakeGateway";
import { renderPage } from "../renderApp";

const T0 = Date.parse("2026-01-10T10:00:00Z");
const iso = (s: number) => new Date(T0 + s * 1000).toISOString();

function rawAnswer(from: number, to: number) {
  const seconds = [...Array(Math.max(0, to - from)).keys()].map((i) => from + i);
  return {
    loop_id: "FIC-101",
    ts: seconds.map(iso),
    pv: seconds.map((s) => 50 + (s % 7)),
    sp: seconds.map(() => 50),
    op: seconds.map((s) => 40 + (s % 5)),
    mode: seconds.map(() => "AUT"),
    count: seconds.length,
    next_cursor: null,
  };
}

describe("TrendPanel", () => {
  it("loads raw samples, shows the latest values and follows new data", async () => {
    let latest = 599; // the newest sample, seconds after T0
    const { api, requests } = fakeGateway({
      "GET /data/raw": (request) => {
        const start = Math.ceil((Date.parse(request.query.get("start")!) - T0) / 1000);
        const end = Math.ceil((Date.parse(request.query.get("end")!) - T0) / 1000);
        return rawAnswer(Math.max(0, start), Math.min(latest + 1, end));
      },
      "GET /data/realtime": () => ({ loop_id: "FIC-101", ts: iso(latest), pv: 42.5, sp: 50, op: 41, mode: "AUT", age_s: 0.4 }),
    });
    const range: DataRange = {
      loop_id: "FIC-101",
      start: iso(0),
      end: iso(599),
      raw: { start: iso(0), end: iso(599) },
      agg_1m: null,
      agg_1h: null,
    };
    vi.useFakeTimers({ shouldAdvanceTime: true });
    try {
      renderPage(<TrendPanel loopId="FIC-101" range={range} units="m3/h" normalModes={null} />, { api, path: "/", at: "/" });
      expect(await screen.findByTestId("realtime-pv")).toHaveTextContent("42.50 m3/h");
      await waitFor(() => expect(screen.getByTestId("trend-summary")).toHaveTextContent("600 samples (raw samples)"));
      expect(screen.getByText(/Automatic \(AUT\) 100 %/)).toBeInTheDocument();
      const firstRaw = requests.find((request) => request.path === "/data/raw")!;
      expect(firstRaw.query.get("fields")).toBe("pv,op,sp,mode");

      latest = 609; // ten new samples arrive
      await act(() => vi.advanceTimersByTimeAsync(5000));
      await waitFor(() => expect(requests.filter((request) => request.path === "/data/realtime").length).toBeGreaterThanOrEqual(2));
      await waitFor(() => expect(screen.getByTestId("trend-summary")).toHaveTextContent(/60\d samples/));
      const extension = requests.filter((request) => request.path === "/data/raw").at(-1)!;
      expect(Date.parse(extension.query.get("start")!)).toBeGreaterThan(T0 + 599_000);
    } finally {
      vi.useRealTimers();
    }
  });

  it("says when the loop has no data", () => {
    const { api } = fakeGateway({});
    const empty: DataRange = { loop_id: "X", start: null, end: null, raw: null, agg_1m: null, agg_1h: null };
    renderPage(<TrendPanel loopId="X" range={empty} units={null} normalModes={null} />, { api, path: "/", at: "/" });
    expect(screen.getByText("No data has been recorded for this loop yet.")).toBeInTheDocument();
  });
});
