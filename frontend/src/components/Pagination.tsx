// Page navigation of a table: previous/next, page n of m, rows per page.

export const PAGE_SIZES = [10, 25, 50, 100];

export function pageCount(total: number, pageSize: number): number {
  return Math.max(1, Math.ceil(total / pageSize));
}

interface PaginationProps {
  total: number;
  offset: number;
  pageSize: number;
  onOffset: (offset: number) => void;
  onPageSize: (size: number) => void;
  label: string;
}

export function Pagination({ total, offset, pageSize, onOffset, onPageSize, label }: PaginationProps) {
  const pages = pageCount(total, pageSize);
  const page = Math.min(pages, Math.floor(offset / pageSize) + 1);
  const first = total === 0 ? 0 : offset + 1;
  const last = Math.min(total, offset + pageSize);
  return (
    <nav className="pagination" aria-label={`${label} pages`}>
      <span className="muted small" aria-live="polite">
        {first}–{last} of {total}
      </span>
      <div className="pages">
        <button type="button" className="secondary" disabled={page <= 1} onClick={() => onOffset(Math.max(0, offset - pageSize))}>
          ‹ Previous
        </button>
        <span className="small">
          Page {page} of {pages}
        </span>
        <button type="button" className="secondary" disabled={page >= pages} onClick={() => onOffset(offset + pageSize)}>
          Next ›
        </button>
      </div>
      <label className="field-inline small">
        Rows per page
        <select value={pageSize} onChange={(event) => onPageSize(Number(event.target.value))}>
          {PAGE_SIZES.map((size) => (
            <option key={size} value={size}>
              {size}
            </option>
          ))}
        </select>
      </label>
    </nav>
  );
}
