// The start-up snapshot's load-time guard (bin/snapshot-guard.js): a module that draws a UUID when it loads ends the
// snapshot build with a message naming the call and the module; npm start then gets a blob of Node alone and runs
// dist/ as before. (The real build, with the guard, is full: test/e2e/snapshot-start.test.ts.)
import assert from "node:assert/strict";
import { copyFileSync, cpSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { buildBundle, projectCopy } from "../helpers/bundle-project.ts";
import { REPO_ROOT } from "../helpers/cli-process.ts";

test("a module calling randomUUID() at load ends the snapshot build, naming the call and the module", (t) => {
  const root = projectCopy(t, "project", ["data", "config", "node_modules", "package.json"]);
  cpSync(join(REPO_ROOT, "src"), join(root, "src"), { recursive: true });
  copyFileSync(
    join(REPO_ROOT, "test", "fixtures", "snapshot-guard", "load-time-uuid.ts"),
    join(root, "src", "load-time-uuid.ts"),
  );
  const serve = join(root, "src", "cli", "serve.ts");
  writeFileSync(serve, `import "../load-time-uuid.ts";\n${readFileSync(serve, "utf8")}`);

  const build = buildBundle(root);
  assert.match(build.stderr, /no start-up snapshot: load-time calls while the start-up snapshot was built/);
  // The call's place in the sources (not the minified script's), and the module that imported it.
  assert.match(
    build.stderr,
    /^crypto\.randomUUID\(\)\n\s+at src\/load-time-uuid\.ts:5:\d+\n\s+at src\/cli\/serve\.ts:1:1$/m,
  );
  const record = JSON.parse(readFileSync(join(root, "dist", "snapshot.json"), "utf8")) as { kind?: string };
  assert.equal(record.kind, "node-only");
});
