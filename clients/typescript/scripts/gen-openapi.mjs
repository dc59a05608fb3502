// `npm run gen`: regenerate src/schema.ts from the server's live OpenAPI schema.
import { writeFileSync } from "node:fs";
import { relative } from "node:path";

import { generate, SCHEMA_FILE } from "./openapi.mjs";

writeFileSync(SCHEMA_FILE, await generate());
console.log(`wrote ${relative(process.cwd(), SCHEMA_FILE)}`);
