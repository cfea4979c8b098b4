// The fleet table's "Work" cell: whether a loop is acknowledged and how many items are open.

import type { FleetWorkItems } from "../api/workItems";

export function WorkCell({ entry }: { entry: FleetWorkItems | undefined }) {
  if (!entry) return <span className="muted">–</span>;
  const findings = entry.acknowledged_categories;
  return (
    <>
      {entry.acknowledged && (
        <span className="work-tag" title={entry.acknowledged_until ? `until ${entry.acknowledged_until.slice(0, 10)}` : "until the loop changes"}>
          Acknowledged
        </span>
      )}
      {findings.length > 0 && <span className="work-tag">Ack: {findings.join(", ")}</span>}
      {entry.open_items > 0 && (
        <span className="work-tag">
          {entry.open_items} open item{entry.open_items === 1 ? "" : "s"}
        </span>
      )}
    </>
  );
}
