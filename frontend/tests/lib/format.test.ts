// @vitest-environment node
import { formatDuration, formatEvidence, formatNumber, formatShare, labelOf } from "../../src/lib/format";
import { modeColour, modeName } from "../../src/lib/modes";

describe("formatting", () => {
  it("formats numbers, shares and missing values", () => {
    expect(formatNumber(1234.567, 1)).toBe("1,234.6");
    expect(formatNumber(null)).toBe("–");
    expect(formatNumber(Number.NaN)).toBe("–");
    expect(formatShare(0.975)).toBe("97.5 %");
  });

  it("formats durations in the largest sensible unit", () => {
    expect(formatDuration(4.2)).toBe("4.2 s");
    expect(formatDuration(164)).toBe("2.7 min");
    expect(formatDuration(7200)).toBe("2.0 h");
    expect(formatDuration(172800)).toBe("2.0 d");
  });

  it("labels problem keys and summarises evidence", () => {
    expect(labelOf("aggressive_tuning")).toBe("Aggressive tuning");
    expect(labelOf("some_new_thing")).toBe("Some new thing");
    expect(formatEvidence(0.78312)).toBe("0.783");
    expect(formatEvidence(163.94)).toBe("163.9");
    expect(formatEvidence(true)).toBe("yes");
    expect(formatEvidence({ stiction_index: 0.8, method: "curve fit" })).toBe("Stiction index: 0.800; Method: curve fit");
  });

  it("gives every mode a stable colour and known modes a name", () => {
    expect(modeColour("MAN")).toBe(modeColour("man"));
    expect(modeColour("XYZ")).toBe(modeColour("XYZ"));
    expect(modeName("CAS")).toBe("Cascade");
    expect(modeName("XYZ")).toBe("XYZ");
  });
});
