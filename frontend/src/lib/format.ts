// Formatting of numbers, shares, durations, times and KPI names for display.

const DASH = "–";

export function formatNumber(value: number | null | undefined, digits = 1): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return DASH;
  return value.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** A share 0..1 as a percentage ("97.5 %"). */
export function formatShare(value: number | null | undefined, digits = 1): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return DASH;
  return `${formatNumber(value * 100, digits)} %`;
}

export function formatDuration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return DASH;
  const s = Math.abs(seconds);
  if (s < 60) return `${formatNumber(seconds, s < 10 ? 1 : 0)} s`;
  if (s < 3600) return `${formatNumber(seconds / 60, 1)} min`;
  if (s < 86400) return `${formatNumber(seconds / 3600, 1)} h`;
  return `${formatNumber(seconds / 86400, 1)} d`;
}

/** "2026-11-25 09:15:00 UTC" style, in the user's time zone, to the second. */
export function formatTime(iso: string | null | undefined): string {
  if (!iso) return DASH;
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return DASH;
  return date.toLocaleString("en-GB", {
    year: "numeric",
    month: "short",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
  });
}

const LABELS: Record<string, string> = {
  oscillation: "Oscillation",
  stiction: "Valve stiction",
  saturation: "Saturation",
  aggressive_tuning: "Aggressive tuning",
  sluggish_tuning: "Sluggish tuning",
  sensor_fault: "Sensor fault",
  sensor_noise: "Sensor noise",
  not_assessed: "Not assessed",
  external_disturbance: "External disturbance",
  mode_issue: "Mode issue",
  data_quality: "Data quality",
  service_factor: "Service factor",
  control_error: "Control error",
  harris_index: "Harris index",
  variability: "Variability",
  valve_travel: "Valve travel",
};

/** A readable label for a problem/category/KPI key ("aggressive_tuning" -> "Aggressive tuning"). */
export function labelOf(key: string | null | undefined): string {
  if (!key) return DASH;
  if (LABELS[key]) return LABELS[key];
  const words = key.replace(/_/g, " ");
  return words.charAt(0).toUpperCase() + words.slice(1);
}

/** A compact display of an evidence value (numbers rounded, lists and objects summarised). */
export function formatEvidence(value: unknown): string {
  if (value === null || value === undefined) return DASH;
  if (typeof value === "number") {
    if (!Number.isFinite(value)) return DASH;
    const magnitude = Math.abs(value);
    if (Number.isInteger(value)) return value.toLocaleString("en-US");
    return formatNumber(value, magnitude >= 100 ? 1 : magnitude >= 1 ? 2 : 3);
  }
  if (typeof value === "boolean") return value ? "yes" : "no";
  if (typeof value === "string") return value;
  if (Array.isArray(value)) return value.map(formatEvidence).join(", ");
  return Object.entries(value as Record<string, unknown>)
    .map(([key, item]) => `${labelOf(key)}: ${formatEvidence(item)}`)
    .join("; ");
}

export function isoOf(milliseconds: number): string {
  return new Date(milliseconds).toISOString();
}
