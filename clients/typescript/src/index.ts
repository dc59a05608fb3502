export { WorldWeaver, DEFAULT_URL, DEFAULT_TIMEOUT_MS } from "./client.js";
export type { ClientOptions, Credentials } from "./client.js";
export { DEFAULT_RETRIES } from "./core.js";
export type { RetryOptions } from "./core.js";
export type { Episodes, Entities, Skills, Sessions, Admin, WriteOptions } from "./resources.js";
export type { Control, Flags, Audit, Emergency, Circuits } from "./control.js";
export * from "./errors.js";
export type * from "./types.js";
export { VERSION } from "./version.js";
