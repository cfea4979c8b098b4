// @vitest-environment node
import { chooseResolution, covers, describeResolution, loadWindow, RAW_MAX_SPAN_S } from "../../src/lib/resolution";

describe("chooseResolution", () => {
  it("uses raw samples up to the raw span and aggregates beyond", () => {
    expect(chooseResolution(3600)).toEqual({ kind: "raw" });
    expect(chooseResolution(RAW_MAX_SPAN_S)).toEqual({ kind: "raw" });
    expect(chooseResolution(RAW_MAX_SPAN_S + 1)).toEqual({ kind: "aggregated", interval: "1m", intervalS: 60 });
  });

  it("keeps the bucket count at or below the target for long spans", () => {
    expect(chooseResolution(24 * 3600)).toMatchObject({ interval: "1m" }); // 1440 buckets
    expect(chooseResolution(7 * 86400)).toMatchObject({ interval: "15m" }); // 672 buckets
    expect(chooseResolution(90 * 86400)).toMatchObject({ interval: "6h" });
    expect(chooseResolution(10 * 365 * 86400)).toMatchObject({ interval: "1d" });
  });

  it("describes what is shown", () => {
    expect(describeResolution({ kind: "raw" })).toBe("raw samples");
    expect(describeResolution(chooseResolution(86400 * 7))).toMatch(/15-minute means/);
  });
});

describe("loadWindow", () => {
  const data = { start: 0, end: 100 * 3600_000 };
  it("widens the view by half its span each side, clipped to the data", () => {
    const view = { start: 10 * 3600_000, end: 11 * 3600_000 };
    expect(loadWindow(view, data, { kind: "raw" })).toEqual({ start: 9.5 * 3600_000, end: 11.5 * 3600_000 + 1000 });
    expect(loadWindow({ start: 0, end: 3600_000 }, data, { kind: "raw" }).start).toBe(0);
  });

  it("aligns aggregated windows to the bucket width", () => {
    const window = loadWindow({ start: 3600_000 * 10 + 12_345, end: 3600_000 * 20 + 777 }, data, { kind: "aggregated", interval: "1m", intervalS: 60 });
    expect(window.start % 60_000).toBe(0);
    expect(window.end % 60_000).toBe(0);
  });
});

describe("covers", () => {
  const bounds = { start: 0, end: 1000 };
  it("reuses loaded data that spans the view at the same resolution", () => {
    const loaded = { start: 100, end: 500, resolution: { kind: "raw" as const } };
    expect(covers(loaded, { start: 200, end: 400 }, bounds, { kind: "raw" })).toBe(true);
    expect(covers(loaded, { start: 50, end: 400 }, bounds, { kind: "raw" })).toBe(false);
    expect(covers(loaded, { start: 200, end: 400 }, bounds, { kind: "aggregated", interval: "1m", intervalS: 60 })).toBe(false);
    expect(covers(null, { start: 200, end: 400 }, bounds, { kind: "raw" })).toBe(false);
  });

  it("does not ask for data beyond the data's own span", () => {
    const loaded = { start: 0, end: 1000, resolution: { kind: "raw" as const } };
    expect(covers(loaded, { start: 900, end: 1100 }, bounds, { kind: "raw" })).toBe(true);
  });
});
