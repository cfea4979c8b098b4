// @vitest-environment node
import type { LoopConfig } from "../../src/api/types";
import { changedSettings, formOf, validateConfigForm } from "../../src/lib/configForm";

const stored: LoopConfig = {
  loop_id: "FIC-101",
  is_default: false,
  loop_type: "flow",
  criticality: 3,
  normal_modes: ["AUT", "CAS"],
  op_lo: 0,
  op_hi: 100,
  sat_margin: null,
  pv_lo: 0,
  pv_hi: 200,
  deadband: null,
  dead_time_s: 4,
  apc_enabled: false,
  apc_modes: null,
  kpi_window_min: 15,
  updated_at: null,
  updated_by: null,
};

describe("the configuration form", () => {
  it("round-trips the stored settings without changes", () => {
    const { errors, values } = validateConfigForm(formOf(stored));
    expect(errors).toEqual({});
    expect(changedSettings(stored, values!)).toEqual({});
  });

  it("sends only what changed, empty optional fields as null", () => {
    const form = { ...formOf(stored), criticality: "5", dead_time_s: "", normal_modes: "AUT, CAS, MAN" };
    const { values } = validateConfigForm(form);
    expect(changedSettings(stored, values!)).toEqual({ criticality: 5, dead_time_s: null, normal_modes: ["AUT", "CAS", "MAN"] });
  });

  it("names each invalid field", () => {
    const form = {
      ...formOf(stored),
      criticality: "7",
      op_lo: "80",
      op_hi: "20",
      pv_hi: "abc",
      kpi_window_min: "2.5",
      normal_modes: "AUT, BAD MODE!",
      sat_margin: "-1",
    };
    const { errors, values } = validateConfigForm(form);
    expect(values).toBeNull();
    expect(errors).toEqual({
      criticality: "Must be at most 5.",
      op_hi: "Must be greater than the OP low limit.",
      pv_hi: "Enter a number.",
      kpi_window_min: "Enter a whole number.",
      normal_modes: '"MODE!" is not a mode name (letters, digits, _; at most 16).',
      sat_margin: "Must be at least 0.",
    });
  });

  it("requires the limits and the APC modes when APC is enabled", () => {
    const { errors } = validateConfigForm({ ...formOf(stored), op_lo: " ", apc_enabled: true });
    expect(errors.op_lo).toBe("Required.");
    expect(errors.apc_modes).toMatch(/Name the modes/);
  });

  it("accepts a decimal comma", () => {
    const { values } = validateConfigForm({ ...formOf(stored), deadband: "0,5" });
    expect(values?.deadband).toBe(0.5);
  });
});
