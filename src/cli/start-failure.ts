// Why `serve` or `demo` could not start, said in a few lines with the exit code of README's table, instead of a
// stack: a config problem (exit 2, every problem), or the port taken (exit 1: the config is fine, the machine is not).
import { ConfigError } from "../config/config-error.ts";
import { EXIT_NOT_OK, EXIT_USAGE } from "./exit-codes.ts";

export interface StartFailure {
  readonly message: string;
  readonly exitCode: number;
}

/** undefined: not a failure this knows; the caller rethrows it. `startCommand` is how to start again (`npm start`). */
export function startFailure(
  error: unknown,
  server: { readonly port: number; readonly host: string } | undefined,
  startCommand: string,
): StartFailure | undefined {
  if (error instanceof ConfigError) return { message: configErrorText(error), exitCode: EXIT_USAGE };
  if (server !== undefined && (error as NodeJS.ErrnoException | null)?.code === "EADDRINUSE") {
    const { port, host } = server;
    return {
      message:
        `Port ${port} on ${host} is already in use (another gateway?). Stop it, or start on another port: ` +
        `PORT=${port === 65535 ? port - 1 : port + 1} ${startCommand} (or server.port in the config).\n`,
      exitCode: EXIT_NOT_OK,
    };
  }
  return undefined;
}

export function configErrorText(error: ConfigError): string {
  return `Config error (${error.issues.length} problem${error.issues.length === 1 ? "" : "s"}):\n${error.message}\n`;
}
