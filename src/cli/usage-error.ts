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

/** What a command reads: its options (without `--`) and its positional arguments, as the usage names them. */
export interface CommandUsage {
  readonly options: readonly string[];
  readonly arguments: readonly string[];
}

function invocation(command: string, usage: CommandUsage): string {
  return [command, ...usage.arguments].join(" ");
}

/**
 * A word after everything `command` reads (`check foo`, `route best extra`): another command run as an argument,
 * an option written without its dashes (`check json`), or a typo of either.
 */
export function strayWordMessage(
  word: string,
  command: string,
  usages: Readonly<Record<string, CommandUsage>>,
): string {
  const usage = usages[command] ?? { options: [], arguments: [] };
  const takes =
    usage.arguments.length === 0
      ? `\`${command}\` takes no arguments`
      : `\`${invocation(command, usage)}\` takes ${usage.arguments.length} argument${usage.arguments.length === 1 ? "" : "s"}`;
  const start = `Unexpected "${word}" after \`${invocation(command, usage)}\`: ${takes}`;
  if (Object.hasOwn(usages, word)) return `${start}; one command at a time: \`llm-gateway ${word}\`.`;
  const options = usage.options.map((name) => `--${name}`);
  return `${start}${didYouMean(word, [...Object.keys(usages), ...options]) || "."}`;
}

/** An option `command` does not read (`check --explain`): the close one it does read, or the commands that read it. */
export function unusedOptionMessage(
  option: string,
  command: string,
  usages: Readonly<Record<string, CommandUsage>>,
): string {
  const usage = usages[command] ?? { options: [], arguments: [] };
  const own = usage.options.map((name) => `--${name}`);
  const start = `Option "--${option}" is not one of \`${command}\`'s (${own.length === 0 ? "it takes none" : own.join(", ")})`;
  const close = didYouMean(`--${option}`, own);
  if (close !== "") return `${start}${close}`;
  const readers = Object.entries(usages)
    .filter(([, other]) => other.options.includes(option))
    .map(([name, other]) => `\`${invocation(name, other)}\``);
  return readers.length === 0 ? `${start}.` : `${start}; it goes with ${readers.join(", ")}.`;
}
