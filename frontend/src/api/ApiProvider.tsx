// The typed API of the gateway for the components, authenticated as the signed-in user.

import { createContext, useContext, useMemo, type ReactNode } from "react";

import { useAuth } from "../auth/AuthProvider";
import { ApiClient } from "./client";
import { ClpmApi } from "./endpoints";

const ApiContext = createContext<ClpmApi | null>(null);

export function ApiProvider({ baseUrl, children }: { baseUrl: string; children: ReactNode }) {
  const { getToken, renew } = useAuth();
  const api = useMemo(() => new ClpmApi(new ApiClient({ baseUrl, getToken, renew })), [baseUrl, getToken, renew]);
  return <ApiContext.Provider value={api}>{children}</ApiContext.Provider>;
}

/** For tests: provide a ready-made API object. */
export const ApiContextProvider = ApiContext.Provider;

export function useApi(): ClpmApi {
  const api = useContext(ApiContext);
  if (!api) throw new Error("useApi() outside <ApiProvider>");
  return api;
}
