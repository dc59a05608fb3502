// `npm test`: start a real World Weaver server from this checkout on a free loopback port,
// run `node --test test/` against it (WW_TEST_URL, WW_TEST_API_KEY, WW_TEST_ADMIN_KEY),
// stop the server, and exit with the tests' status.
import { spawn } from "node:child_process";
import { mkdtempSync, openSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { PACKAGE, python, serverEnv } from "./openapi.mjs";

const HOST = "127.0.0.1";
const API_KEY = "ts-sdk-test-user-key-0123456789";
const ADMIN_KEY = "ts-sdk-test-admin-key-0123456789";
const START_TIMEOUT_MS = 120_000;
// Files that change the whole server (a panic makes it read-only): run after the others,
// one at a time, so no other test meets the state they set.
const EXCLUSIVE = ["control.test.mjs", "docs.test.mjs"];

function freePort() {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, HOST, () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

async function waitHealthy(url, server) {
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (server.exitCode !== null) throw new Error(`the server exited (${server.exitCode}) before it was healthy`);
    try {
      const response = await fetch(`${url}/api/v1/health`);
      if (response.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((done) => setTimeout(done, 200));
  }
  throw new Error(`the server at ${url} was not healthy within ${START_TIMEOUT_MS / 1000} s`);
}

function stop(server) {
  return new Promise((done) => {
    if (server.exitCode !== null || server.signalCode !== null) return done();
    server.once("exit", done);
    server.kill("SIGTERM");
    setTimeout(() => server.kill("SIGKILL"), 15_000).unref();
  });
}

/** `node --test` on `files` against the server at `url`; its exit status. */
function runTests(url, files, options) {
  const args = ["--test", ...options, ...process.argv.slice(2), ...files.map((f) => join("test", f))];
  const tests = spawn(process.execPath, args, {
    cwd: PACKAGE,
    stdio: "inherit",
    env: { ...process.env, WW_TEST_URL: url, WW_TEST_API_KEY: API_KEY, WW_TEST_ADMIN_KEY: ADMIN_KEY },
  });
  return new Promise((done) => tests.once("exit", (code) => done(code ?? 1)));
}

const dataDir = mkdtempSync(join(tmpdir(), "ww-ts-sdk-"));
const log = join(dataDir, "server.log");
const port = await freePort();
const url = `http://${HOST}:${port}`;
const out = openSync(log, "a");
const server = spawn(python(), ["-m", "ww.api.server"], {
  env: serverEnv(join(dataDir, "data"), {
    WW_API_HOST: HOST,
    WW_API_PORT: String(port),
    WW_API_KEY: API_KEY,
    WW_ADMIN_KEY: ADMIN_KEY,
  }),
  stdio: ["ignore", out, out],
});
process.once("SIGINT", () => stop(server).then(() => process.exit(130)));

let status = 1;
try {
  await waitHealthy(url, server);
  // The test files by name: Node 20 would also run test/helpers.mjs given the folder.
  const files = readdirSync(join(PACKAGE, "test")).filter((name) => name.endsWith(".test.mjs"));
  const shared = files.filter((name) => !EXCLUSIVE.includes(name));
  status = await runTests(url, shared, []);
  if (status === 0) status = await runTests(url, EXCLUSIVE, ["--test-concurrency=1"]);
} catch (error) {
  console.error(String(error));
} finally {
  await stop(server);
  if (status !== 0) {
    console.error(`--- server log (${log})\n${readFileSync(log, "utf8").slice(-8000)}`);
  }
  rmSync(dataDir, { recursive: true, force: true });
}
process.exit(status);
