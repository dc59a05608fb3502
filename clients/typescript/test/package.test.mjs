// The built package as its users load it: `import` (ESM) and `require` (CommonJS) give the
// same exports, and the client reports the package's version.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { test } from "node:test";

import * as esm from "world-weaver";

const require = createRequire(import.meta.url);
const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8"));

test("import and require give the same exports", () => {
  const cjs = require("world-weaver");
  assert.deepEqual(Object.keys(cjs).sort(), Object.keys(esm).sort());
  assert.equal(typeof cjs.WorldWeaver, "function");
  assert.ok(new cjs.NotFoundError("x", { status: 404, code: "not_found", requestId: null }) instanceof cjs.WorldWeaverError);
});

test("the version is package.json's", () => {
  assert.equal(esm.VERSION, pkg.version);
});
