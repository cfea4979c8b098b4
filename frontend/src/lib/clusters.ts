// The diagnostics service's oscillation clusters in one shape for the page, whatever the
// exact field names of its answer (period, members, likely source).

export interface ClusterMember {
  loopId: string;
  periodS: number | null;
  /** "source" for the likely source, else "member" (null when the service does not say) */
  role: string | null;
  unit: string | null;
  area: string | null;
  /** oscillation amplitude, % of the PV span */
  amplitudePct: number | null;
  /** share of the loop's variance at the cluster's period (0-1) */
  powerShare: number | null;
  /** coherence with the source at the period (0-1) */
  coherence: number | null;
  /** how far the member's cycle runs behind the source's (s, within half a period; < 0: ahead) */
  lagS: number | null;
  /** bicoherence non-Gaussianity and non-linearity indices (> 0 both: a non-linear signal) */
  ngi: number | null;
  nli: number | null;
  /** why the loop belongs to the cluster, in words */
  why: string | null;
  details: Record<string, unknown>;
}

export interface OscillationCluster {
  id: string;
  periodS: number | null;
  members: ClusterMember[];
  source: string | null;
  sourceReason: string | null;
  /** the numbers that point at the source (stiction verdict, index, ...) */
  sourceEvidence: Record<string, unknown>;
}

export interface ClusterCounts {
  loopsAnalysed: number | null;
  oscillatingLoops: number | null;
  /** "minute_means" when long windows were judged on 1-minute means, else raw samples */
  onMinuteMeans: boolean;
}

/** How many loops the service analysed and found oscillating, when it says so. */
export function clusterCounts(answer: unknown): ClusterCounts {
  const item = (answer && typeof answer === "object" && !Array.isArray(answer) ? answer : {}) as Record<string, unknown>;
  return {
    loopsAnalysed: num(item.loops_analysed),
    oscillatingLoops: num(item.oscillating_loops),
    onMinuteMeans: item.basis === "minute_means",
  };
}

const num = (value: unknown) => (typeof value === "number" && Number.isFinite(value) ? value : null);
const firstOf = (item: Record<string, unknown>, names: string[]) => names.map((name) => item[name]).find((value) => value !== undefined && value !== null);

const str = (value: unknown) => (typeof value === "string" && value !== "" ? value : null);

/** Fields shown in their own columns; the rest are listed as details. */
export const MEMBER_COLUMNS = [
  "period_s",
  "osc_period_s",
  "period",
  "role",
  "unit",
  "area",
  "amplitude_pct_of_span",
  "power_share",
  "coherence_with_source",
  "lag_behind_source_s",
  "ngi",
  "nli",
  "why",
];

function memberOf(entry: unknown): ClusterMember | null {
  const bare = {
    periodS: null,
    role: null,
    unit: null,
    area: null,
    amplitudePct: null,
    powerShare: null,
    coherence: null,
    lagS: null,
    ngi: null,
    nli: null,
    why: null,
  };
  if (typeof entry === "string") return { loopId: entry, ...bare, details: {} };
  if (!entry || typeof entry !== "object") return null;
  const item = entry as Record<string, unknown>;
  const loopId = firstOf(item, ["loop_id", "loopId", "id"]);
  if (typeof loopId !== "string") return null;
  const { loop_id: _a, loopId: _b, id: _c, ...details } = item;
  return {
    loopId,
    periodS: num(firstOf(item, ["period_s", "osc_period_s", "period"])),
    role: str(item.role),
    unit: str(item.unit),
    area: str(item.area),
    amplitudePct: num(item.amplitude_pct_of_span),
    powerShare: num(item.power_share),
    coherence: num(item.coherence_with_source),
    lagS: num(item.lag_behind_source_s),
    ngi: num(item.ngi),
    nli: num(item.nli),
    why: str(item.why),
    details,
  };
}

function sourceOf(item: Record<string, unknown>): { source: string | null; reason: string | null } {
  const value = firstOf(item, ["likely_source", "source", "root_cause", "source_loop_id"]);
  const reason = firstOf(item, ["source_reason", "reason", "explanation"]);
  if (typeof value === "string") return { source: value, reason: typeof reason === "string" ? reason : null };
  if (value && typeof value === "object") {
    const nested = value as Record<string, unknown>;
    const id = firstOf(nested, ["loop_id", "loopId", "id"]);
    const why = firstOf(nested, ["reason", "explanation", "evidence"]);
    return { source: typeof id === "string" ? id : null, reason: typeof why === "string" ? why : typeof reason === "string" ? reason : null };
  }
  return { source: null, reason: null };
}

export function normaliseClusters(answer: unknown): OscillationCluster[] {
  const list = Array.isArray(answer) ? answer : (answer as { clusters?: unknown } | null)?.clusters;
  if (!Array.isArray(list)) return [];
  return list
    .map((entry, index): OscillationCluster | null => {
      if (!entry || typeof entry !== "object") return null;
      const item = entry as Record<string, unknown>;
      const rawMembers = firstOf(item, ["members", "loops", "loop_ids"]);
      const members = (Array.isArray(rawMembers) ? rawMembers : []).map(memberOf).filter((m): m is ClusterMember => m !== null);
      const { source, reason } = sourceOf(item);
      const id = firstOf(item, ["cluster_id", "id"]);
      const evidence = firstOf(item, ["source_evidence", "evidence"]);
      return {
        id: typeof id === "string" || typeof id === "number" ? String(id) : String(index + 1),
        periodS: num(firstOf(item, ["period_s", "mean_period_s", "period"])),
        members,
        source,
        sourceReason: reason,
        sourceEvidence: evidence && typeof evidence === "object" && !Array.isArray(evidence) ? (evidence as Record<string, unknown>) : {},
      };
    })
    .filter((cluster): cluster is OscillationCluster => cluster !== null && cluster.members.length > 0);
}

/** A member's cycle relative to the source's: seconds and degrees of the period. */
export function lagOf(member: ClusterMember): string | null {
  if (member.lagS === null) return null;
  const seconds = Math.round(member.lagS);
  const words = seconds >= 0 ? `${seconds} s behind` : `${-seconds} s ahead`;
  if (member.periodS === null || member.periodS <= 0) return words;
  return `${words} (${Math.round((360 * Math.abs(member.lagS)) / member.periodS)}°)`;
}

/** The bicoherence verdict of a member: non-linear (both indices > 0, as at a source) or not. */
export function nonlinearityOf(member: ClusterMember): string | null {
  if (member.ngi === null || member.nli === null) return null;
  const verdict = member.ngi > 0 && member.nli > 0 ? "non-linear" : "linear";
  return `${verdict} (NGI ${member.ngi.toFixed(3)}, NLI ${member.nli.toFixed(3)})`;
}
