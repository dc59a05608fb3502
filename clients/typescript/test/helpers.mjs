// What the tests share: the server `npm test` started (scripts/test.mjs) and a client on it.
import { WorldWeaver } from "world-weaver";

function required(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run the tests with \`npm test\`, which starts the server`);
  return value;
}

export const url = required("WW_TEST_URL");
export const apiKey = required("WW_TEST_API_KEY");
export const adminKey = required("WW_TEST_ADMIN_KEY");

/** A client in a session of its own, so the test files do not see each other's memories. */
export function client(session, options = {}) {
  return new WorldWeaver({ baseUrl: url, apiKey, sessionId: `${session}-${process.pid}`, ...options });
}

/** The error a promise rejects with (fails when it resolves). */
export async function rejection(promise) {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error("expected a rejection, the call succeeded");
}
