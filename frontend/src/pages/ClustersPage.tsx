// Plant-wide oscillation clusters: loops sharing one oscillation, and its likely source.

import { useState } from "react";
import { Link } from "react-router-dom";

import { useApi } from "../api/ApiProvider";
import { useAsync } from "../api/useAsync";
import { AsyncView, EmptyState } from "../components/AsyncView";
import { formatDuration, formatEvidence, isoOf, labelOf } from "../lib/format";
import {
  MEMBER_COLUMNS,
  clusterCounts,
  lagOf,
  nonlinearityOf,
  normaliseClusters,
  type ClusterMember,
  type OscillationCluster,
} from "../lib/clusters";

export const PERIODS = [
  { label: "Last hour", hours: 1 },
  { label: "Last 2 hours", hours: 2 },
  { label: "Last 6 hours", hours: 6 },
  { label: "Last 24 hours", hours: 24 },
  { label: "Last 7 days", hours: 168 },
];

const loopLink = (loopId: string) => <Link to={`/fleet/loops/${encodeURIComponent(loopId)}`}>{loopId}</Link>;

const percent = (value: number | null, digits = 0) => (value === null ? "–" : `${(100 * value).toFixed(digits)} %`);

/** How strongly a member oscillates: amplitude in % of span and the share of its variance at the period. */
function strengthOf(member: ClusterMember): string {
  const parts = [];
  if (member.amplitudePct !== null) parts.push(`±${member.amplitudePct.toFixed(1)} % of span`);
  if (member.powerShare !== null) parts.push(`${percent(member.powerShare)} of its variance`);
  return parts.join(", ") || "–";
}

/** The members of a cluster: where each sits, how strongly it oscillates, and why it belongs. */
function MemberTable({ cluster }: { cluster: OscillationCluster }) {
  const details = cluster.members.some((member) => Object.keys(member.details).some((key) => !MEMBER_COLUMNS.includes(key)));
  return (
    <div className="table-wrap">
      <table>
        <thead>
          <tr>
            <th scope="col">Loop</th>
            <th scope="col">Unit</th>
            <th scope="col" className="num">
              Period
            </th>
            <th scope="col">Strength</th>
            <th scope="col" className="num">
              Coherence with source
            </th>
            <th scope="col">Cycle vs source</th>
            <th scope="col">Non-linearity</th>
            <th scope="col">Why it belongs</th>
            {details && <th scope="col">Details</th>}
          </tr>
        </thead>
        <tbody>
          {cluster.members.map((member) => {
            const isSource = member.role === "source" || member.loopId === cluster.source;
            return (
              <tr key={member.loopId}>
                <td>
                  {loopLink(member.loopId)} {isSource && <span className="status status-poor">likely source</span>}
                </td>
                <td>{[member.unit, member.area].filter(Boolean).join(" · ") || "–"}</td>
                <td className="num">{formatDuration(member.periodS)}</td>
                <td className="small">{strengthOf(member)}</td>
                <td className="num">{isSource ? "–" : member.coherence === null ? "–" : member.coherence.toFixed(2)}</td>
                <td className="small">{isSource ? "–" : (lagOf(member) ?? "–")}</td>
                <td className="small">{nonlinearityOf(member) ?? "–"}</td>
                <td className="small">{isSource ? (cluster.sourceReason ?? "likely source") : (member.why ?? "–")}</td>
                {details && (
                  <td className="small">
                    {Object.entries(member.details)
                      .filter(([key]) => !MEMBER_COLUMNS.includes(key))
                      .map(([key, value]) => `${labelOf(key)}: ${formatEvidence(value)}`)
                      .join(" · ") || "–"}
                  </td>
                )}
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}

export function ClustersPage() {
  const api = useApi();
  const [hours, setHours] = useState(2);
  const clusters = useAsync(
    async (signal) => {
      const end = Date.now();
      const answer = await api.oscillationClusters({ start: isoOf(end - hours * 3600_000), end: isoOf(end) }, signal);
      return { clusters: normaliseClusters(answer), counts: clusterCounts(answer) };
    },
    [api, hours],
  );
  return (
    <>
      <div className="page-head">
        <div>
          <h1>Oscillation clusters</h1>
          <p>
            Loops that share one oscillation (coherent at a common period, not merely of a similar period) have one cause; fix the likely source
            first.
          </p>
        </div>
        <div className="field">
          <label htmlFor="clusters-period">Period</label>
          <select id="clusters-period" value={hours} onChange={(event) => setHours(Number(event.target.value))}>
            {PERIODS.map((period) => (
              <option key={period.hours} value={period.hours}>
                {period.label}
              </option>
            ))}
          </select>
        </div>
      </div>
      <AsyncView
        state={clusters.state}
        what="the oscillation clusters"
        onRetry={clusters.reload}
      >
        {({ clusters, counts }) => (
          <section aria-label="Clusters">
            {counts.loopsAnalysed !== null && (
              <p className="muted">
                {counts.loopsAnalysed} loops analysed, {counts.oscillatingLoops ?? "–"} oscillating, {clusters.length} cluster
                {clusters.length === 1 ? "" : "s"}.
                {counts.onMinuteMeans &&
                  " Judged on 1-minute means (a long period): oscillations from 4 minutes show; no stiction evidence for the source."}
              </p>
            )}
            {clusters.length === 0 && <EmptyState>No oscillation cluster in this period: no two loops share an oscillation.</EmptyState>}
            {clusters.map((cluster, index) => (
              <article className="cluster" key={cluster.id} aria-labelledby={`cluster-${index}`}>
                <h2 id={`cluster-${index}`}>
                  Cluster {index + 1}: {cluster.members.length} loops, period {formatDuration(cluster.periodS)}
                </h2>
                <p>
                  Likely source: <strong>{cluster.source ? loopLink(cluster.source) : "undetermined"}</strong>
                  {cluster.sourceReason && <span className="muted"> — {cluster.sourceReason}</span>}
                </p>
                {Object.keys(cluster.sourceEvidence).length > 0 && (
                  <p className="small muted">Evidence for the source: {formatEvidence(cluster.sourceEvidence)}</p>
                )}
                <MemberTable cluster={cluster} />
              </article>
            ))}
          </section>
        )}
      </AsyncView>
    </>
  );
}
