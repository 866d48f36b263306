// Installed by main.ts before any command runs: Node's own print of an uncaught exception cannot be redacted, and
// its message may quote a key (process-faults.ts).
import { handleUncaughtException, redactFault } from "../observability/process-faults.ts";

/** Installs `handleUncaughtException` for this process, printing on stderr and exiting with `process.exit`. */
export function exitOnUncaughtExceptions(): void {
  process.on("uncaughtException", (error, origin) =>
    handleUncaughtException(error, origin, {
      write: (text) => process.stderr.write(text),
      exit: (code) => process.exit(code),
    }),
  );
}

/** A command's error, as main.ts prints it last: redacted as faults are now. */
export function lastResortText(error: unknown): string {
  return `llm-gateway: ${redactFault(error instanceof Error ? (error.stack ?? error.message) : String(error))}\n`;
}
