// `client.control` against the real server `npm test` started, with the admin key. A panic
// holds the whole server read-only, so scripts/test.mjs runs this file after the others,
// alone (EXCLUSIVE there).
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { ConflictError, NotFoundError, PermissionDeniedError, UnavailableError } from "world-weaver";

import { adminKey, client, rejection } from "./helpers.mjs";

// WW_ADMIN_KEY's key id: the audit records it, never the key.
const ADMIN_ID = "WW_ADMIN_KEY";

describe("control", () => {
  const user = client("control");
  const ww = user.withCredentials({ adminKey });

  test("a flag set is read back and audited with the admin's key id", async () => {
    const before = await ww.control.flags.get("telemetry");
    const change = await ww.control.flags.set("telemetry", !before.enabled);
    assert.equal(change.previous, before.enabled);
    assert.deepEqual([change.flag.enabled, change.flag.source], [!before.enabled, "runtime"]);
    assert.equal((await ww.control.flags.get("telemetry")).enabled, !before.enabled);
    const listed = (await ww.control.flags.list()).flags.find((f) => f.name === "telemetry");
    assert.equal(listed?.enabled, !before.enabled);

    const [last] = (await ww.control.audit.list({ limit: 1 })).items;
    assert.deepEqual([last.kind, last.name, last.who], ["flag", "telemetry", ADMIN_ID]);
    assert.deepEqual([last.old, last.new], [String(before.enabled), String(!before.enabled)]);
    await ww.control.flags.set("telemetry", before.enabled);

    const walked = [];
    for await (const entry of ww.control.audit.listAll({ limit: 1 })) walked.push(entry);
    const paged = (await ww.control.audit.list({ limit: 500 })).items;
    assert.deepEqual(walked.map((e) => e.id), paged.map((e) => e.id));
    assert.deepEqual(walked.slice(0, 2).map((e) => e.new), [String(before.enabled), String(!before.enabled)]);
  });

  test("panic LIMITED rejects writes with emergency_limited until recover", async () => {
    const change = await ww.control.emergency.panic("LIMITED", "restoring a backup");
    assert.deepEqual([change.previous, change.emergency.level, change.emergency.set_by], ["NONE", "LIMITED", ADMIN_ID]);
    try {
      // The default retries: an operator's refusal is not retried, so one request is sent.
      let sent = 0;
      const counting = (...args) => {
        sent += 1;
        return fetch(...args);
      };
      const once = client("control", { fetch: counting });
      const refused = await rejection(once.episodes.create({ content: "a write while read-only" }));
      assert.ok(refused instanceof UnavailableError);
      assert.deepEqual([refused.status, refused.code, refused.retryAfterMs], [503, "emergency_limited", 30_000]);
      assert.equal(sent, 1);
      assert.ok(Array.isArray((await user.episodes.list()).items)); // reads still answer
    } finally {
      const back = await ww.control.emergency.recover();
      assert.deepEqual([back.previous, back.emergency.level], ["LIMITED", "NONE"]);
    }
    assert.ok(
      (await rejection(ww.control.emergency.recover("LIMITED"))) instanceof ConflictError,
      "recover only lowers the level",
    );
    const stored = await user.episodes.create({ content: "writes are back" });
    assert.equal(stored.content, "writes are back");
  });

  test("circuits list, get and reset", async () => {
    const names = (await ww.control.circuits.list()).circuits.map((c) => c.name);
    assert.deepEqual(names, ["database", "vectors", "embedder", "redis"]);
    assert.equal((await ww.control.circuits.get("vectors")).state, "closed");
    const reset = await ww.control.circuits.reset("database");
    assert.deepEqual([reset.name, reset.state, reset.failures], ["database", "closed", 0]);
    assert.ok((await rejection(ww.control.circuits.get("nope"))) instanceof NotFoundError);
  });

  test("a user key may not use the control plane", async () => {
    assert.ok((await rejection(user.control.flags.set("telemetry", true))) instanceof PermissionDeniedError);
    assert.ok((await rejection(user.control.emergency.panic("LOCKDOWN", "not mine"))) instanceof PermissionDeniedError);
  });
});
