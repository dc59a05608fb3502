// `npm run build`: dist/esm (import) and dist/cjs (require), each with its declarations,
// by tsc twice. dist/cjs gets a package.json of its own so Node reads its .js as CommonJS
// inside this "type": "module" package.
import { execFileSync } from "node:child_process";
import { rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const PACKAGE = fileURLToPath(new URL("..", import.meta.url));

const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");
rmSync(join(PACKAGE, "dist"), { recursive: true, force: true });
for (const project of ["tsconfig.json", "tsconfig.cjs.json"]) {
  execFileSync(process.execPath, [tsc, "-p", join(PACKAGE, project)], { stdio: "inherit" });
}
writeFileSync(join(PACKAGE, "dist", "cjs", "package.json"), '{ "type": "commonjs" }\n');
