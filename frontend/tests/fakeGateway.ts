// A stand-in for the gateway in component tests: answers fetch() from a route table and
// records the requests. (The real gateway is exercised end to end in tests/e2e/.)

import { ApiClient } from "../src/api/client";
import { ClpmApi } from "../src/api/endpoints";

export interface Recorded {
  method: string;
  path: string;
  query: URLSearchParams;
  body: unknown;
  contentType?: string;
}

/** JSON bodies parsed; anything else (a CSV upload) as the text sent. */
function parsed(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

type Handler = (request: Recorded) => { status?: number; body?: unknown; headers?: Record<string, string> } | unknown;

export function json(body: unknown, status = 200, headers: Record<string, string> = {}) {
  return { status, body, headers: { "content-type": status >= 400 ? "application/problem+json" : "application/json", ...headers } };
}

/** ``routes``: "GET /loops" -> handler; unmatched requests answer 404. */
export function fakeGateway(routes: Record<string, Handler>) {
  const requests: Recorded[] = [];
  const fetchImpl = (async (input: RequestInfo | URL, init?: RequestInit) => {
    const url = new URL(String(input), "http://gateway.test");
    const request: Recorded = {
      method: init?.method ?? "GET",
      path: url.pathname.replace(/^\/api\/v1/, ""),
      query: url.searchParams,
      body: init?.body instanceof FormData ? init.body : init?.body ? parsed(String(init.body)) : undefined,
      contentType: (init?.headers as Record<string, string> | undefined)?.["Content-Type"],
    };
    requests.push(request);
    const handler = routes[`${request.method} ${request.path}`];
    const answer = handler ? handler(request) : json({ title: "Not Found", status: 404, detail: `no route ${request.path}` }, 404);
    const shaped = (answer && typeof answer === "object" && "status" in (answer as object) && "body" in (answer as object)
      ? answer
      : json(answer)) as { status: number; body: unknown; headers: Record<string, string> };
    return new Response(shaped.status === 204 ? null : JSON.stringify(shaped.body), { status: shaped.status, headers: shaped.headers });
  }) as typeof fetch;
  const api = new ClpmApi(new ApiClient({ baseUrl: "/api/v1", getToken: async () => "token", fetchImpl }));
  return { api, requests, fetchImpl };
}
