// Loading, error and empty states of a load, and the content once it is there.

import type { ReactNode } from "react";

import type { AsyncState } from "../api/useAsync";
import { describeError } from "../api/client";

export function Loading({ label = "Loading…" }: { label?: string }) {
  return (
    <div className="state state-loading" role="status" aria-live="polite">
      <span className="spinner" aria-hidden="true" /> {label}
    </div>
  );
}

export function ErrorState({ error, onRetry, what }: { error: unknown; onRetry?: () => void; what?: string }) {
  return (
    <div className="state state-error" role="alert">
      <strong>{what ? `Could not load ${what}.` : "Something went wrong."}</strong> {describeError(error)}
      {onRetry && (
        <button type="button" className="secondary" onClick={onRetry}>
          Retry
        </button>
      )}
    </div>
  );
}

export function EmptyState({ children }: { children: ReactNode }) {
  return <div className="state state-empty">{children}</div>;
}

interface AsyncViewProps<T> {
  state: AsyncState<T>;
  /** what is loaded, for the messages ("the fleet summary") */
  what: string;
  onRetry?: () => void;
  isEmpty?: (data: T) => boolean;
  empty?: ReactNode;
  children: (data: T) => ReactNode;
}

/** Shows the data once loaded (and, while reloading, the previous data). */
export function AsyncView<T>({ state, what, onRetry, isEmpty, empty, children }: AsyncViewProps<T>) {
  if (state.status === "error") return <ErrorState error={state.error} onRetry={onRetry} what={what} />;
  if (state.data === undefined) return <Loading label={`Loading ${what}…`} />;
  if (isEmpty?.(state.data)) return <EmptyState>{empty ?? `No ${what}.`}</EmptyState>;
  return <>{children(state.data)}</>;
}
