// @vitest-environment node
import type { AggregatedData, RawData } from "../../src/api/types";
import {
  appendRaw,
  appendRealtime,
  dominantMode,
  fromAggregated,
  fromRaw,
  modeSegments,
  modeSegmentsFromKpis,
  modeShares,
  pvOpPairs,
  sliceTrend,
  typicalStep,
  visibleRange,
} from "../../src/lib/series";

const T0 = Date.parse("2026-01-10T10:00:00Z") / 1000;
const iso = (s: number) => new Date((T0 + s) * 1000).toISOString();

function raw(count: number, mode: (i: number) => string | null = () => "AUT"): RawData {
  const idx = [...Array(count).keys()];
  return {
    loop_id: "FIC-101",
    ts: idx.map(iso),
    pv: idx.map((i) => i),
    sp: idx.map(() => 50),
    op: idx.map((i) => (i === 2 ? null : i / 10)),
    mode: idx.map(mode),
    count,
    next_cursor: null,
  };
}

describe("raw and aggregated answers as chart series", () => {
  it("turns ISO times into seconds and keeps nulls", () => {
    const data = fromRaw(raw(5));
    expect(data.x).toEqual([T0, T0 + 1, T0 + 2, T0 + 3, T0 + 4]);
    expect(data.op[2]).toBeNull();
    expect(data.stepS).toBe(1);
    expect(data.kind).toBe("raw");
  });

  it("keeps bucket min and max of aggregates", () => {
    const aggregated: AggregatedData = {
      loop_id: "TIC-205",
      ts: [iso(0), iso(60)],
      pv: [1, 2],
      op: [3, 4],
      sp: [5, 5],
      pv_count: [60, 60],
      pv_min: [0, 1],
      pv_max: [2, 3],
      op_min: [3, 4],
      op_max: [3, 4],
      sp_min: [5, 5],
      sp_max: [5, 5],
      count: 2,
      interval: "1m",
      interval_s: 60,
      source: "agg_1m",
    };
    const data = fromAggregated(aggregated);
    expect(data.pvMin).toEqual([0, 1]);
    expect(data.pvMax).toEqual([2, 3]);
    expect(data.stepS).toBe(60);
  });

  it("finds the typical sample period despite gaps", () => {
    expect(typicalStep([0, 1, 2, 3, 100, 101, 102])).toBe(1);
    expect(typicalStep([5])).toBe(1);
  });
});

describe("mode bands", () => {
  it("merges runs of equal mode and splits on change", () => {
    const segments = modeSegments([0, 1, 2, 3, 4, 5], ["AUT", "AUT", "MAN", "MAN", "MAN", "AUT"], 1);
    expect(segments).toEqual([
      { start: 0, end: 2, mode: "AUT" },
      { start: 2, end: 5, mode: "MAN" },
      { start: 5, end: 6, mode: "AUT" },
    ]);
  });

  it("ends a run at a long gap and at samples without a mode", () => {
    expect(modeSegments([0, 1, 100, 101], ["AUT", "AUT", "AUT", "AUT"], 1)).toHaveLength(2);
    expect(modeSegments([0, 1, 2, 3], ["AUT", null, null, "AUT"], 1)).toEqual([
      { start: 0, end: 1, mode: "AUT" },
      { start: 3, end: 4, mode: "AUT" },
    ]);
  });

  it("derives the aggregated band from the KPI windows' dominant modes", () => {
    expect(dominantMode({ AUT: 0.3, MAN: 0.7 })).toBe("MAN");
    expect(dominantMode(null)).toBeNull();
    const rows = [
      { window_start: iso(0), window_end: iso(900), mode_shares: { AUT: 1 } },
      { window_start: iso(900), window_end: iso(1800), mode_shares: { AUT: 0.9, MAN: 0.1 } },
      { window_start: iso(1800), window_end: iso(2700), mode_shares: { MAN: 1 } },
    ];
    expect(modeSegmentsFromKpis(rows)).toEqual([
      { start: T0, end: T0 + 1800, mode: "AUT" },
      { start: T0 + 1800, end: T0 + 2700, mode: "MAN" },
    ]);
  });

  it("gives the share of time per mode", () => {
    expect(modeShares([{ start: 0, end: 75, mode: "AUT" }, { start: 75, end: 100, mode: "MAN" }])).toEqual([
      { mode: "AUT", share: 0.75 },
      { mode: "MAN", share: 0.25 },
    ]);
    expect(modeShares([])).toEqual([]);
  });
});

describe("live updates", () => {
  it("appends a newer realtime sample and ignores an old one", () => {
    const data = fromRaw(raw(3));
    const newer = appendRealtime(data, { loop_id: "FIC-101", ts: iso(10), pv: 7, sp: 50, op: 1, mode: "MAN", age_s: 0 });
    expect(newer.x.at(-1)).toBe(T0 + 10);
    expect(newer.pv.at(-1)).toBe(7);
    expect(newer.modes.at(-1)?.mode).toBe("MAN");
    expect(appendRealtime(data, { loop_id: "FIC-101", ts: iso(1), pv: 1, age_s: 0 })).toBe(data);
  });

  it("appends only the samples after the last point and caps the length", () => {
    const data = fromRaw(raw(5));
    const more = fromRaw(raw(8));
    const joined = appendRaw(data, more);
    expect(joined.x).toEqual(more.x);
    expect(joined.modes).toEqual([{ start: T0, end: T0 + 8, mode: "AUT" }]);
    expect(appendRaw(data, more, 4).x).toEqual(more.x.slice(-4));
    expect(appendRaw(data, fromRaw(raw(3)))).toBe(data);
  });
});

describe("views of a trend", () => {
  it("finds the visible index range by binary search", () => {
    expect(visibleRange([0, 1, 2, 3, 4], 1, 3)).toEqual([1, 3]);
    expect(visibleRange([0, 1, 2], 5, 9)).toEqual([3, 3]);
  });

  it("slices series and modes to a window", () => {
    const data = fromRaw(raw(10, (i) => (i < 5 ? "AUT" : "MAN")));
    const part = sliceTrend(data, T0 + 6, T0 + 8);
    expect(part.x).toEqual([T0 + 6, T0 + 7]);
    expect(part.modes.map((segment) => segment.mode)).toEqual(["MAN"]);
  });

  it("pairs PV with OP where both are known, thinned evenly", () => {
    const data = fromRaw(raw(10));
    const pairs = pvOpPairs(data);
    expect(pairs.op).toHaveLength(9); // sample 2 has no OP
    expect(pairs.pv).not.toContain(2);
    expect(pvOpPairs(data, 5).op.length).toBeLessThanOrEqual(5);
  });
});
