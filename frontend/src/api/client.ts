// HTTP client of the gateway API: bearer token, query strings, problem details as ApiError,
// one retry after a token renewal on 401, CSV downloads.

import type { Problem } from "./types";

export type QueryValue = string | number | boolean | null | undefined | string[];
export type Query = Record<string, QueryValue>;

/** An error answer of the API (or a failure to reach it), with what the UI needs to say. */
export class ApiError extends Error {
  readonly status: number;
  readonly problem: Problem | null;
  readonly retryAfterS: number | null;

  constructor(status: number, message: string, problem: Problem | null, retryAfterS: number | null) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.problem = problem;
    this.retryAfterS = retryAfterS;
  }

  /** The parameter errors of a 422, keyed by parameter name. */
  get parameterErrors(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const error of this.problem?.errors ?? []) out[error.parameter] = error.message;
    return out;
  }

  get isUnavailable(): boolean {
    return this.status === 503 || this.status === 504 || this.status === 0;
  }
}

/** A human sentence for an error: the problem's detail, else a description of the status. */
export function describeError(error: unknown): string {
  if (error instanceof ApiError) {
    const retry = error.retryAfterS ? ` Try again in ${error.retryAfterS} s.` : "";
    const sentence = /[.!?]$/.test(error.message) ? error.message : `${error.message}.`;
    return `${sentence.charAt(0).toUpperCase()}${sentence.slice(1)}${retry}`;
  }
  if (error instanceof Error) return error.message;
  return String(error);
}

export function buildQuery(query: Query | undefined): string {
  if (!query) return "";
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query)) {
    if (value === undefined || value === null || value === "") continue;
    if (Array.isArray(value)) {
      if (value.length) params.set(name, value.join(","));
    } else {
      params.set(name, String(value));
    }
  }
  const text = params.toString();
  return text ? `?${text}` : "";
}

const STATUS_TEXT: Record<number, string> = {
  0: "The server cannot be reached.",
  401: "Your session has ended: sign in again.",
  403: "Your role does not allow this.",
  404: "Not found.",
  422: "The request was not accepted.",
  500: "The server failed.",
  502: "A backend service failed.",
  503: "A backend service is unavailable.",
  504: "A backend service did not answer in time.",
};

async function errorOf(response: Response): Promise<ApiError> {
  let problem: Problem | null = null;
  const type = response.headers.get("content-type") ?? "";
  if (type.includes("json")) {
    try {
      problem = (await response.json()) as Problem;
    } catch {
      problem = null;
    }
  }
  const retry = Number(response.headers.get("retry-after"));
  const detail =
    (typeof problem?.detail === "string" && problem.detail) ||
    (typeof (problem as { error_description?: unknown })?.error_description === "string" &&
      String((problem as { error_description?: unknown }).error_description)) ||
    STATUS_TEXT[response.status] ||
    `The server answered ${response.status}.`;
  return new ApiError(response.status, detail, problem, Number.isFinite(retry) && retry > 0 ? retry : null);
}

export interface ApiClientOptions {
  baseUrl: string;
  /** The current access token, or null when signed out. */
  getToken: () => Promise<string | null>;
  /** Called after a 401: renew the session; true if a retry may succeed. */
  renew?: () => Promise<boolean>;
  fetchImpl?: typeof fetch;
}

export class ApiClient {
  private readonly options: ApiClientOptions;

  constructor(options: ApiClientOptions) {
    this.options = options;
  }

  url(path: string, query?: Query): string {
    return `${this.options.baseUrl.replace(/\/$/, "")}${path}${buildQuery(query)}`;
  }

  private async send(
    method: string,
    path: string,
    query: Query | undefined,
    body: unknown,
    accept: string,
    signal?: AbortSignal,
    /** send ``body`` (a string) as is, with this Content-Type, instead of as JSON */
    textType?: string,
  ): Promise<Response> {
    const fetcher = this.options.fetchImpl ?? fetch;
    const attempt = async (): Promise<Response> => {
      const headers: Record<string, string> = { Accept: accept };
      const token = await this.options.getToken();
      if (token) headers.Authorization = `Bearer ${token}`;
      const form = typeof FormData !== "undefined" && body instanceof FormData;
      // a form's Content-Type (with its boundary) is set by fetch itself
      if (body !== undefined && !form) headers["Content-Type"] = textType ?? "application/json";
      try {
        return await fetcher(this.url(path, query), {
          method,
          headers,
          body: body === undefined ? undefined : form ? (body as FormData) : textType ? String(body) : JSON.stringify(body),
          signal,
        });
      } catch (error) {
        if ((error as { name?: string })?.name === "AbortError") throw error;
        throw new ApiError(0, STATUS_TEXT[0], null, null);
      }
    };
    let response = await attempt();
    if (response.status === 401 && this.options.renew && (await this.options.renew())) {
      response = await attempt();
    }
    if (!response.ok) throw await errorOf(response);
    return response;
  }

  async get<T>(path: string, query?: Query, signal?: AbortSignal): Promise<T> {
    const response = await this.send("GET", path, query, undefined, "application/json", signal);
    return (await response.json()) as T;
  }

  async put<T>(path: string, body: unknown): Promise<T> {
    const response = await this.send("PUT", path, undefined, body, "application/json");
    return (await response.json()) as T;
  }

  async patch<T>(path: string, body: unknown): Promise<T> {
    const response = await this.send("PATCH", path, undefined, body, "application/json");
    return (await response.json()) as T;
  }

  async post<T>(path: string, body: unknown): Promise<T> {
    const response = await this.send("POST", path, undefined, body, "application/json");
    return (await response.json()) as T;
  }

  /** POST a text document (e.g. CSV) as is; answers the JSON reply. */
  async postText<T>(path: string, text: string, contentType: string, query?: Query): Promise<T> {
    const response = await this.send("POST", path, query, text, "application/json", undefined, contentType);
    return (await response.json()) as T;
  }

  /** POST a multipart form (file uploads); answers the JSON reply. */
  async postForm<T>(path: string, form: FormData): Promise<T> {
    const response = await this.send("POST", path, undefined, form, "application/json");
    return (await response.json()) as T;
  }

  async delete(path: string): Promise<void> {
    await this.send("DELETE", path, undefined, undefined, "application/json");
  }

  /** Fetch a CSV answer (with the token) and hand it to the browser as a file download. */
  async downloadCsv(path: string, query: Query, fallbackName: string): Promise<void> {
    await this.download(path, { ...query, format: "csv" }, "text/csv", fallbackName);
  }

  /** Fetch a file answer (with the token) and hand it to the browser as a download. */
  async download(path: string, query: Query, accept: string, fallbackName: string): Promise<void> {
    const response = await this.send("GET", path, query, undefined, accept);
    const blob = await response.blob();
    const name = fileNameOf(response.headers.get("content-disposition")) ?? fallbackName;
    const href = URL.createObjectURL(blob);
    const link = document.createElement("a");
    link.href = href;
    link.download = name;
    document.body.appendChild(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(href), 1000);
  }
}

/** The file name of a Content-Disposition header (RFC 6266; filename* preferred). */
export function fileNameOf(header: string | null): string | null {
  if (!header) return null;
  const extended = /filename\*\s*=\s*(?:UTF-8'')?([^;]+)/i.exec(header);
  if (extended) {
    try {
      return decodeURIComponent(extended[1].trim().replace(/^"|"$/g, ""));
    } catch {
      /* fall through to the plain name */
    }
  }
  const plain = /filename\s*=\s*("?)([^";]+)\1/i.exec(header);
  return plain ? plain[2].trim() : null;
}
