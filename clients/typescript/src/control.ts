// `client.control`: the operator's control plane (/api/v1/control, the admin role): runtime
// flags, the audit of their changes, the emergency level and the circuit breakers. The
// control routes take no Idempotency-Key, so panic, recover and a flag change are not
// retried after a 503 or a lost connection (a repeat would be audited twice); a circuit
// reset, which leaves the same state however often it is sent, is.
import type { Runner } from "./resources.js";
import type * as T from "./types.js";

const CONTROL = "/api/v1/control";
const seg = encodeURIComponent;

/** Things known by name at `path`: `list()` them all, `get(name)` one. */
abstract class Named<List, Item> {
  protected abstract readonly path: string;

  constructor(protected readonly runner: Runner) {}

  list(): Promise<List> {
    return this.runner.run({ method: "GET", path: this.path });
  }

  get(name: string): Promise<Item> {
    return this.runner.run({ method: "GET", path: `${this.path}/${seg(name)}` });
  }
}

/** `client.control.flags`: every flag, its value now and where that value comes from. */
export class Flags extends Named<T.FlagList, T.FlagReport> {
  protected readonly path = `${CONTROL}/flags`;

  /** Set a flag for every worker and across restarts (it wins over WW_FLAG_<NAME>); the
   * answer has the value it had before. */
  set(name: string, enabled: boolean): Promise<T.FlagChange> {
    return this.runner.run({ method: "PATCH", path: `${this.path}/${seg(name)}`, json: { enabled } });
  }
}

/** `client.control.audit`: changes of flags and of the emergency level, newest first, each
 * with who made it (the key id or JWT subject, never a key). */
export class Audit {
  constructor(private readonly runner: Runner) {}

  /** One page; `cursor` is a page's `next_cursor` (older entries). */
  list(query?: T.AuditQuery): Promise<T.AuditPage> {
    return this.runner.run({ method: "GET", path: `${CONTROL}/audit`, query: { ...query } });
  }

  /** Every entry of every page, one request per page. */
  listAll(query?: Omit<T.AuditQuery, "cursor">): AsyncGenerator<T.AuditEntry, void, undefined> {
    const first = { method: "GET", path: `${CONTROL}/audit`, query: { ...query } } as const;
    return this.runner.walk(first, (page: T.AuditPage) => page.items);
  }
}

/** `client.control.emergency`: LIMITED makes the server read-only (a write rejects with
 * `UnavailableError`, code `emergency_limited`); LOCKDOWN leaves only health, the docs and
 * the control plane answering. */
export class Emergency {
  constructor(private readonly runner: Runner) {}

  get(): Promise<T.EmergencyReport> {
    return this.runner.run({ method: "GET", path: `${CONTROL}/emergency` });
  }

  /** Raise the level; `reason` is shown in the health report. */
  panic(level: T.PanicBody["level"], reason: string): Promise<T.EmergencyChange> {
    return this.setLevel("panic", { level, reason });
  }

  /** Lower the level (to NONE, or from LOCKDOWN to LIMITED); raising it is a 409. */
  recover(level: NonNullable<T.RecoverBody["level"]> = "NONE", reason?: string): Promise<T.EmergencyChange> {
    return this.setLevel("recover", { level, reason });
  }

  private setLevel(action: string, json: T.PanicBody | T.RecoverBody): Promise<T.EmergencyChange> {
    return this.runner.run({ method: "POST", path: `${CONTROL}/emergency/${action}`, json });
  }
}

/** `client.control.circuits`: the breakers of the worker that answers (with
 * WW_API_WORKERS > 1 each worker has its own; `worker_pid` says whose). */
export class Circuits extends Named<T.CircuitList, T.CircuitReport> {
  protected readonly path = `${CONTROL}/circuits`;

  /** Close the circuit now: its next call goes to the dependency. */
  reset(name: string): Promise<T.CircuitReport> {
    const path = `${this.path}/${seg(name)}`;
    return this.runner.run({ method: "POST", path, json: { action: "reset" }, upsert: true });
  }
}

/** `client.control`: `flags`, `audit`, `emergency` and `circuits`; admin credentials
 * (`adminKey`, an admin API key or an admin JWT). */
export class Control {
  readonly flags: Flags;
  readonly audit: Audit;
  readonly emergency: Emergency;
  readonly circuits: Circuits;

  constructor(runner: Runner) {
    this.flags = new Flags(runner);
    this.audit = new Audit(runner);
    this.emergency = new Emergency(runner);
    this.circuits = new Circuits(runner);
  }
}
