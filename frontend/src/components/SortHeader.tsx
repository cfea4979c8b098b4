// A sortable column header: a button that toggles the order, with aria-sort on the cell.

import type { ReactNode } from "react";

export type SortOrder = "asc" | "desc";

interface SortHeaderProps<K extends string> {
  column: K;
  sort: K;
  order: SortOrder;
  onSort: (column: K, order: SortOrder) => void;
  /** order when first sorting by this column */
  initialOrder?: SortOrder;
  className?: string;
  children: ReactNode;
}

export function SortHeader<K extends string>({ column, sort, order, onSort, initialOrder = "asc", className, children }: SortHeaderProps<K>) {
  const active = column === sort;
  const next: SortOrder = active ? (order === "asc" ? "desc" : "asc") : initialOrder;
  return (
    <th scope="col" className={className} aria-sort={active ? (order === "asc" ? "ascending" : "descending") : "none"}>
      <button type="button" className="sort" onClick={() => onSort(column, next)}>
        {children}
        <span className="sort-icon" aria-hidden="true">
          {active ? (order === "asc" ? "▲" : "▼") : "↕"}
        </span>
        <span className="sr-only">{`, sort ${next === "asc" ? "ascending" : "descending"}`}</span>
      </button>
    </th>
  );
}
