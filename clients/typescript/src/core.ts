// The one request layer: an operation is described once as a `Call`; `perform` sends it,
// reads the answer or the error and decides whether and how long to wait before a retry;
// `walk` follows a list's cursors. The rules are the Python SDK's (ww.sdk._core).
import { APIConnectionError, APIStatusError, APITimeoutError, errorFor } from "./errors.js";

/** Query values; null and undefined are not sent, objects are sent as JSON. */
export type QueryValue = string | number | boolean | Date | object | null | undefined;

export type Method = "GET" | "POST" | "PATCH" | "DELETE";

/** One operation: what to send and how to read the answer. */
export interface Call {
  method: Method;
  path: string;
  query?: Record<string, QueryValue> | undefined;
  /** A JSON body (`json`) or raw text with its content type (`text`). */
  json?: unknown;
  text?: { body: string; contentType: string };
  headers?: Record<string, string>;
  /** How the answer is read: JSON (default), text, or nothing (204). */
  answer?: "json" | "text" | "none";
  /** Error statuses whose body is an answer, not an error (health's 503). */
  accept?: readonly number[];
  /** The server does it once however often it is sent (an upsert): a 503 or a lost
   * connection may then be retried even without an Idempotency-Key. */
  upsert?: boolean;
}

/** Methods that do the same thing however often they are sent (RFC 9110 9.2.2). */
const IDEMPOTENT = new Set(["GET", "HEAD", "PUT", "DELETE", "OPTIONS"]);

/** Whether a 503 or a lost connection may be retried: an idempotent method, an upsert, or
 * an `Idempotency-Key` (the server then does the call once). A 429 is always retried. */
export function repeatable(call: Call): boolean {
  return IDEMPOTENT.has(call.method) || call.upsert === true || "Idempotency-Key" in (call.headers ?? {});
}

/** Retries of a 429, and of a 503 or a lost connection when the call is repeatable. The
 * wait is the server's `Retry-After` when it gives one, else `backoffMs` doubled each
 * attempt (with jitter, so many clients do not come back at once) up to `maxBackoffMs`. A
 * `Retry-After` longer than `maxRetryAfterMs` is not waited for: the error is thrown at
 * once, with `retryAfterMs` on it. */
export interface RetryOptions {
  maxRetries?: number;
  backoffMs?: number;
  maxBackoffMs?: number;
  maxRetryAfterMs?: number;
}

export const DEFAULT_RETRIES: Required<RetryOptions> = {
  maxRetries: 2,
  backoffMs: 500,
  maxBackoffMs: 8000,
  maxRetryAfterMs: 60_000,
};

/** The wait before retry number `attempt` + 1, or null when there is none to make. */
export function delay(rules: Required<RetryOptions>, attempt: number, retryAfterMs: number | null): number | null {
  if (attempt >= rules.maxRetries) return null;
  if (retryAfterMs !== null) return retryAfterMs <= rules.maxRetryAfterMs ? retryAfterMs : null;
  const ceiling = Math.min(rules.maxBackoffMs, rules.backoffMs * 2 ** attempt);
  return ceiling / 2 + Math.random() * (ceiling / 2);
}

/** Where calls go and how: shared by a client and its views (`session`, `withCredentials`),
 * which differ only in `headers`. */
export interface Transport {
  baseUrl: string;
  fetch: typeof globalThis.fetch;
  timeoutMs: number;
  retries: Required<RetryOptions>;
  /** Sent with every call: User-Agent and the caller's own. */
  headers: Record<string, string>;
}

export function url(baseUrl: string, path: string, query: Call["query"]): string {
  const target = new URL(baseUrl.replace(/\/+$/, "") + path);
  for (const [name, value] of Object.entries(query ?? {})) {
    if (value === null || value === undefined) continue;
    target.searchParams.set(name, queryText(value));
  }
  return target.toString();
}

function queryText(value: Exclude<QueryValue, null | undefined>): string {
  if (value instanceof Date) return value.toISOString();
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

function requestInit(call: Call, headers: Record<string, string>): RequestInit {
  const accept: Record<string, string> = call.answer === "text" ? {} : { Accept: "application/json" };
  const all: Record<string, string> = { ...accept, ...headers, ...call.headers };
  let body: string | undefined;
  if (call.text !== undefined) {
    body = call.text.body;
    all["Content-Type"] = call.text.contentType;
  } else if (call.json !== undefined) {
    body = JSON.stringify(call.json);
    all["Content-Type"] = "application/json";
  }
  return { method: call.method, headers: all, body };
}

const sleep = (ms: number) => new Promise<void>((done) => setTimeout(done, ms));

type Outcome = { response: Response; text: string } | { lost: unknown };

async function attempt(transport: Transport, target: string, init: RequestInit): Promise<Outcome> {
  try {
    const response = await transport.fetch(target, { ...init, signal: AbortSignal.timeout(transport.timeoutMs) });
    // The body is read inside the same timeout: a server that stalls mid-answer is lost too.
    return { response, text: await response.text() };
  } catch (lost) {
    return { lost };
  }
}

function lostError(call: Call, lost: unknown): APIConnectionError {
  const timeout = lost instanceof Error && (lost.name === "TimeoutError" || lost.name === "AbortError");
  const cause = lost instanceof Error ? (lost.cause instanceof Error ? lost.cause : lost) : undefined;
  const what = cause ? `${cause.name}: ${cause.message}` : String(lost);
  const Class = timeout ? APITimeoutError : APIConnectionError;
  return new Class(`${call.method} ${call.path}: ${timeout ? "timed out" : what}`, { cause: lost });
}

/** The error codes of the server's control-plane refusals (ww.api.control_gate). */
export const OPERATOR_BLOCKS: ReadonlySet<string> = new Set([
  "read_only",
  "maintenance",
  "emergency_limited",
  "emergency_lockdown",
]);

/** Send `call` until it is answered, retrying as the transport's rules allow; its answer read. */
export async function perform<T>(transport: Transport, call: Call, headers: Record<string, string>): Promise<T> {
  const target = url(transport.baseUrl, call.path, call.query);
  const init = requestInit(call, { ...transport.headers, ...headers });
  for (let tries = 0; ; tries++) {
    const outcome = await attempt(transport, target, init);
    let error: Error;
    let retryable: boolean;
    let serverWait: number | null = null;
    if ("response" in outcome) {
      const { response, text } = outcome;
      if (response.ok || (call.accept ?? []).includes(response.status)) return read<T>(call, text);
      const failure: APIStatusError = errorFor(response.status, response.statusText, response.headers, text);
      error = failure;
      // A 503 the control plane answers (read-only, maintenance, an emergency level) is an
      // operator's decision that lasts until lifted, not a fault a retry outlasts.
      const blocked = OPERATOR_BLOCKS.has(failure.code);
      retryable = response.status === 429 || (response.status === 503 && repeatable(call) && !blocked);
      serverWait = failure.retryAfterMs;
    } else {
      error = lostError(call, outcome.lost);
      retryable = repeatable(call);
    }
    const wait = retryable ? delay(transport.retries, tries, serverWait) : null;
    if (wait === null) throw error;
    await sleep(wait);
  }
}

function read<T>(call: Call, text: string): T {
  if (call.answer === "none") return undefined as T;
  if (call.answer === "text") return text as T;
  return JSON.parse(text) as T;
}

/** A page of a list: its items under some key, and the cursor of the next page. */
export interface Page {
  /** A string for the memory lists, the last audit id for the control plane's audit. */
  next_cursor?: string | number | null;
}

/** Every item of every page, following `next_cursor` from `first`. */
export async function* walk<P extends Page, I>(
  transport: Transport,
  first: Call,
  headers: Record<string, string>,
  items: (page: P) => readonly I[],
): AsyncGenerator<I, void, undefined> {
  let call: Call | null = first;
  while (call !== null) {
    const page: P = await perform<P>(transport, call, headers);
    yield* items(page);
    call = page.next_cursor ? { ...first, query: { ...first.query, cursor: page.next_cursor } } : null;
  }
}
