import { DEFAULT_PERIOD, periodDescription, periodOf, withPeriod } from "../../src/lib/periods";

describe("assessment periods", () => {
  it("defaults to the day and accepts only the known periods", () => {
    expect(DEFAULT_PERIOD).toBe("day");
    expect(periodOf(null)).toBe("day");
    expect(periodOf("")).toBe("day");
    expect(periodOf("month")).toBe("day");
    expect(periodOf("window")).toBe("window");
    expect(periodOf("shift")).toBe("shift");
    expect(periodOf("week")).toBe("week");
  });

  it("keeps the default out of the address and the other parameters in it", () => {
    const params = new URLSearchParams("status=poor&period=week");
    expect(withPeriod(params, "day").toString()).toBe("status=poor");
    expect(withPeriod(params, "shift").toString()).toBe("status=poor&period=shift");
    expect(params.toString()).toBe("status=poor&period=week"); // not changed in place
    expect(periodDescription("shift")).toBe("the last shift (8 h)");
  });
});
