// What the command line says when it cannot be parsed. node:util parseArgs's own message for an unknown option
// is about positionals ("To specify a positional argument starting with a '-', place it ... after '--'"), which
// is no help to someone who misspelt `--explain` or looked for a `--port` flag.
import { didYouMean } from "../config/did-you-mean.ts";

/** Settings people look for as flags but that the gateway reads from the environment or the config. */
const SETTINGS_NOT_FLAGS: Readonly<Record<string, string>> = {
  port: "the port is set with PORT=12346 (environment or .env) or server.port in the config",
  host: "the listen address is set with HOST=0.0.0.0 (environment or .env) or server.host in the config",
};

/** `knownOptions` as written on the command line: `--explain`, `-h`. */
export function usageErrorMessage(error: unknown, knownOptions: readonly string[]): string {
  const message = error instanceof Error ? error.message : String(error);
  const code = (error as { code?: unknown } | null)?.code;
  if (code !== "ERR_PARSE_ARGS_UNKNOWN_OPTION") return message;
  const option = /^Unknown option '([^']+)'/.exec(message)?.[1];
  if (option === undefined) return message;
  const name = option.replace(/^-+/, "").split("=")[0] ?? "";
  const setting = Object.hasOwn(SETTINGS_NOT_FLAGS, name) ? SETTINGS_NOT_FLAGS[name] : undefined;
  if (setting !== undefined) return `Unknown option "${option}": ${setting}.`;
  // `-` does not count in the distance, so `--explian` is measured against `--explain` as `explian` to `explain`.
  return `Unknown option "${option}"${didYouMean(option, knownOptions) || "."}`;
}

/** An unknown command, with the known one it is close to. */
export function unknownCommandMessage(command: string, knownCommands: readonly string[]): string {
  return `Unknown command "${command}"${didYouMean(command, knownCommands) || "."}`;
}
