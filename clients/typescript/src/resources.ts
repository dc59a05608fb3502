// The operations of the REST API, each described once as a `Call` (docs/api.md documents
// them; the types are generated from the server's OpenAPI schema).
import { type Call, type Page, type Transport, perform, walk } from "./core.js";
import type * as T from "./types.js";

const EPISODES = "/api/v1/episodes";
const ENTITIES = "/api/v1/entities";
const SKILLS = "/api/v1/skills";
const SESSIONS = "/api/v1/sessions";
const ADMIN = "/api/v1/admin";

/** Options of a POST that creates or records something. */
export interface WriteOptions {
  /** Sent as `Idempotency-Key`; a new one per call when not given. The server does a
   * call with a key once, so a retry after a lost answer does not store twice. */
  idempotencyKey?: string;
}

/** How a resource sends calls: the client's transport and the headers of its view. */
export class Runner {
  constructor(
    readonly transport: Transport,
    readonly headers: Record<string, string>,
  ) {}

  run<R>(call: Call): Promise<R> {
    return perform<R>(this.transport, call, this.headers);
  }

  walk<P extends Page, I>(first: Call, items: (page: P) => readonly I[]): AsyncGenerator<I, void, undefined> {
    return walk(this.transport, first, this.headers, items);
  }
}

/** A POST that creates or records something, with an `Idempotency-Key` (a new one per call
 * unless given): a retry after a lost answer is then done once, not twice. */
export function post(path: string, json: unknown, options?: WriteOptions): Call {
  return { method: "POST", path, json, headers: { "Idempotency-Key": options?.idempotencyKey ?? crypto.randomUUID() } };
}

const seg = encodeURIComponent;

/** What every kind of memory answers alike at `path`: create, get, update (the fields
 * given change), delete, recall, and its list one page or every page. */
abstract class Kind<K, Create, Update, RecallReq, RecallRes, ListQuery, List extends Page & { items: K[] }> {
  protected abstract readonly path: string;

  constructor(protected readonly runner: Runner) {}

  /** Store a memory. */
  create(body: Create, options?: WriteOptions): Promise<K> {
    return this.runner.run(post(this.path, body, options));
  }

  get(id: string): Promise<K> {
    return this.runner.run({ method: "GET", path: `${this.path}/${seg(id)}` });
  }

  /** Change the fields given; the others stay. */
  update(id: string, body: Update): Promise<K> {
    return this.runner.run({ method: "PATCH", path: `${this.path}/${seg(id)}`, json: body });
  }

  delete(id: string): Promise<void> {
    return this.runner.run({ method: "DELETE", path: `${this.path}/${seg(id)}`, answer: "none" });
  }

  /** The memories of this kind that best match `query`. */
  recall(query: string, options?: Omit<RecallReq, "query"> & WriteOptions): Promise<RecallRes> {
    const { idempotencyKey, ...fields } = options ?? {};
    return this.runner.run(post(`${this.path}/recall`, { query, ...fields }, { idempotencyKey }));
  }

  /** One page (`next_cursor` leads to the next); `listAll` walks every page. */
  list(query?: ListQuery): Promise<List> {
    return this.runner.run({ method: "GET", path: this.path, query: { ...query } });
  }

  /** Every item of every page, one request per page. */
  listAll(query?: Omit<ListQuery, "cursor">): AsyncGenerator<K, void, undefined> {
    return this.runner.walk({ method: "GET", path: this.path, query: { ...query } }, (page: List) => page.items);
  }
}

/** `client.episodes`: what happened. */
export class Episodes extends Kind<
  T.Episode,
  T.EpisodeCreate,
  T.EpisodeUpdate,
  T.RecallRequest,
  T.RecallResult,
  T.EpisodeListQuery,
  T.EpisodeList
> {
  protected readonly path = EPISODES;

  /** Store many episodes in one request. */
  createBatch(
    episodes: T.EpisodeCreate[],
    options?: WriteOptions & { onConflict?: T.OnConflict },
  ): Promise<T.BatchCreated> {
    const body = { episodes, on_conflict: options?.onConflict };
    return this.runner.run(post(`${EPISODES}/batch`, body, options));
  }

  markImportant(id: string, importance = 1.0): Promise<T.Episode> {
    return this.runner.run(post(`${EPISODES}/${seg(id)}/mark-important`, { importance }));
  }
}

/** `client.entities`: what the agent knows, with versions and relations. */
export class Entities extends Kind<
  T.Entity,
  T.EntityCreate,
  T.EntityUpdate,
  T.EntityRecallRequest,
  T.EntityRecallResult,
  T.EntityListQuery,
  T.EntityList
> {
  protected readonly path = ENTITIES;

  /** Spreading activation from `seedId` (`depth`, `threshold`, `decay`). */
  spread(seedId: string, options?: Omit<T.SpreadRequest, "seed_id">): Promise<T.SpreadResult> {
    return this.runner.run(post(`${ENTITIES}/spread-activation`, { seed_id: seedId, ...options }));
  }

  /** Close this version and return the new one (fields left out are copied). */
  supersede(id: string, body: T.EntitySupersede): Promise<T.Entity> {
    return this.runner.run(post(`${ENTITIES}/${seg(id)}/supersede`, body));
  }

  history(id: string): Promise<T.EntityHistory> {
    return this.runner.run({ method: "GET", path: `${ENTITIES}/${seg(id)}/history` });
  }

  /** A relation from `id` to `targetId` (`relation_type`, `weight`). */
  relate(id: string, targetId: string, fields?: Omit<T.RelationCreate, "target_id">): Promise<T.Relation> {
    return this.runner.run(post(`${ENTITIES}/${seg(id)}/relations`, { target_id: targetId, ...fields }));
  }

  relations(id: string): Promise<T.RelationList> {
    return this.runner.run({ method: "GET", path: `${ENTITIES}/${seg(id)}/relations` });
  }

  unrelate(id: string, relationId: string): Promise<void> {
    const path = `${ENTITIES}/${seg(id)}/relations/${seg(relationId)}`;
    return this.runner.run({ method: "DELETE", path, answer: "none" });
  }
}

/** `client.skills`: how to do things, and how well each way has worked. */
export class Skills extends Kind<
  T.Skill,
  T.SkillCreate,
  T.SkillUpdate,
  T.SkillRecallRequest,
  T.SkillRecallResult,
  T.SkillListQuery,
  T.SkillList
> {
  protected readonly path = SKILLS;

  /** The best live skill for `task` (`domain`, `learn`), with its steps. */
  howTo(task: string, options?: Omit<T.HowToRequest, "task">): Promise<T.HowTo> {
    return this.runner.run(post(`${SKILLS}/how-to`, { task, ...options }));
  }

  versions(id: string): Promise<T.SkillVersions> {
    return this.runner.run({ method: "GET", path: `${SKILLS}/${seg(id)}/versions` });
  }

  /** Record one run of the skill (`success`, `duration_ms`, `failed_step`, `error`). */
  execute(id: string, run: T.SkillExecutionCreate): Promise<T.SkillExecutionResult> {
    return this.runner.run(post(`${SKILLS}/${seg(id)}/execute`, run));
  }

  executions(id: string, options?: { limit?: number }): Promise<T.ExecutionList> {
    return this.runner.run({ method: "GET", path: `${SKILLS}/${seg(id)}/executions`, query: { ...options } });
  }

  /** Deprecate the skill; `replaced_by` names its successor. */
  deprecate(id: string, body?: T.SkillDeprecate): Promise<T.Skill> {
    return this.runner.run(post(`${SKILLS}/${seg(id)}/deprecate`, body ?? {}));
  }
}

/** `client.sessions`: the operator's view of sessions (admin credentials). */
export class Sessions {
  constructor(private readonly runner: Runner) {}

  list(query?: T.SessionListQuery): Promise<T.SessionList> {
    return this.runner.run({ method: "GET", path: SESSIONS, query: { ...query } });
  }

  listAll(query?: Omit<T.SessionListQuery, "cursor">): AsyncGenerator<T.SessionList["sessions"][number], void, undefined> {
    const first: Call = { method: "GET", path: SESSIONS, query: { ...query } };
    return this.runner.walk(first, (page: T.SessionList) => page.sessions);
  }

  stats(sessionId: string): Promise<T.SessionStats> {
    return this.runner.run({ method: "GET", path: `${SESSIONS}/${seg(sessionId)}` });
  }

  /** Delete everything the session holds; the answer counts what went. */
  delete(sessionId: string): Promise<T.SessionDeleted> {
    return this.runner.run({ method: "DELETE", path: `${SESSIONS}/${seg(sessionId)}` });
  }
}

/** `client.admin`: export and import (docs/export-format.md); admin credentials. */
export class Admin {
  constructor(private readonly runner: Runner) {}

  /** Every session (or one) as JSON Lines. */
  export(options?: { sessionId?: string; vectors?: boolean }): Promise<string> {
    const query = { session_id: options?.sessionId, vectors: options?.vectors };
    return this.runner.run({ method: "GET", path: `${ADMIN}/export`, query, answer: "text" });
  }

  /** Upsert an export by id: importing one file twice leaves the same state, so a retry
   * is safe. */
  import(data: string, options?: { reembed?: T.ReembedMode }): Promise<T.ImportReport> {
    return this.runner.run({
      method: "POST",
      path: `${ADMIN}/import`,
      query: { reembed: options?.reembed },
      text: { body: data, contentType: "application/x-ndjson" },
      upsert: true,
    });
  }
}
