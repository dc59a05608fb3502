// What the client throws: one class per kind of failure, each carrying the server's error
// envelope ({"error": {"code", "message", "request_id"}}) when there was one. The classes
// and their statuses are those of the Python SDK (ww.sdk.errors).

/** The base of every error the client throws. */
export class WorldWeaverError extends Error {
  override name = "WorldWeaverError";
}

/** No answer came: the server could not be reached or the connection broke. */
export class APIConnectionError extends WorldWeaverError {
  override name = "APIConnectionError";
}

/** No answer came within the timeout. */
export class APITimeoutError extends APIConnectionError {
  override name = "APITimeoutError";
}

export interface StatusDetails {
  status: number;
  code: string;
  requestId: string | null;
  retryAfterMs?: number | null;
}

/** The server answered with an error status. `code` is the envelope's machine-readable
 * code (`not_found`, `external_id_conflict`...), `requestId` the id to quote to the
 * operator (the server logs it), `retryAfterMs` the wait the server asked for. */
export class APIStatusError extends WorldWeaverError {
  override name = "APIStatusError";
  readonly status: number;
  readonly code: string;
  readonly requestId: string | null;
  readonly retryAfterMs: number | null;

  constructor(message: string, details: StatusDetails) {
    super(message);
    this.status = details.status;
    this.code = details.code;
    this.requestId = details.requestId;
    this.retryAfterMs = details.retryAfterMs ?? null;
  }
}

/** 400: a malformed parameter, header or cursor. */
export class BadRequestError extends APIStatusError {
  override name = "BadRequestError";
}
/** 401: no credential, or one the server does not accept. */
export class AuthenticationError extends APIStatusError {
  override name = "AuthenticationError";
}
/** 403: the credential is valid but may not do this. */
export class PermissionDeniedError extends APIStatusError {
  override name = "PermissionDeniedError";
}
/** 404: no such memory, session or route (or one the credential may not see). */
export class NotFoundError extends APIStatusError {
  override name = "NotFoundError";
}
/** 409: an external id, relation or idempotency key already in use. */
export class ConflictError extends APIStatusError {
  override name = "ConflictError";
}
/** 413: the body is larger than the server accepts. */
export class PayloadTooLargeError extends APIStatusError {
  override name = "PayloadTooLargeError";
}
/** 422: the body or a parameter breaks the schema; `message` says where. */
export class ValidationError extends APIStatusError {
  override name = "ValidationError";
}
/** 429: too many requests; retried until the retries run out. */
export class RateLimitedError extends APIStatusError {
  override name = "RateLimitedError";
}
/** 5xx: the server failed. */
export class ServerError extends APIStatusError {
  override name = "ServerError";
}
/** 503: a store the server depends on is down; retried when the call is repeatable. */
export class UnavailableError extends ServerError {
  override name = "UnavailableError";
}
/** 507: the server's disk is below its free-space watermark; never retried (it lasts). */
export class InsufficientStorageError extends ServerError {
  override name = "InsufficientStorageError";
}

const BY_STATUS: Record<number, typeof APIStatusError> = {
  400: BadRequestError,
  401: AuthenticationError,
  403: PermissionDeniedError,
  404: NotFoundError,
  409: ConflictError,
  413: PayloadTooLargeError,
  422: ValidationError,
  429: RateLimitedError,
  503: UnavailableError,
  507: InsufficientStorageError,
};

/** `Retry-After` in milliseconds (seconds or an HTTP date), or null without one. */
export function retryAfterMs(value: string | null, now: number = Date.now()): number | null {
  if (value === null || value.trim() === "") return null;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const when = Date.parse(value);
  return Number.isNaN(when) ? null : Math.max(0, when - now);
}

/** The error an answer with an error status stands for, from its envelope; an answer
 * without one (a proxy's page) keeps its status and a generic code. */
export function errorFor(status: number, statusText: string, headers: Headers, text: string): APIStatusError {
  let code = "error";
  let message = statusText || "error";
  let requestId = headers.get("x-request-id");
  let body: unknown = null;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON: keep the status line
  }
  const envelope = isRecord(body) ? body["error"] : undefined;
  if (isRecord(envelope)) {
    code = typeof envelope["code"] === "string" && envelope["code"] ? envelope["code"] : code;
    message = typeof envelope["message"] === "string" && envelope["message"] ? envelope["message"] : message;
    requestId = typeof envelope["request_id"] === "string" && envelope["request_id"] ? envelope["request_id"] : requestId;
  }
  const Class = BY_STATUS[status] ?? (status >= 500 ? ServerError : APIStatusError);
  return new Class(message, { status, code, requestId, retryAfterMs: retryAfterMs(headers.get("retry-after")) });
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
