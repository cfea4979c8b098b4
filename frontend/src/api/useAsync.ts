// React hook for one asynchronous load: loading / error / ready, reload, abort on change.

import { useCallback, useEffect, useRef, useState } from "react";

export type AsyncState<T> =
  | { status: "loading"; data: T | undefined; error: null }
  | { status: "error"; data: T | undefined; error: unknown }
  | { status: "ready"; data: T; error: null };

export interface AsyncResult<T> {
  state: AsyncState<T>;
  /** Load again (keeps the previous data on screen meanwhile). */
  reload: () => void;
}

/**
 * Run ``load`` when the hook mounts and whenever ``deps`` change; the previous request is
 * aborted. The last good data stays available while a new load runs (``state.data``).
 */
export function useAsync<T>(load: (signal: AbortSignal) => Promise<T>, deps: unknown[]): AsyncResult<T> {
  const [state, setState] = useState<AsyncState<T>>({ status: "loading", data: undefined, error: null });
  const [generation, setGeneration] = useState(0);
  const loadRef = useRef(load);
  loadRef.current = load;

  useEffect(() => {
    const controller = new AbortController();
    setState((previous) => ({ status: "loading", data: previous.data, error: null }));
    loadRef
      .current(controller.signal)
      .then((data) => {
        if (!controller.signal.aborted) setState({ status: "ready", data, error: null });
      })
      .catch((error: unknown) => {
        if (controller.signal.aborted || (error as { name?: string })?.name === "AbortError") return;
        setState((previous) => ({ status: "error", data: previous.data, error }));
      });
    return () => controller.abort();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [...deps, generation]);

  const reload = useCallback(() => setGeneration((value) => value + 1), []);
  return { state, reload };
}
