// @vitest-environment node
import { decodeJwtPayload, hasRole, highestRole, rolesFromToken } from "../../src/auth/roles";

function token(payload: object): string {
  const encode = (value: object) =>
    btoa(String.fromCharCode(...new TextEncoder().encode(JSON.stringify(value))))
      .replace(/\+/g, "-")
      .replace(/\//g, "_")
      .replace(/=+$/, "");
  return `${encode({ alg: "RS256" })}.${encode(payload)}.signature`;
}

describe("roles from the access token", () => {
  it("reads realm roles and clpm-api client roles, in order", () => {
    expect(rolesFromToken(token({ realm_access: { roles: ["offline_access", "engineer", "viewer"] } }))).toEqual(["viewer", "engineer"]);
    expect(rolesFromToken(token({ resource_access: { "clpm-api": { roles: ["admin"] } } }))).toEqual(["admin"]);
    expect(rolesFromToken(token({ resource_access: { other: { roles: ["admin"] } } }))).toEqual([]);
  });

  it("survives malformed tokens", () => {
    expect(rolesFromToken("not-a-jwt")).toEqual([]);
    expect(rolesFromToken(null)).toEqual([]);
    expect(decodeJwtPayload("a.!!!.c")).toBeNull();
  });

  it("decodes UTF-8 names", () => {
    expect(decodeJwtPayload(token({ name: "Zoë Müller" }))?.name).toBe("Zoë Müller");
  });

  it("orders viewer < engineer < admin", () => {
    expect(hasRole(["admin"], "engineer")).toBe(true);
    expect(hasRole(["viewer"], "engineer")).toBe(false);
    expect(hasRole([], "viewer")).toBe(false);
    expect(highestRole(["viewer", "engineer"])).toBe("engineer");
  });
});
