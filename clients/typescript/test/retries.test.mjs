// Retries, timeouts and headers against a small scripted HTTP server on 127.0.0.1: the
// faults (503, 429, a dropped connection, a stall) that a healthy World Weaver server does
// not produce on demand. The rules are the Python SDK's (docs/sdk.md#retries).
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { after, before, beforeEach, describe, test } from "node:test";

import {
  APIConnectionError,
  APIStatusError,
  APITimeoutError,
  InsufficientStorageError,
  RateLimitedError,
  UnavailableError,
  WorldWeaver,
} from "world-weaver";

import { rejection } from "./helpers.mjs";

/** Each request takes the next scripted answer: [status, headers, body], "drop" (close the
 * connection unanswered) or "stall" (never answer). The last one repeats. */
let script = [];
let seen = [];
let stalled = [];
const server = createServer((request, response) => {
  let body = "";
  request.on("data", (chunk) => (body += chunk));
  request.on("end", () => {
    seen.push({ method: request.method, url: request.url, headers: request.headers, body });
    const next = script.length > 1 ? script.shift() : script[0];
    if (next === "drop") return request.socket.destroy();
    if (next === "stall") return stalled.push(response);
    const [status, headers, answer] = next;
    response.writeHead(status, { "Content-Type": "application/json", ...headers });
    response.end(answer === undefined ? "" : JSON.stringify(answer));
  });
});
let baseUrl;

before(async () => {
  await new Promise((done) => server.listen(0, "127.0.0.1", done));
  baseUrl = `http://127.0.0.1:${server.address().port}`;
});
after(() => {
  for (const response of stalled) response.destroy();
  server.closeAllConnections();
  server.close();
});
beforeEach(() => {
  script = [];
  seen = [];
});

const OK = [200, {}, { id: "e1", content: "x" }];
const envelope = (code) => ({ error: { code, message: `${code} here`, request_id: "req-1" } });
const unavailable = (headers = { "Retry-After": "0" }) => [503, headers, envelope("service_unavailable")];
const client = (options = {}) => new WorldWeaver({ baseUrl, retries: { backoffMs: 1, maxBackoffMs: 2 }, ...options });

describe("retries", () => {
  test("a GET is retried after a 503 with Retry-After", async () => {
    script = [unavailable(), OK];
    assert.equal((await client().episodes.get("e1")).id, "e1");
    assert.equal(seen.length, 2);
  });

  test("a Retry-After given as an HTTP date is honoured", async () => {
    script = [unavailable({ "Retry-After": new Date(Date.now() - 1000).toUTCString() }), OK];
    assert.equal((await client().episodes.get("e1")).id, "e1");
    assert.equal(seen.length, 2);
  });

  test("a POST keeps its one Idempotency-Key across retries", async () => {
    script = [unavailable(), "drop", [201, {}, { id: "e1" }]];
    const stored = await client().episodes.create({ content: "once" });
    assert.equal(stored.id, "e1");
    const keys = seen.map((r) => r.headers["idempotency-key"]);
    assert.equal(keys.length, 3);
    assert.match(keys[0], /^[0-9a-f-]{36}$/);
    assert.deepEqual(new Set(keys).size, 1);
    assert.deepEqual(JSON.parse(seen[2].body), { content: "once" });
  });

  test("the caller's idempotency key is the one sent", async () => {
    script = [[200, {}, { hits: [] }]];
    await client().recall("q", { idempotencyKey: "mine", limit: 3 });
    assert.equal(seen[0].headers["idempotency-key"], "mine");
    assert.deepEqual(JSON.parse(seen[0].body), { query: "q", limit: 3 });
  });

  test("a PATCH is not retried after a 503", async () => {
    script = [unavailable(), OK];
    const error = await rejection(client().episodes.update("e1", { importance: 1 }));
    assert.ok(error instanceof UnavailableError);
    assert.equal(error.code, "service_unavailable");
    assert.equal(error.requestId, "req-1");
    assert.equal(seen.length, 1);
  });

  test("a PATCH is not retried after a lost connection", async () => {
    script = ["drop", OK];
    const error = await rejection(client().episodes.update("e1", { importance: 1 }));
    assert.ok(error instanceof APIConnectionError);
    assert.equal(seen.length, 1);
  });

  test("a 429 is retried whatever the method", async () => {
    script = [[429, { "Retry-After": "0" }, envelope("rate_limited")], OK];
    assert.equal((await client().episodes.update("e1", { importance: 1 })).id, "e1");
    assert.equal(seen.length, 2);
  });

  test("a 507 is never retried", async () => {
    script = [[507, {}, envelope("insufficient_storage")], OK];
    const error = await rejection(client().episodes.get("e1"));
    assert.ok(error instanceof InsufficientStorageError);
    assert.equal(seen.length, 1);
  });

  test("the retries run out", async () => {
    script = [unavailable()];
    const error = await rejection(client({ retries: { maxRetries: 3, backoffMs: 1 } }).episodes.get("e1"));
    assert.ok(error instanceof UnavailableError);
    assert.equal(seen.length, 4);
    script = [unavailable({})];
    seen = [];
    await rejection(client({ retries: 0 }).episodes.get("e1"));
    assert.equal(seen.length, 1);
  });

  test("a Retry-After longer than maxRetryAfterMs is not waited for", async () => {
    script = [[429, { "Retry-After": "120" }, envelope("rate_limited")], OK];
    const error = await rejection(client().episodes.get("e1"));
    assert.ok(error instanceof RateLimitedError);
    assert.equal(error.retryAfterMs, 120_000);
    assert.equal(seen.length, 1);
  });

  test("an answer without the envelope keeps its status", async () => {
    script = [[418, { "Content-Type": "text/html" }, undefined]];
    const error = await rejection(client().episodes.get("e1"));
    assert.ok(error instanceof APIStatusError);
    assert.equal(error.status, 418);
    assert.equal(error.code, "error");
  });

  test("health reads a 503 as its report", async () => {
    script = [[503, {}, { status: "degraded", components: {} }]];
    assert.equal((await client().health()).status, "degraded");
    assert.equal(seen.length, 1);
  });

  test("no answer within the timeout", async () => {
    script = ["stall"];
    const error = await rejection(client({ timeoutMs: 50, retries: 0 }).episodes.get("e1"));
    assert.ok(error instanceof APITimeoutError);
  });
});

describe("headers", () => {
  test("credentials, session and user agent; views replace them", async () => {
    script = [OK];
    const ww = client({ apiKey: "k", adminKey: "a", token: "t", sessionId: "s1", headers: { "X-Extra": "1" } });
    await ww.episodes.get("e/1");
    const [first] = seen;
    assert.equal(first.url, "/api/v1/episodes/e%2F1");
    assert.equal(first.headers["x-api-key"], "k");
    assert.equal(first.headers["x-admin-key"], "a");
    assert.equal(first.headers["authorization"], "Bearer t");
    assert.equal(first.headers["x-session-id"], "s1");
    assert.equal(first.headers["x-extra"], "1");
    assert.match(first.headers["user-agent"], /^world-weaver-typescript\//);

    await ww.session("s2").withCredentials({ token: "t2" }).episodes.list({ limit: 2, include_archived: true });
    const second = seen[1];
    assert.equal(second.url, "/api/v1/episodes?limit=2&include_archived=true");
    assert.equal(second.headers["x-session-id"], "s2");
    assert.equal(second.headers["authorization"], "Bearer t2");
    assert.equal(second.headers["x-api-key"], undefined);
    assert.equal(second.headers["x-admin-key"], undefined);
    assert.equal(ww.sessionId, "s1");
  });

  test("list filters: dates as ISO 8601, metadata as JSON", async () => {
    script = [[200, {}, { items: [], next_cursor: null }]];
    const from = new Date("2026-01-02T03:04:05Z");
    await client().episodes.list({ time_from: from.toISOString(), metadata: JSON.stringify({ a: 1 }) });
    const query = new URL(seen[0].url, baseUrl).searchParams;
    assert.equal(query.get("time_from"), "2026-01-02T03:04:05.000Z");
    assert.deepEqual(JSON.parse(query.get("metadata")), { a: 1 });
  });
});

describe("the wait before a retry", async () => {
  // Internal: the rules the options above feed (not exported by the package).
  const { DEFAULT_RETRIES: rules, delay } = await import("../dist/esm/core.js");

  test("backoff doubles, with jitter, up to its ceiling", () => {
    for (let attempt = 0; attempt < rules.maxRetries; attempt++) {
      const ceiling = Math.min(rules.maxBackoffMs, rules.backoffMs * 2 ** attempt);
      for (let i = 0; i < 200; i++) {
        const wait = delay(rules, attempt, null);
        assert.ok(wait >= ceiling / 2 && wait <= ceiling, `attempt ${attempt}: ${wait} ms`);
      }
    }
    const long = { ...rules, maxRetries: 20 };
    assert.ok(delay(long, 15, null) <= long.maxBackoffMs);
  });

  test("the server's wait wins, up to maxRetryAfterMs; no retry past maxRetries", () => {
    assert.equal(delay(rules, 0, 1234), 1234);
    assert.equal(delay(rules, 0, rules.maxRetryAfterMs + 1), null);
    assert.equal(delay(rules, rules.maxRetries, 0), null);
  });
});
