// The client against a real World Weaver server (started by `npm test`).
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import {
  AuthenticationError,
  NotFoundError,
  ValidationError,
  WorldWeaver,
  APIStatusError,
  WorldWeaverError,
} from "world-weaver";

import { adminKey, apiKey, client, rejection, url } from "./helpers.mjs";

describe("episodes", () => {
  const ww = client("episodes");

  test("store, get, update, recall and delete", async () => {
    const stored = await ww.episodes.create({ content: "The deploy failed: the disk was full", speaker: "ops" });
    await ww.episodes.create({ content: "Lunch was a sandwich" });
    assert.equal((await ww.episodes.get(stored.id)).content, stored.content);

    const found = await ww.episodes.recall("why did the deploy fail?", { limit: 1 });
    assert.equal(found.hits[0].episode.id, stored.id);

    const changed = await ww.episodes.update(stored.id, { outcome: "failure", importance: 0.9 });
    assert.equal(changed.outcome, "failure");
    assert.equal((await ww.episodes.get(stored.id)).importance, 0.9);
    assert.equal((await ww.episodes.markImportant(stored.id)).importance, 1);

    await ww.episodes.delete(stored.id);
    const gone = await rejection(ww.episodes.get(stored.id));
    assert.ok(gone instanceof NotFoundError);
  });

  test("one idempotency key stores once", async () => {
    const key = `same-${Date.now()}`;
    const first = await ww.episodes.create({ content: "stored once, asked twice" }, { idempotencyKey: key });
    const again = await ww.episodes.create({ content: "stored once, asked twice" }, { idempotencyKey: key });
    assert.equal(again.id, first.id);
  });
});

describe("pages", () => {
  const ww = client("pages");

  test("list is one page, listAll follows every cursor", async () => {
    const batch = await ww.episodes.createBatch(
      Array.from({ length: 5 }, (_, i) => ({ content: `note ${i}`, speaker: "bot" })),
    );
    assert.equal(batch.count, 5);
    await ww.episodes.create({ content: "not the bot's", speaker: "human" });

    const page = await ww.episodes.list({ limit: 2, speaker: "bot" });
    assert.equal(page.items.length, 2);
    assert.ok(page.next_cursor);
    const next = await ww.episodes.list({ limit: 2, speaker: "bot", cursor: page.next_cursor });
    assert.equal(new Set([...page.items, ...next.items].map((e) => e.id)).size, 4);

    const all = [];
    for await (const episode of ww.episodes.listAll({ limit: 2, speaker: "bot" })) all.push(episode);
    assert.deepEqual(all.map((e) => e.content).sort(), ["note 0", "note 1", "note 2", "note 3", "note 4"]);
  });
});

describe("entities and relations", () => {
  const ww = client("entities");

  test("create, relate, recall, supersede", async () => {
    const paris = await ww.entities.create({ name: "Paris", entity_type: "LOCATION", summary: "capital of France" });
    const france = await ww.entities.create({ name: "France", entity_type: "LOCATION" });
    const relation = await ww.entities.relate(paris.id, france.id, { relation_type: "PART_OF" });
    assert.equal(relation.target_id, france.id);
    const relations = await ww.entities.relations(paris.id);
    assert.deepEqual(relations.items.map((r) => r.id), [relation.id]);

    const found = await ww.entities.recall("the capital of France", { limit: 1 });
    assert.equal(found.hits[0].entity.id, paris.id);

    const next = await ww.entities.supersede(paris.id, { summary: "capital and largest city of France" });
    assert.notEqual(next.id, paris.id);
    const history = await ww.entities.history(next.id);
    assert.ok(history.versions.length >= 2);

    await ww.entities.unrelate(paris.id, relation.id);
    assert.equal((await ww.entities.relations(paris.id)).items.length, 0);

    const listed = [];
    for await (const entity of ww.entities.listAll({ entity_type: "LOCATION", limit: 1 })) listed.push(entity.name);
    assert.deepEqual(listed.sort(), ["France", "Paris"]);
  });
});

describe("skills", () => {
  const ww = client("skills");

  test("create, how-to, execute, executions", async () => {
    const skill = await ww.skills.create({
      name: "restart-web",
      task: "restart the crashed web service",
      steps: [{ order: 1, action: "systemctl restart web" }],
    });
    const advice = await ww.skills.howTo("the web service is down");
    assert.equal(advice.skill.id, skill.id);
    const run = await ww.skills.execute(skill.id, { success: true, duration_ms: 800 });
    assert.equal(run.execution.success, true);
    const runs = await ww.skills.executions(skill.id);
    assert.equal(runs.items.length, 1);
    const found = await ww.skills.recall("web service crashed", { limit: 1 });
    assert.equal(found.hits[0].skill.id, skill.id);
  });
});

describe("unified recall, feedback, consolidate, health", () => {
  const ww = client("unified");

  test("recall every kind, then reward it", async () => {
    const stored = await ww.episodes.create({ content: "the deploy failed because the disk was full" });
    const found = await ww.recall("what happened to the deploy?");
    assert.ok(found.hits.some((hit) => hit.id === stored.id));
    const feedback = await ww.feedback(found.recall_id, { reward: 1.0 });
    assert.equal(feedback.recall_id, found.recall_id);
    const report = await ww.consolidate({ dry_run: true });
    assert.equal(report.dry_run, true);
  });

  test("health answers without a key", async () => {
    const health = await new WorldWeaver({ baseUrl: url }).health();
    assert.equal(health.status, "ok");
  });
});

describe("sessions", () => {
  test("a session view sees only its own memories", async () => {
    const ww = client("scoped");
    const project = ww.session(`project-${process.pid}`);
    assert.equal(project.sessionId, `project-${process.pid}`);
    const note = await project.episodes.create({ content: "project x starts on Monday" });
    const mine = [];
    for await (const episode of ww.episodes.listAll()) mine.push(episode.id);
    assert.ok(!mine.includes(note.id));
    assert.equal((await project.episodes.get(note.id)).id, note.id);
    assert.ok((await rejection(ww.episodes.get(note.id))) instanceof NotFoundError);

    const admin = project.withCredentials({ adminKey });
    assert.equal((await admin.sessions.stats(project.sessionId)).episodes, 1);
    const sessions = [];
    for await (const s of admin.sessions.listAll({ limit: 1 })) sessions.push(s.session_id);
    assert.ok(sessions.includes(project.sessionId));
    const exported = await admin.admin.export({ sessionId: project.sessionId });
    assert.equal((await admin.sessions.delete(project.sessionId)).deleted_episodes, 1);
    await admin.admin.import(exported);
    assert.equal((await admin.sessions.stats(project.sessionId)).episodes, 1);
  });
});

describe("errors", () => {
  const ww = client("errors");

  test("404 carries the code and the request id", async () => {
    const error = await rejection(ww.episodes.get("00000000-0000-4000-8000-000000000000"));
    assert.ok(error instanceof NotFoundError && error instanceof APIStatusError && error instanceof WorldWeaverError);
    assert.equal(error.status, 404);
    assert.equal(error.code, "not_found");
    assert.match(error.requestId, /\S/);
    assert.equal(error.name, "NotFoundError");
  });

  test("422 says where the body is wrong", async () => {
    const error = await rejection(ww.episodes.create({ content: "" }));
    assert.ok(error instanceof ValidationError);
    assert.equal(error.code, "validation_error");
    assert.match(error.message, /^content:/);
  });

  test("401 with a wrong key, and the key is in no message", async () => {
    const wrong = new WorldWeaver({ baseUrl: url, apiKey: "not-the-key-0123456789abcdef" });
    const error = await rejection(wrong.episodes.list());
    assert.ok(error instanceof AuthenticationError);
    assert.equal(error.status, 401);
    assert.ok(!error.message.includes("not-the-key") && !error.message.includes(apiKey));
  });

  test("an admin route refuses the user key", async () => {
    const error = await rejection(ww.sessions.list());
    assert.ok(error instanceof APIStatusError);
    assert.ok([401, 403].includes(error.status));
  });
});
