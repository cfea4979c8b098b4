// Roles of the signed-in user, read from the access token (Keycloak's claims).

import type { Role } from "../api/types";

export const ROLE_ORDER: Role[] = ["viewer", "engineer", "admin"];
export const API_CLIENT_ID = "clpm-api";

/** The JSON payload of a JWT (no signature check: the gateway checks every token). */
export function decodeJwtPayload(token: string): Record<string, unknown> | null {
  const part = token.split(".")[1];
  if (!part) return null;
  try {
    const base64 = part.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(part.length / 4) * 4, "=");
    const binary = atob(base64);
    const bytes = Uint8Array.from(binary, (char) => char.charCodeAt(0));
    const payload: unknown = JSON.parse(new TextDecoder().decode(bytes));
    return payload && typeof payload === "object" ? (payload as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

function stringList(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((item): item is string => typeof item === "string") : [];
}

/** CLPM roles of a token: ``realm_access.roles`` plus the ``clpm-api`` client roles. */
export function rolesFromToken(token: string | null | undefined): Role[] {
  if (!token) return [];
  const payload = decodeJwtPayload(token);
  if (!payload) return [];
  const realm = (payload.realm_access as { roles?: unknown } | undefined)?.roles;
  const resource = (payload.resource_access as Record<string, { roles?: unknown }> | undefined)?.[API_CLIENT_ID]
    ?.roles;
  const names = new Set([...stringList(realm), ...stringList(resource)]);
  return ROLE_ORDER.filter((role) => names.has(role));
}

/** The highest role held, or null. */
export function highestRole(roles: Role[]): Role | null {
  for (let index = ROLE_ORDER.length - 1; index >= 0; index -= 1) {
    if (roles.includes(ROLE_ORDER[index])) return ROLE_ORDER[index];
  }
  return null;
}

/** True if ``roles`` include ``required`` or a higher role (viewer < engineer < admin). */
export function hasRole(roles: Role[], required: Role): boolean {
  const top = highestRole(roles);
  return top !== null && ROLE_ORDER.indexOf(top) >= ROLE_ORDER.indexOf(required);
}
