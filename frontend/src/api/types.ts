// Shapes of the gateway's answers (see the gateway's /openapi.json), as the web front uses them.

/** ``not_assessed``: too little data to judge (the reason says why); ``offline``: no data. */
export type LoopStatus = "good" | "fair" | "poor" | "offline" | "not_assessed";
export const LOOP_STATUSES: LoopStatus[] = ["good", "fair", "poor", "not_assessed", "offline"];

/** What a status, health and ranking cover: the latest KPI window, or a shift, day or week. */
export type Period = "window" | "shift" | "day" | "week";

/** Where a window's "% of span" figures come from: pv_lo/pv_hi, or an estimate from the data. */
export type SpanSource = "configured" | "estimated";

export type Role = "viewer" | "engineer" | "admin";

export interface FrontendConfig {
  oidc_issuer: string;
  oidc_client_id: string;
  oidc_scope: string;
  api_base_url: string;
  auth_mode: string;
}

export interface Loop {
  loop_id: string;
  name: string;
  description: string;
  unit: string | null;
  area: string | null;
  engineering_units: string | null;
  active: boolean;
  created_at: string | null;
  updated_at: string | null;
  status: LoopStatus;
  health_score: number | null;
  main_problem: string | null;
  kpi_window_end: string | null;
  criticality: number;
  bad_actor_score: number | null;
  /** Where the samples come from: simulated, import or opcua (null: unknown). */
  data_source?: string | null;
  /** The imported file names, or the OPC UA endpoint and nodes. */
  data_source_detail?: string | null;
  /** Why an offline / not-assessed loop has no health (e.g. "data 49 % complete"). */
  reason?: string | null;
  not_assessed_reason?: string | null;
  /** What status and health cover (the listing's ``period``). */
  period?: Period;
}

export interface LoopPage {
  items: Loop[];
  total: number;
  offset: number;
  limit: number;
}

export type LoopSortKey =
  | "loop_id"
  | "name"
  | "unit"
  | "area"
  | "health_score"
  | "status"
  | "criticality"
  | "bad_actor";

export interface BadActor {
  rank: number;
  loop_id: string;
  name: string;
  unit: string | null;
  area: string | null;
  health_score: number;
  criticality: number;
  bad_actor_score: number;
  status: LoopStatus;
  main_problem: string | null;
  reason?: string | null;
}

export interface HealthBand {
  from: number;
  to: number;
  loops: number;
}

export interface UnitRollup {
  unit: string | null;
  loops: number;
  health_score: number | null;
  status_counts: Partial<Record<LoopStatus, number>>;
}

export interface FleetSummary {
  period?: Period;
  loops: number;
  health_score: number | null;
  status_counts: Partial<Record<LoopStatus, number>>;
  health_histogram: HealthBand[];
  bad_actors: BadActor[];
  units: UnitRollup[];
}

/** One KPI row: the requested columns of kpi_results (names as the gateway answers them). */
export type KpiRow = Record<string, unknown> & {
  window_start?: string | null;
  window_end?: string | null;
  status?: LoopStatus;
  health_score?: number | null;
};

export interface KpiRows {
  loop_id: string;
  start: string;
  end: string;
  count: number;
  columns: string[];
  items: KpiRow[];
}

export interface RawData {
  loop_id: string;
  ts: string[];
  pv?: (number | null)[] | null;
  op?: (number | null)[] | null;
  sp?: (number | null)[] | null;
  mode?: (string | null)[] | null;
  count: number;
  next_cursor: string | null;
}

export interface AggregatedData {
  loop_id: string;
  ts: string[];
  pv: (number | null)[];
  op: (number | null)[];
  sp: (number | null)[];
  pv_count: number[];
  pv_min: (number | null)[];
  pv_max: (number | null)[];
  op_min: (number | null)[];
  op_max: (number | null)[];
  sp_min: (number | null)[];
  sp_max: (number | null)[];
  count: number;
  interval: string;
  interval_s: number;
  source: "agg_1m" | "agg_1h" | "raw";
}

export interface RealtimeData {
  loop_id: string;
  ts: string | null;
  pv?: number | null;
  op?: number | null;
  sp?: number | null;
  mode?: string | null;
  age_s: number | null;
}

/** ``/data/realtime?loopIds=…``: the latest values of many loops in one answer. */
export interface RealtimeMany {
  generated_at: string;
  count: number;
  loops: RealtimeData[];
  unknown: string[];
}

export interface Span {
  start: string;
  end: string;
}

export interface DataRange {
  loop_id: string;
  start: string | null;
  end: string | null;
  raw: Span | null;
  agg_1m: Span | null;
  agg_1h: Span | null;
}

export interface LoopConfig {
  loop_id: string;
  is_default: boolean;
  loop_type: string;
  criticality: number;
  normal_modes: string[] | null;
  op_lo: number;
  op_hi: number;
  sat_margin: number | null;
  pv_lo: number | null;
  pv_hi: number | null;
  deadband: number | null;
  dead_time_s: number | null;
  apc_enabled: boolean;
  apc_modes: string[] | null;
  kpi_window_min: number;
  updated_at: string | null;
  updated_by: string | null;
}

export type LoopConfigChange = Partial<
  Omit<LoopConfig, "loop_id" | "is_default" | "updated_at" | "updated_by">
>;

export interface LoopFields {
  name?: string | null;
  description?: string | null;
  unit?: string | null;
  area?: string | null;
  engineering_units?: string | null;
  active?: boolean | null;
}

export interface Finding {
  loop_id: string;
  window_start: string;
  window_end: string;
  category: string;
  severity: number;
  confidence: number;
  evidence: Record<string, unknown>;
  recommendation: string;
  trigger: string;
  created_at: string | null;
  /** Findings this root cause explains: evidence for it, not problems of their own. */
  explained?: ExplainedFinding[];
}

export interface ExplainedFinding {
  category: string;
  severity: number;
  confidence: number;
  evidence: Record<string, unknown>;
  recommendation: string;
  /** Category of the root cause that explains it. */
  explained_by: string;
}

export interface Findings {
  loop_id: string;
  count: number;
  items: Finding[];
}

export interface ApcLoop {
  loop_id: string;
  name: string;
  unit: string | null;
  area: string | null;
  windows: number;
  samples: number;
  attainment: number | null;
  wrong_mode_share: number | null;
  saturated_share: number | null;
  bad_data_share: number | null;
}

export interface ApcSummary {
  start: string;
  end: string;
  loops: number;
  attainment: number | null;
  items: ApcLoop[];
}

export interface PeriodFinding {
  category: string;
  /** Share of the assessed windows with this finding, 0..1. */
  persistence: number;
  mean_severity: number;
}

/** ``GET /loops/{id}/assessment?period=``: a loop's rating over one shift, day or week. */
export interface Assessment {
  loop_id: string;
  period: Period;
  start: string | null;
  end: string | null;
  status: LoopStatus;
  health_score: number | null;
  main_problem: string | null;
  /** Why the period has no rating (e.g. "40 of 96 windows assessed"). */
  reason?: string | null;
  not_assessed_reason?: string | null;
  status_shares: Partial<Record<LoopStatus, number>>;
  findings: PeriodFinding[];
  worst_window: { start: string; end: string; health_score: number | null; status: LoopStatus } | null;
  windows_assessed: number;
  windows_total: number;
  previous: { health_score: number | null; status: LoopStatus } | null;
  change: { health_score: number | null } | null;
}

/** ``POST /loops/{id}/diagnostics/run``: the diagnosis of the window asked for (also stored). */
export interface OnDemandDiagnosis {
  loop_id: string;
  window_start: string;
  window_end: string;
  samples: number;
  primary: string | null;
  findings: Omit<Finding, "loop_id" | "window_start" | "window_end" | "trigger" | "created_at">[];
  health_score: number | null;
  notes: Record<string, string>;
}

/** ``POST /loops/catalogue``: what an import did (or would do, with ``dry_run``). */
export interface CatalogueImport {
  loops: number;
  dry_run: boolean;
  loop_ids: string[];
}

/** One fault of an uploaded export or tag map. */
export interface ImportProblem {
  file: string;
  line: number | null;
  column: string;
  reason: string;
}

/** What a historian upload imported (or, on a dry run, would import). */
export interface ExportImport {
  dry_run: boolean;
  files: { file: string; layout: string; rows: number; values: number; bad_quality: number; bad_rows: number; unmapped_tags: string[]; missing_tags: string[] }[];
  loops: { loop_id: string; samples: number; start: string; end: string }[];
  values: number;
  samples_stored: number;
  values_stored: number;
  bad_quality: number;
  bad_rows: number;
  start: string | null;
  end: string | null;
  seconds: number;
  skipped: ImportProblem[];
  catalogue_loops: number;
  next_steps: string[];
}

/** RFC 9457 problem details, as every gateway error is answered. */
export interface Problem {
  type?: string;
  title?: string;
  status?: number;
  detail?: string | null;
  instance?: string | null;
  errors?: { parameter: string; location: string; message: string }[];
  [extension: string]: unknown;
}
