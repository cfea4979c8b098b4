// Plant-wide oscillation clusters: loops oscillating with the same period, and the likely source.

import { useState } from "react";
import { Link } from "react-router-dom";

import { useApi } from "../api/ApiProvider";
import { useAsync } from "../api/useAsync";
import { AsyncView, EmptyState } from "../components/AsyncView";
import { formatDuration, formatEvidence, isoOf, labelOf } from "../lib/format";
import { clusterCounts, normaliseClusters, type OscillationCluster } from "../lib/clusters";

export const PERIODS = [
  { label: "Last hour", hours: 1 },
  { label: "Last 2 hours", hours: 2 },
  { label: "Last 6 hours", hours: 6 },
  { label: "Last 24 hours", hours: 24 },
  { label: "Last 7 days", hours: 168 },
];

const loopLink = (loopId: string) => <Link to={`/fleet/loops/${encodeURIComponent(loopId)}`}>{loopId}</Link>;

const DETAIL_SKIP = ["period_s", "osc_period_s", "period"];

/** The members of a cluster, with the period and details columns only when the service gives them. */
function MemberTable({ cluster }: { cluster: OscillationCluster }) {
  const periods = cluster.members.some((member) => member.periodS !== null);
  const details = cluster.members.some((member) => Object.keys(member.details).some((key) => !DETAIL_SKIP.includes(key)));
  return (
    <div className="table-wrap">
      <table>
        <thead>
          <tr>
            <th scope="col">Loop</th>
            {periods && (
              <th scope="col" className="num">
                Period
              </th>
            )}
            {details && <th scope="col">Details</th>}
          </tr>
        </thead>
        <tbody>
          {cluster.members.map((member) => (
            <tr key={member.loopId}>
              <td>
                {loopLink(member.loopId)} {member.loopId === cluster.source && <span className="status status-poor">likely source</span>}
              </td>
              {periods && <td className="num">{formatDuration(member.periodS)}</td>}
              {details && (
                <td className="small">
                  {Object.entries(member.details)
                    .filter(([key]) => !DETAIL_SKIP.includes(key))
                    .map(([key, value]) => `${labelOf(key)}: ${formatEvidence(value)}`)
                    .join(" · ") || "–"}
                </td>
              )}
            </tr>
          ))}
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
          <p>Loops whose oscillation periods agree within ±10 % probably share one cause; fix the likely source first.</p>
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
                  " Judged on 1-minute means (a long period): oscillations from 4 minutes show; the likely source is the largest swing."}
              </p>
            )}
            {clusters.length === 0 && <EmptyState>No oscillation cluster in this period: no two loops oscillate with the same period.</EmptyState>}
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
