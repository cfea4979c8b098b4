// @vitest-environment node
import { loadRuntimeConfig } from "../src/runtimeConfig";

const answer = (status: number, body: unknown) => (async () => new Response(JSON.stringify(body), { status })) as unknown as typeof fetch;
const config = { oidc_issuer: "http://127.0.0.1:8080/realms/clpm", oidc_client_id: "clpm-frontend", oidc_scope: "openid", api_base_url: "/api/v1", auth_mode: "local" };

describe("loadRuntimeConfig", () => {
  it("takes the gateway's frontend configuration", async () => {
    let asked = "";
    const fetchImpl = (async (url: string) => {
      asked = url;
      return new Response(JSON.stringify(config));
    }) as unknown as typeof fetch;
    expect(await loadRuntimeConfig({ VITE_API_BASE_URL: "/api/v1/" }, fetchImpl)).toEqual(config);
    expect(asked).toBe("/api/v1/frontend-config");
  });

  it("falls back to the build-time issuer when the gateway cannot answer", async () => {
    const env = { VITE_OIDC_ISSUER: "http://localhost:8081/realms/clpm/", VITE_OIDC_CLIENT_ID: "clpm-frontend" };
    const loaded = await loadRuntimeConfig(env, answer(404, {}));
    expect(loaded).toMatchObject({ oidc_issuer: "http://localhost:8081/realms/clpm", oidc_client_id: "clpm-frontend", api_base_url: "/api/v1" });
  });

  it("explains why it cannot start without either", async () => {
    await expect(loadRuntimeConfig({}, answer(502, {}))).rejects.toThrow("the gateway answered 502 to /api/v1/frontend-config");
    await expect(loadRuntimeConfig({}, answer(200, { oidc_issuer: "" }))).rejects.toThrow("incomplete");
  });
});
