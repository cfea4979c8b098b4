import type { Assessment } from "../../src/api/types";
import { healthChange, notAssessedReason, persistentFindings, statusShares } from "../../src/lib/assessment";

const BASE: Pick<Assessment, "status_shares" | "change" | "previous"> = {
  status_shares: { good: 0.5, fair: 0, poor: 0.25, offline: 0, not_assessed: 0.25 },
  change: { health_score: -4.26 },
  previous: { health_score: 70, status: "fair" },
};

describe("period assessment display", () => {
  it("lists the statuses held in the period in the fixed order", () => {
    expect(statusShares(BASE)).toEqual([
      { status: "good", share: 0.5 },
      { status: "poor", share: 0.25 },
      { status: "not_assessed", share: 0.25 },
    ]);
    expect(statusShares({ status_shares: {} })).toEqual([]);
  });

  it("orders findings by persistence x severity, the steady fault first", () => {
    const ordered = persistentFindings([
      { category: "external_disturbance", persistence: 0.3, mean_severity: 0.9 }, // 0.27
      { category: "stiction", persistence: 0.9, mean_severity: 0.6 }, // 0.54
      { category: "sensor_noise", persistence: 1.0, mean_severity: 0.1 }, // 0.10
    ]);
    expect(ordered.map((finding) => finding.category)).toEqual(["stiction", "external_disturbance", "sensor_noise"]);
  });

  it("states the change against the previous period, or nothing without one", () => {
    expect(healthChange(BASE)).toEqual({ text: "−4.3", direction: "worse" });
    expect(healthChange({ ...BASE, change: { health_score: 2 } })).toEqual({ text: "+2.0", direction: "better" });
    expect(healthChange({ ...BASE, change: { health_score: 0.04 } })).toEqual({ text: "±0.0", direction: "same" });
    expect(healthChange({ ...BASE, previous: null })).toBeNull();
    expect(healthChange({ ...BASE, change: { health_score: null } })).toBeNull();
  });

  it("finds the not-assessed reason in any of the fields the answers use", () => {
    expect(notAssessedReason({ not_assessed_reason: "data 49 % complete" })).toBe("data 49 % complete");
    expect(notAssessedReason({ reason: "12 of 96 windows assessed" })).toBe("12 of 96 windows assessed");
    expect(notAssessedReason({ reasons: { status: "data 30 % complete", error_std_pct: "x" } })).toBe("data 30 % complete");
    expect(notAssessedReason({ reasons: null })).toBeNull();
    expect(notAssessedReason(null)).toBeNull();
  });
});
