import { evidenceLabel, formatPercentOfSpan, spanHelp, spanSourceOf, spanUnit } from "../../src/lib/spans";

describe("% of span labels", () => {
  it("reads the span source of a KPI row and ignores anything else", () => {
    expect(spanSourceOf({ span_source: "estimated" })).toBe("estimated");
    expect(spanSourceOf({ span_source: "configured" })).toBe("configured");
    expect(spanSourceOf({ span_source: "guessed" })).toBeNull();
    expect(spanSourceOf({})).toBeNull();
    expect(spanSourceOf(null)).toBeNull();
  });

  it("says when a percentage is of an estimated span", () => {
    expect(formatPercentOfSpan(0.1234, "estimated")).toBe("0.12 % of est. span");
    expect(formatPercentOfSpan(18, "configured")).toBe("18.00 % of span");
    expect(formatPercentOfSpan(null, "estimated")).toBe("–");
    expect(spanUnit("estimated")).toBe("of est. span");
    expect(spanHelp("estimated")).toMatch(/no PV range \(pv_lo\/pv_hi\) is configured/);
    expect(spanHelp("configured")).toMatch(/configured PV range/);
  });

  it("marks evidence in % of the PV span only when the span is estimated", () => {
    expect(evidenceLabel("amplitude_pct_of_span", "estimated")).toBe("Amplitude pct of span (of est. span)");
    expect(evidenceLabel("amplitude_pct_of_span", "configured")).toBe("Amplitude pct of span");
    // the OP span is always configured (op_lo/op_hi): never marked
    expect(evidenceLabel("op_noise_pct_of_span", "estimated")).toBe("Op noise pct of span");
  });
});
