// PV against OP of the raw samples in view (or of the last hour when the trend is aggregated):
// the picture an engineer reads for valve stiction.

import { useMemo } from "react";

import { useApi } from "../../api/ApiProvider";
import type { DataRange } from "../../api/types";
import { useAsync } from "../../api/useAsync";
import { AsyncView } from "../../components/AsyncView";
import { PvOpPlot } from "../../components/PvOpPlot";
import { pvOpPairs, toSeconds, type TrendData } from "../../lib/series";
import { loadRaw } from "./useTrendData";

const FALLBACK_SPAN_S = 3600;

export function PvOpPanel({ loopId, range, raw, units }: { loopId: string; range: DataRange; raw: TrendData | null; units: string | null }) {
  const api = useApi();
  const end = range.raw?.end ? toSeconds(range.raw.end) + 1 : null;
  const fallback = useAsync(
    (signal) => (raw || end === null ? Promise.resolve(null) : loadRaw(api, loopId, end - FALLBACK_SPAN_S, end, signal)),
    [api, loopId, raw === null, end],
  );
  const source = raw ?? fallback.state.data ?? null;
  const pairs = useMemo(() => (source ? pvOpPairs(source) : null), [source]);
  return (
    <section className="panel" aria-labelledby="pvop-heading">
      <h2 id="pvop-heading">PV – OP plot</h2>
      {end !== null && (
        <p className="small muted" style={{ marginTop: 0 }}>
          {raw ? "Raw samples shown in the trend." : "Raw samples of the last hour (the trend shows aggregates)."} A valve with
          stiction traces a parallelogram: OP moves while PV stays, then PV jumps.
        </p>
      )}
      {end === null ? (
        <p className="state state-empty">No raw samples for this loop.</p>
      ) : raw && pairs ? (
        <PvOpPlot op={pairs.op} pv={pairs.pv} units={units} />
      ) : (
        <AsyncView state={fallback.state} what="the raw samples">
          {() => (pairs ? <PvOpPlot op={pairs.op} pv={pairs.pv} units={units} /> : null)}
        </AsyncView>
      )}
    </section>
  );
}
