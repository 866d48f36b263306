// The entry of the experiment's start-up snapshot (bench/startup-snapshot.js, bench/README.md section 36): evaluated
// once by `node --build-snapshot`, so the heap it leaves (every module `serve` loads, evaluated) is what a process
// started with `--snapshot-blob` begins with. Nothing here may touch the environment before the deserialized main
// runs: the config, .env, files, sockets, timers, the clock all belong to `serve`, which runs only then.
// Serves `serve [--config PATH]` only: `npm start`'s path, enough to measure (the other commands stay in src/main.ts).
import { startupSnapshot } from "node:v8";
import { serve } from "../src/cli/serve.ts";
import { holdV8DuringStartup } from "../src/cli/start-up-holds.ts";
import { exitOnUncaughtExceptions, lastResortText } from "../src/cli/uncaught-exceptions.ts";

startupSnapshot.setDeserializeMainFunction(() => {
  // As bin/llm-gateway.js, first (V8 flags are not part of the snapshot): the new space and the compilers held.
  holdV8DuringStartup();
  exitOnUncaughtExceptions();
  // argv as bin/llm-gateway.js gets it: the script path (given, not run) then `serve --config PATH`.
  const at = process.argv.indexOf("--config");
  serve({ configPath: at < 0 ? undefined : process.argv[at + 1] }).then(
    (code) => {
      if (code !== 0) process.stderr.write("", () => process.exit(code));
    },
    (error: unknown) => {
      process.stderr.write(lastResortText(error));
      process.exit(1);
    },
  );
});
