// Composition root: runs the command of the process's argv (src/cli/run-cli.ts). No logic of its own.
import { runCli } from "./cli/run-cli.ts";

runCli(process.argv.slice(2));
