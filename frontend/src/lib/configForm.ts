// The loop configuration form: values as text, validation with messages per field (the same
// rules as the gateway), and the change to send (only what differs from the stored settings).

import type { LoopConfig, LoopConfigChange } from "../api/types";

export const LOOP_TYPES = ["flow", "pressure", "level", "temperature", "other"] as const;
const MODE = /^[A-Za-z0-9_]{1,16}$/;

export interface ConfigForm {
  loop_type: string;
  criticality: string;
  normal_modes: string;
  op_lo: string;
  op_hi: string;
  sat_margin: string;
  pv_lo: string;
  pv_hi: string;
  deadband: string;
  dead_time_s: string;
  apc_enabled: boolean;
  apc_modes: string;
  kpi_window_min: string;
}

export type ConfigField = keyof ConfigForm;

const text = (value: number | null | undefined) => (value === null || value === undefined ? "" : String(value));

export function formOf(config: LoopConfig): ConfigForm {
  return {
    loop_type: config.loop_type,
    criticality: String(config.criticality),
    normal_modes: (config.normal_modes ?? []).join(", "),
    op_lo: text(config.op_lo),
    op_hi: text(config.op_hi),
    sat_margin: text(config.sat_margin),
    pv_lo: text(config.pv_lo),
    pv_hi: text(config.pv_hi),
    deadband: text(config.deadband),
    dead_time_s: text(config.dead_time_s),
    apc_enabled: config.apc_enabled,
    apc_modes: (config.apc_modes ?? []).join(", "),
    kpi_window_min: String(config.kpi_window_min),
  };
}

export interface Validation {
  errors: Partial<Record<ConfigField, string>>;
  /** every setting, parsed (only when there are no errors) */
  values: LoopConfigChange | null;
}

function parseNumber(
  raw: string,
  field: ConfigField,
  errors: Validation["errors"],
  options: { required?: boolean; min?: number; max?: number; integer?: boolean } = {},
): number | null {
  const value = raw.trim();
  if (value === "") {
    if (options.required) errors[field] = "Required.";
    return null;
  }
  const number = Number(value.replace(",", "."));
  if (!Number.isFinite(number)) {
    errors[field] = "Enter a number.";
    return null;
  }
  if (options.integer && !Number.isInteger(number)) errors[field] = "Enter a whole number.";
  else if (options.min !== undefined && number < options.min) errors[field] = `Must be at least ${options.min}.`;
  else if (options.max !== undefined && number > options.max) errors[field] = `Must be at most ${options.max}.`;
  return number;
}

function parseModes(raw: string, field: ConfigField, errors: Validation["errors"]): string[] | null {
  const modes = raw
    .split(/[,\s]+/)
    .map((mode) => mode.trim())
    .filter(Boolean);
  if (modes.length === 0) return null;
  const bad = modes.find((mode) => !MODE.test(mode));
  if (bad) errors[field] = `"${bad}" is not a mode name (letters, digits, _; at most 16).`;
  else if (modes.length > 32) errors[field] = "At most 32 modes.";
  return [...new Set(modes)];
}

export function validateConfigForm(form: ConfigForm): Validation {
  const errors: Validation["errors"] = {};
  if (!LOOP_TYPES.includes(form.loop_type as (typeof LOOP_TYPES)[number])) errors.loop_type = "Choose a loop type.";
  const values: LoopConfigChange = {
    loop_type: form.loop_type,
    criticality: parseNumber(form.criticality, "criticality", errors, { required: true, min: 1, max: 5, integer: true }) ?? undefined,
    normal_modes: parseModes(form.normal_modes, "normal_modes", errors),
    op_lo: parseNumber(form.op_lo, "op_lo", errors, { required: true }) ?? undefined,
    op_hi: parseNumber(form.op_hi, "op_hi", errors, { required: true }) ?? undefined,
    sat_margin: parseNumber(form.sat_margin, "sat_margin", errors, { min: 0 }),
    pv_lo: parseNumber(form.pv_lo, "pv_lo", errors),
    pv_hi: parseNumber(form.pv_hi, "pv_hi", errors),
    deadband: parseNumber(form.deadband, "deadband", errors, { min: 0 }),
    dead_time_s: parseNumber(form.dead_time_s, "dead_time_s", errors, { min: 0, max: 86400 }),
    apc_enabled: form.apc_enabled,
    apc_modes: parseModes(form.apc_modes, "apc_modes", errors),
    kpi_window_min: parseNumber(form.kpi_window_min, "kpi_window_min", errors, { required: true, min: 1, max: 1440, integer: true }) ?? undefined,
  };
  if (!errors.op_hi && values.op_lo !== undefined && values.op_hi !== undefined && values.op_lo >= values.op_hi) {
    errors.op_hi = "Must be greater than the OP low limit.";
  }
  if (!errors.pv_hi && values.pv_lo != null && values.pv_hi != null && values.pv_lo >= values.pv_hi) {
    errors.pv_hi = "Must be greater than the PV low limit.";
  }
  if (form.apc_enabled && !values.apc_modes && !errors.apc_modes) {
    errors.apc_modes = "Name the modes in which APC is in control (e.g. CAS).";
  }
  return { errors, values: Object.keys(errors).length ? null : values };
}

function same(a: unknown, b: unknown): boolean {
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((item, index) => item === b[index]);
  return (a ?? null) === (b ?? null);
}

/** Only the settings that differ from ``stored`` (the gateway keeps the others). */
export function changedSettings(stored: LoopConfig, values: LoopConfigChange): LoopConfigChange {
  const change: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(values)) {
    if (!same((stored as unknown as Record<string, unknown>)[key], value)) change[key] = value;
  }
  return change as LoopConfigChange;
}
