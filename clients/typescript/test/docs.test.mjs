// Every ```ts block of the TypeScript docs runs, in order, against the server `npm test`
// started, after type-checking against the built package: a doc that no longer compiles
// or no longer works fails here. The blocks of one page share one module, as a reader's
// program would; `url`, `apiKey` and `adminKey` are the test server's.
import assert from "node:assert/strict";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath, pathToFileURL } from "node:url";

import ts from "typescript";

import { adminKey, apiKey, url } from "./helpers.mjs";

const PACKAGE = fileURLToPath(new URL("..", import.meta.url));
const REPO = join(PACKAGE, "..", "..");
// Inside the package, so that `import ... from "world-weaver"` resolves to it (self-reference).
const WORK = join(PACKAGE, "test", ".docs");
const BLOCK = /^```ts\n(.*?)^```/gms;
const GIVEN = "declare const url: string;\ndeclare const apiKey: string;\ndeclare const adminKey: string;\n";

const DOCS = [join(REPO, "docs", "typescript.md"), join(PACKAGE, "README.md")];

function check(file) {
  const program = ts.createProgram([file], {
    strict: true,
    noEmit: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    lib: ["lib.es2022.d.ts", "lib.dom.d.ts"],
    types: [],
  });
  return ts.getPreEmitDiagnostics(program).map((d) => ts.flattenDiagnosticMessageText(d.messageText, "\n"));
}

for (const doc of DOCS) {
  const name = doc.slice(REPO.length + 1);
  test(`the examples of ${name} compile and run`, async () => {
    const blocks = [...readFileSync(doc, "utf8").matchAll(BLOCK)].map((m) => m[1]);
    assert.ok(blocks.length > 0, `${name} has no ts examples`);
    const source = blocks.join("\n");
    mkdirSync(WORK, { recursive: true });
    const base = join(WORK, name.replaceAll("/", "_").replace(/\.md$/, ""));
    writeFileSync(`${base}.ts`, `${GIVEN}${source}\nexport {};\n`);
    assert.deepEqual(check(`${base}.ts`), [], `${name}: its examples do not compile`);

    const js = ts.transpileModule(source + "\nexport {};\n", {
      compilerOptions: { module: ts.ModuleKind.ES2022, target: ts.ScriptTarget.ES2022 },
    }).outputText;
    writeFileSync(`${base}.mjs`, js);
    Object.assign(globalThis, { url, apiKey, adminKey });
    await import(pathToFileURL(`${base}.mjs`).href);
  });
}
