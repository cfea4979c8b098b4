// One KPI: its latest value and a sparkline of its history.

import type { SpanSource } from "../api/types";
import { Sparkline } from "./Sparkline";
import { formatNumber } from "../lib/format";
import { formatPercentOfSpan, spanHelp } from "../lib/spans";

export interface KpiDefinition {
  key: string;
  name: string;
  /** value -> display text */
  format: (value: number | null) => string;
  help: string;
  /** A percentage of the PV span: shown with the span's source ("% of est. span"). */
  ofPvSpan?: boolean;
}

export function KpiCard({
  definition,
  value,
  history,
  spanSource = null,
}: {
  definition: KpiDefinition;
  value: number | null;
  history: (number | null)[];
  spanSource?: SpanSource | null;
}) {
  const known = history.filter((item): item is number => item !== null && Number.isFinite(item));
  const summary = known.length
    ? `${definition.name} history of ${known.length} windows: min ${formatNumber(Math.min(...known), 2)}, max ${formatNumber(Math.max(...known), 2)}`
    : `${definition.name}: no history`;
  return (
    <div className="kpi-card" title={definition.ofPvSpan ? `${definition.help}. ${spanHelp(spanSource)}` : definition.help}>
      <div className="kpi-name">{definition.name}</div>
      {definition.ofPvSpan ? (
        <div className="kpi-value">
          <span className={spanSource === "estimated" ? "span-estimated" : undefined} data-span-source={spanSource ?? "unknown"}>
            {formatPercentOfSpan(value, spanSource)}
          </span>
        </div>
      ) : (
        <div className="kpi-value">{definition.format(value)}</div>
      )}
      <Sparkline values={history} label={summary} />
    </div>
  );
}
