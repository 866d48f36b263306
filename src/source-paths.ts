// Where the files the gateway reads at run time live, from one module one folder below the project root. The
// same holds for the bundle `bin/build.js` writes (dist/*.js, also one folder below the root), whose chunks all
// share one `import.meta.url`: a path relative to the file that needs it (`./dashboard.html` next to
// src/server/) would point into dist/ there, so every such path is built from the project root here.
import { join } from "node:path";
import { fileURLToPath } from "node:url";

/** The project root: one level above src/ (sources) or dist/ (the bundle). */
export const PROJECT_ROOT = fileURLToPath(new URL("..", import.meta.url));

/** A file of the sources, by its path under src/ (`server/dashboard.html`). */
export function sourcePath(pathUnderSrc: string): string {
  return join(PROJECT_ROOT, "src", pathUnderSrc);
}

/** Whether this process runs the bundle (dist/*.js) rather than the TypeScript sources; start-up logs say which. */
export const RUNS_FROM_BUNDLE = !import.meta.url.endsWith(".ts");

/** Whether it runs from the start-up snapshot (dist/snapshot.blob, whose script is dist/snapshot.cjs: bin/build-snapshot.js). */
export const RUNS_FROM_SNAPSHOT = import.meta.url.endsWith(".cjs");
