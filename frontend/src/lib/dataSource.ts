// Where a loop's samples come from, as the catalogue records it (data_source and its detail).

export interface DataSourceFields {
  data_source?: string | null;
  data_source_detail?: string | null;
}

export interface DataSourceText {
  /** short label: "Simulated", "Imported", "OPC UA" or "Unknown" */
  label: string;
  /** the imported file names, or the OPC UA endpoint and nodes (null: nothing more known) */
  detail: string | null;
}

const LABELS: Record<string, string> = { simulated: "Simulated", simulator: "Simulated", import: "Imported", opcua: "OPC UA" };

export function dataSourceOf(loop: DataSourceFields): DataSourceText {
  const source = loop.data_source ?? null;
  const detail = loop.data_source_detail?.trim() || null;
  if (source === null) return { label: "Unknown", detail };
  return { label: LABELS[source] ?? source, detail };
}

/** One line: "Imported: a.csv, b.csv", "OPC UA: opc.tcp://plc:4840: ns=2;s=FIC1.PV", "Simulated". */
export function dataSourceText(loop: DataSourceFields): string {
  const { label, detail } = dataSourceOf(loop);
  if (!detail) return label;
  return label === "Imported" ? `Imported file${detail.includes(",") ? "s" : ""}: ${detail}` : `${label}: ${detail}`;
}
