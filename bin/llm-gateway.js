#!/usr/bin/env node
// The package's command. The sources are TypeScript run by Node 24's type stripping; `npx llm-gateway` puts
// the project's own Node 24 (the `node` dependency) first on PATH, so `node` here is that one.
const [major] = process.versions.node.split(".").map(Number);
if (major < 24) {
  process.stderr.write(
    `llm-gateway needs Node.js 24 or newer (this is ${process.version}). Run it through npm (npx llm-gateway, npm start), which uses the project's pinned Node 24.\n`,
  );
  process.exit(2);
}
await import("../src/main.ts");
