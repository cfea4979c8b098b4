// Plant-wide oscillation clusters: loops oscillating with the same period, and the likely source.

import { useState } from "react";
import { Link } from "react-router-dom";

import { useApi } from "../api/ApiProvider";
import { useAsync } from "../api/useAsync";
import { AsyncView } from "../components/AsyncView";
import { formatDuration, formatEvidence, isoOf, labelOf } from "../lib/format";
import { normaliseClusters } from "../lib/clusters";

export const PERIODS = [
  { label: "Last 6 hours", hours: 6 },
  { label: "Last 24 hours", hours: 24 },
  { label: "Last 7 days", hours: 168 },
];

const loopLink = (loopId: string) => <Link to={`/fleet/loops/${encodeURIComponent(loopId)}`}>{loopId}</Link>;

export function ClustersPage() {
  const api = useApi();
  const [hours, setHours] = useState(24);
  const clusters = useAsync(
    async (signal) => {
      const end = Date.now();
      return normaliseClusters(await api.oscillationClusters({ start: isoOf(end - hours * 3600_000), end: isoOf(end) }, signal));
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
        isEmpty={(data) => data.length === 0}
        empty="No oscillation cluster in this period: no two loops oscillate with the same period."
      >
        {(data) => (
          <section aria-label="Clusters">
            {data.map((cluster, index) => (
              <article className="cluster" key={cluster.id} aria-labelledby={`cluster-${index}`}>
                <h2 id={`cluster-${index}`}>
                  Cluster {index + 1}: {cluster.members.length} loops, period {formatDuration(cluster.periodS)}
                </h2>
                <p>
                  Likely source: <strong>{cluster.source ? loopLink(cluster.source) : "undetermined"}</strong>
                  {cluster.sourceReason && <span className="muted"> — {cluster.sourceReason}</span>}
                </p>
                <div className="table-wrap">
                  <table>
                    <thead>
                      <tr>
                        <th scope="col">Loop</th>
                        <th scope="col" className="num">
                          Period
                        </th>
                        <th scope="col">Details</th>
                      </tr>
                    </thead>
                    <tbody>
                      {cluster.members.map((member) => (
                        <tr key={member.loopId}>
                          <td>
                            {loopLink(member.loopId)} {member.loopId === cluster.source && <span className="status status-poor">source</span>}
                          </td>
                          <td className="num">{formatDuration(member.periodS)}</td>
                          <td className="small">
                            {Object.entries(member.details)
                              .filter(([key]) => !["period_s", "osc_period_s", "period"].includes(key))
                              .map(([key, value]) => `${labelOf(key)}: ${formatEvidence(value)}`)
                              .join(" · ") || "–"}
                          </td>
                        </tr>
                      ))}
                    </tbody>
                  </table>
                </div>
              </article>
            ))}
          </section>
        )}
      </AsyncView>
    </>
  );
}
