// Where to sign in, learnt at run time from the gateway (GET {API base}/frontend-config), so
// one build works behind nginx, the Vite dev server and the gateway. VITE_OIDC_ISSUER and
// VITE_OIDC_CLIENT_ID (build time) are only a fallback for a gateway that cannot be asked.

import type { FrontendConfig } from "./api/types";

export const DEFAULT_API_BASE = "/api/v1";

export interface BuildEnv {
  VITE_API_BASE_URL?: string;
  VITE_OIDC_ISSUER?: string;
  VITE_OIDC_CLIENT_ID?: string;
}

export function apiBaseOf(env: BuildEnv): string {
  return (env.VITE_API_BASE_URL || DEFAULT_API_BASE).replace(/\/$/, "");
}

function isConfig(value: unknown): value is FrontendConfig {
  const config = value as FrontendConfig | null;
  return (
    !!config &&
    typeof config.oidc_issuer === "string" &&
    config.oidc_issuer.length > 0 &&
    typeof config.oidc_client_id === "string" &&
    config.oidc_client_id.length > 0
  );
}

export async function loadRuntimeConfig(env: BuildEnv, fetchImpl: typeof fetch = fetch): Promise<FrontendConfig> {
  const apiBase = apiBaseOf(env);
  let reason = "";
  try {
    const response = await fetchImpl(`${apiBase}/frontend-config`, { headers: { Accept: "application/json" } });
    if (response.ok) {
      const body: unknown = await response.json();
      if (isConfig(body)) {
        return {
          ...body,
          oidc_scope: body.oidc_scope || "openid profile email",
          api_base_url: body.api_base_url || apiBase,
        };
      }
      reason = "the gateway's frontend configuration is incomplete";
    } else {
      reason = `the gateway answered ${response.status} to ${apiBase}/frontend-config`;
    }
  } catch {
    reason = "the gateway cannot be reached";
  }
  if (env.VITE_OIDC_ISSUER && env.VITE_OIDC_CLIENT_ID) {
    return {
      oidc_issuer: env.VITE_OIDC_ISSUER.replace(/\/$/, ""),
      oidc_client_id: env.VITE_OIDC_CLIENT_ID,
      oidc_scope: "openid profile email",
      api_base_url: apiBase,
      auth_mode: "oidc",
    };
  }
  throw new Error(`Cannot start: ${reason}.`);
}
