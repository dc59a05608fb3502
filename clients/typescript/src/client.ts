// `WorldWeaver`: every operation of the REST API over `fetch`.
import { Control } from "./control.js";
import { DEFAULT_RETRIES, type RetryOptions, type Transport } from "./core.js";
import { Admin, Entities, Episodes, Runner, Sessions, Skills, type WriteOptions, post } from "./resources.js";
import type * as T from "./types.js";
import { VERSION } from "./version.js";

export const DEFAULT_URL = "http://127.0.0.1:8765";
export const DEFAULT_TIMEOUT_MS = 30_000;

export interface Credentials {
  /** Sent as `X-API-Key`. */
  apiKey?: string;
  /** Sent as `X-Admin-Key` (operator routes: sessions, export, import, control). */
  adminKey?: string;
  /** A JWT, sent as `Authorization: Bearer <token>`. */
  token?: string;
}

export interface ClientOptions extends Credentials {
  /** The server; default http://127.0.0.1:8765. */
  baseUrl?: string;
  /** `X-Session-ID` of every call; without it the server's `WW_SESSION_ID`. */
  sessionId?: string;
  /** Per attempt, in milliseconds; default 30 000. */
  timeoutMs?: number;
  /** How many retries (default 2), or the full rules. */
  retries?: number | RetryOptions;
  /** More headers for every request. */
  headers?: Record<string, string>;
  /** A `fetch` in place of the global one (a proxy agent, a test double). */
  fetch?: typeof globalThis.fetch;
}

const CREDENTIALS = ["X-API-Key", "X-Admin-Key", "Authorization"];

function credentials({ apiKey, adminKey, token }: Credentials): Record<string, string> {
  const headers: Record<string, string> = {};
  if (apiKey) headers["X-API-Key"] = apiKey;
  if (adminKey) headers["X-Admin-Key"] = adminKey;
  if (token) headers["Authorization"] = `Bearer ${token}`;
  return headers;
}

export class WorldWeaver {
  readonly episodes: Episodes;
  readonly entities: Entities;
  readonly skills: Skills;
  readonly sessions: Sessions;
  readonly admin: Admin;
  readonly control: Control;
  private readonly runner: Runner;

  constructor(options: ClientOptions = {}) {
    const retries = typeof options.retries === "number" ? { maxRetries: options.retries } : options.retries;
    const transport: Transport = {
      baseUrl: options.baseUrl ?? DEFAULT_URL,
      fetch: options.fetch ?? globalThis.fetch.bind(globalThis),
      timeoutMs: options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
      retries: { ...DEFAULT_RETRIES, ...retries },
      headers: { "User-Agent": `world-weaver-typescript/${VERSION}`, ...options.headers },
    };
    // Credentials and the session travel per call, not as the transport's headers, so that
    // a view (session, withCredentials) can replace them.
    const perCall = credentials(options);
    if (options.sessionId) perCall["X-Session-ID"] = options.sessionId;
    this.runner = new Runner(transport, perCall);
    this.episodes = new Episodes(this.runner);
    this.entities = new Entities(this.runner);
    this.skills = new Skills(this.runner);
    this.sessions = new Sessions(this.runner);
    this.admin = new Admin(this.runner);
    this.control = new Control(this.runner);
  }

  private view(headers: Record<string, string>): WorldWeaver {
    const view: WorldWeaver = Object.create(WorldWeaver.prototype);
    const runner = new Runner(this.runner.transport, headers);
    Object.assign(view, {
      runner,
      episodes: new Episodes(runner),
      entities: new Entities(runner),
      skills: new Skills(runner),
      sessions: new Sessions(runner),
      admin: new Admin(runner),
      control: new Control(runner),
    });
    return view;
  }

  /** The session this client's calls act in (undefined: the server's `WW_SESSION_ID`). */
  get sessionId(): string | undefined {
    return this.runner.headers["X-Session-ID"];
  }

  /** This client acting in `sessionId`: same options, its own `X-Session-ID`. */
  session(sessionId: string): WorldWeaver {
    return this.view({ ...this.runner.headers, "X-Session-ID": sessionId });
  }

  /** This client with other credentials (in place of all of its own), in the same session. */
  withCredentials(given: Credentials): WorldWeaver {
    const kept = Object.fromEntries(Object.entries(this.runner.headers).filter(([name]) => !CREDENTIALS.includes(name)));
    return this.view({ ...kept, ...credentials(given) });
  }

  /** Episodes, entities and skills for one query, ranked together (`memory_types`,
   * `limits`, `preset`, `learn`, `filters`...). */
  recall(query: string, options?: Omit<T.UnifiedRecallRequest, "query"> & WriteOptions): Promise<T.UnifiedRecallResult> {
    const { idempotencyKey, ...fields } = options ?? {};
    return this.runner.run(post("/api/v1/recall", { query, ...fields }, { idempotencyKey }));
  }

  /** Reward what a recall (made with `learn`) returned: one `reward` for all, or `rewards`
   * per memory id. */
  feedback(recallId: string, options: Omit<T.FeedbackRequest, "recall_id"> & WriteOptions): Promise<T.FeedbackResponse> {
    const { idempotencyKey, ...fields } = options;
    return this.runner.run(post("/api/v1/feedback", { recall_id: recallId, ...fields }, { idempotencyKey }));
  }

  /** Consolidate the session (`dry_run`, `min_cluster_size`...). */
  consolidate(options?: T.ConsolidationOptions): Promise<T.ConsolidationReport> {
    return this.runner.run(post("/api/v1/consolidate", options ?? {}));
  }

  links(memoryId: string): Promise<T.LinkList> {
    return this.runner.run({ method: "GET", path: `/api/v1/consolidate/links/${encodeURIComponent(memoryId)}` });
  }

  /** The server's health; a failing component answers 503 with the same report, so this
   * returns it rather than throwing. */
  health(): Promise<T.HealthReport> {
    return this.runner.run({ method: "GET", path: "/api/v1/health", accept: [503] });
  }
}
