// @vitest-environment node
import { ApiClient, ApiError, buildQuery, describeError, fileNameOf } from "../../src/api/client";

const problem = (status: number, body: object, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body), { status, headers: { "content-type": "application/problem+json", ...headers } });

describe("the API client", () => {
  it("builds query strings without empty values and with comma lists", () => {
    expect(buildQuery({ loopId: "FIC-101", fields: ["pv", "op"], cursor: undefined, unit: "", limit: 5 })).toBe("?loopId=FIC-101&fields=pv%2Cop&limit=5");
    expect(buildQuery({})).toBe("");
  });

  it("sends the bearer token and reads JSON", async () => {
    const seen: Headers[] = [];
    const client = new ApiClient({
      baseUrl: "/api/v1/",
      getToken: async () => "abc",
      fetchImpl: (async (_url: string, init: RequestInit) => {
        seen.push(new Headers(init.headers));
        return new Response('{"ok":true}', { headers: { "content-type": "application/json" } });
      }) as unknown as typeof fetch,
    });
    expect(await client.get("/loops")).toEqual({ ok: true });
    expect(seen[0].get("authorization")).toBe("Bearer abc");
    expect(client.url("/loops", { unit: "U1" })).toBe("/api/v1/loops?unit=U1");
  });

  it("turns problem details into ApiError with parameter errors and Retry-After", async () => {
    const client = new ApiClient({
      baseUrl: "",
      getToken: async () => null,
      fetchImpl: (async () =>
        problem(422, { status: 422, detail: "start: must include a timezone", errors: [{ parameter: "start", location: "query", message: "must include a timezone" }] })) as unknown as typeof fetch,
    });
    const error = await client.get("/data/raw").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect((error as ApiError).status).toBe(422);
    expect((error as ApiError).parameterErrors).toEqual({ start: "must include a timezone" });

    const busy = new ApiClient({ baseUrl: "", getToken: async () => null, fetchImpl: (async () => problem(503, { detail: "diagnostics service is not reachable" }, { "retry-after": "5" })) as unknown as typeof fetch });
    const unavailable = (await busy.get("/x").catch((e: unknown) => e)) as ApiError;
    expect(unavailable.isUnavailable).toBe(true);
    expect(describeError(unavailable)).toBe("Diagnostics service is not reachable. Try again in 5 s.");
  });

  it("renews the session once after a 401 and retries", async () => {
    let tokens = 0;
    let renewals = 0;
    const client = new ApiClient({
      baseUrl: "",
      getToken: async () => `t${tokens++}`,
      renew: async () => {
        renewals += 1;
        return true;
      },
      fetchImpl: (async (_url: string, init: RequestInit) =>
        new Headers(init.headers).get("authorization") === "Bearer t0"
          ? problem(401, { detail: "expired" })
          : new Response("[]", { headers: { "content-type": "application/json" } })) as unknown as typeof fetch,
    });
    expect(await client.get("/loops")).toEqual([]);
    expect(renewals).toBe(1);
  });

  it("reports an unreachable server as status 0", async () => {
    const client = new ApiClient({ baseUrl: "", getToken: async () => null, fetchImpl: (async () => { throw new TypeError("Failed to fetch"); }) as unknown as typeof fetch });
    const error = (await client.get("/x").catch((e: unknown) => e)) as ApiError;
    expect(error.status).toBe(0);
    expect(error.message).toMatch(/cannot be reached/);
  });

  it("reads download names from Content-Disposition", () => {
    expect(fileNameOf('attachment; filename="FIC-101-raw.csv"')).toBe("FIC-101-raw.csv");
    expect(fileNameOf("attachment; filename*=UTF-8''TIC%20205.csv")).toBe("TIC 205.csv");
    expect(fileNameOf(null)).toBeNull();
  });
});
