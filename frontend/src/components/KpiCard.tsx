// One KPI: its latest value and a sparkline of its history.

import { Sparkline } from "./Sparkline";
import { formatNumber } from "../lib/format";

export interface KpiDefinition {
  key: string;
  name: string;
  /** value -> display text */
  format: (value: number | null) => string;
  help: string;
}

export function KpiCard({ definition, value, history }: { definition: KpiDefinition; value: number | null; history: (number | null)[] }) {
  const known = history.filter((item): item is number => item !== null && Number.isFinite(item));
  const summary = known.length
    ? `${definition.name} history of ${known.length} windows: min ${formatNumber(Math.min(...known), 2)}, max ${formatNumber(Math.max(...known), 2)}`
    : `${definition.name}: no history`;
  return (
    <div className="kpi-card" title={definition.help}>
      <div className="kpi-name">{definition.name}</div>
      <div className="kpi-value">{definition.format(value)}</div>
      <Sparkline values={history} label={summary} />
    </div>
  );
}
