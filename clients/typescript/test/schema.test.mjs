// src/schema.ts is what `npm run gen` makes of the live server's OpenAPI schema: a route or
// model changed without regenerating fails here.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import { SCHEMA_FILE, generate } from "../scripts/openapi.mjs";

test("the committed types are the live schema's", async () => {
  const fresh = await generate();
  const committed = readFileSync(SCHEMA_FILE, "utf8");
  assert.ok(
    fresh === committed,
    "src/schema.ts differs from the server's OpenAPI schema: run `npm run gen` in clients/typescript and commit it",
  );
});
