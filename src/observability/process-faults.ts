// Faults of the process itself rather than of a request: promise rejections nobody handled (logged by the CLI's
// last-resort handler, which keeps the gateway serving), counted per process for `/metrics` so that they can be
// alerted on (each one is a bug); and exceptions nobody caught, which end the process as Node's default does, but
// printed and logged redacted: their message may quote an upstream's answer, and that may quote the key.
import { inspect } from "node:util";
import { redactKeyShaped } from "../errors/redact.ts";

let unhandledRejections = 0;

export function countUnhandledRejection(): void {
  unhandledRejections += 1;
}

/** Unhandled promise rejections since the process started. */
export function unhandledRejectionCount(): number {
  return unhandledRejections;
}

/** How a fault is redacted and where it is logged, as far as the process knows yet. */
export interface FaultReporting {
  /** Until the config is loaded only what is shaped like a key is known; then its secrets, then the runtime's. */
  readonly redact: (text: string) => string;
  /** The gateway's logger once it exists (its own hook redacts the line again). */
  readonly log?: (error: Error, message: string) => void;
}

let reporting: FaultReporting = { redact: redactKeyShaped };

/** From now on, faults are redacted with `next.redact` and logged with `next.log`. */
export function reportProcessFaultsWith(next: FaultReporting): void {
  reporting = next;
}

/** `text` redacted as faults are now (the CLI's last-resort print of a command's error). */
export function redactFault(text: string): string {
  return reporting.redact(text);
}

/** Node's exit code after printing an uncaught exception. */
const UNCAUGHT_EXIT_CODE = 1;

/**
 * What Node prints for an uncaught exception (its stack, its cause and own properties, as `util.inspect` gives them,
 * then Node's version), redacted. Node's own print cannot be redacted: a listener replaces it.
 */
export function uncaughtExceptionText(error: unknown, origin: string, redact: (text: string) => string): string {
  const shown = inspect(error, { depth: 4 });
  const what =
    error instanceof Error ? shown : `Uncaught${origin === "unhandledRejection" ? " (in promise)" : ""} ${shown}`;
  return `${redact(what)}\n\nNode.js ${process.version}\n`;
}

/**
 * The listener for `uncaughtException` (also a rejection nobody handled before the gateway's own listener exists, which
 * Node turns into one): logs the fault (fatal), prints it on stderr as Node would, both redacted, and exits with
 * Node's code. The process ends as before: what the exception left half-changed cannot be trusted to go on serving.
 */
export function handleUncaughtException(
  error: unknown,
  origin: string,
  sinks: { readonly write: (text: string) => void; readonly exit: (code: number) => void },
): void {
  const { redact, log } = reporting;
  try {
    const message = error instanceof Error ? `${error.name}: ${error.message}` : inspect(error);
    log?.(
      error instanceof Error ? error : new Error(message),
      redact(`uncaught exception (a bug; the gateway exits): ${message}`),
    );
  } catch {
    // The logger itself failed: the print below still says what happened.
  }
  try {
    sinks.write(uncaughtExceptionText(error, origin, redact));
  } finally {
    sinks.exit(UNCAUGHT_EXIT_CODE);
  }
}
