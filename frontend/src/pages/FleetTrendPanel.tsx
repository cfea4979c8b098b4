// The plant's health over the last 30 / 90 / 365 days (criticality-weighted, per day or week).

import { useState } from "react";

import { useApi } from "../api/ApiProvider";
import { fleetTrend } from "../api/trends";
import { useAsync } from "../api/useAsync";
import { AsyncView } from "../components/AsyncView";
import { HealthTrendChart } from "../components/HealthTrendChart";
import { LONG_TERM_RANGES } from "./loop/LongTermPanel";

export function FleetTrendPanel() {
  const api = useApi();
  const [days, setDays] = useState<number>(90);
  const trend = useAsync((signal) => fleetTrend(api.http, days, signal), [api, days]);
  return (
    <section className="panel" aria-labelledby="fleet-trend-heading" data-testid="fleet-trend-panel">
      <div className="panel-head">
        <h2 id="fleet-trend-heading">Fleet health trend</h2>
        <div className="button-group" role="group" aria-label="Fleet trend range">
          {LONG_TERM_RANGES.map((value) => (
            <button key={value} type="button" className="secondary" aria-pressed={days === value} onClick={() => setDays(value)}>
              {value} days
            </button>
          ))}
        </div>
      </div>
      <AsyncView state={trend.state} what="the fleet health trend" onRetry={trend.reload}>
        {(data) => (
          <>
            <HealthTrendChart points={data.items} start={data.start} end={data.end} label={`Plant health per ${data.resolution} over the last ${days} days`} />
            <p className="small muted">Criticality-weighted mean health of all KPI windows per {data.resolution}.</p>
          </>
        )}
      </AsyncView>
    </section>
  );
}
