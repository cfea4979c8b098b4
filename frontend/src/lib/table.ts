// Client-side table logic: sorting with missing values last, text filtering, paging.

export type Order = "asc" | "desc";

export function compareValues(a: unknown, b: unknown): number {
  if (typeof a === "number" && typeof b === "number") return a - b;
  if (typeof a === "boolean" && typeof b === "boolean") return Number(a) - Number(b);
  return String(a).localeCompare(String(b), "en", { numeric: true, sensitivity: "base" });
}

const missing = (value: unknown) =>
  value === null || value === undefined || value === "" || (typeof value === "number" && !Number.isFinite(value));

/** A sorted copy; rows without a value for the key come last in either order; stable. */
export function sortRows<T>(rows: T[], value: (row: T) => unknown, order: Order): T[] {
  const sign = order === "asc" ? 1 : -1;
  return rows
    .map((row, index) => ({ row, index, key: value(row) }))
    .sort((a, b) => {
      const aMissing = missing(a.key);
      const bMissing = missing(b.key);
      if (aMissing || bMissing) return aMissing === bMissing ? a.index - b.index : aMissing ? 1 : -1;
      return sign * compareValues(a.key, b.key) || a.index - b.index;
    })
    .map((entry) => entry.row);
}

/** Rows where any of ``fields`` contains every word of ``text`` (case-insensitive). */
export function filterRows<T>(rows: T[], text: string, fields: (row: T) => (string | null | undefined)[]): T[] {
  const words = text.toLowerCase().split(/\s+/).filter(Boolean);
  if (!words.length) return rows;
  return rows.filter((row) => {
    const haystack = fields(row)
      .filter(Boolean)
      .join(" ")
      .toLowerCase();
    return words.every((word) => haystack.includes(word));
  });
}

export function pageOf<T>(rows: T[], offset: number, size: number): T[] {
  return rows.slice(offset, offset + size);
}

/** A CSV document (RFC 4180) of ``rows`` with the given columns. */
export function toCsv<T>(rows: T[], columns: { header: string; value: (row: T) => unknown }[]): string {
  const cell = (value: unknown) => {
    if (value === null || value === undefined) return "";
    let text = String(value);
    // text that a spreadsheet would run as a formula is kept as text (OWASP CSV injection)
    if (typeof value === "string" && /^([=+@\t\r]|-(?![\d.]))/.test(text)) text = `'${text}`;
    return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
  };
  const lines = [columns.map((column) => cell(column.header)).join(",")];
  for (const row of rows) lines.push(columns.map((column) => cell(column.value(row))).join(","));
  return `${lines.join("\r\n")}\r\n`;
}

/** Offer text as a file download. */
export function downloadText(text: string, fileName: string, type = "text/csv"): void {
  const href = URL.createObjectURL(new Blob([text], { type }));
  const link = document.createElement("a");
  link.href = href;
  link.download = fileName;
  document.body.appendChild(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(href), 1000);
}
