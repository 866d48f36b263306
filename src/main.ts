// Composition root: runs the command of the process's argv (src/cli/run-cli.ts). No logic of its own.
import { runCli } from "./cli/run-cli.ts";
import { holdV8DuringStartup } from "./cli/start-up-holds.ts";

// V8 as bin/llm-gateway.js holds it through start-up, for a start from the sources (`node src/main.ts`), before
// runCli loads a command's modules; after bin/llm-gateway.js (which applied them already) it sets the same again.
holdV8DuringStartup();
runCli(process.argv.slice(2));
