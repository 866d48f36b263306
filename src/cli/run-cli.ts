// Command dispatch: refuses words and options a command does not read (here, so that `serve` starts without loading
// another module), then runs the command. src/main.ts runs it on the process's argv; the start-up snapshot's main
// (src/cli/snapshot-entry.ts) runs the same, from a heap in which `serve` and `demo` are already loaded.
import { parseArgs } from "node:util";
import { EXIT_USAGE } from "./exit-codes.ts";
import { exitOnUncaughtExceptions, lastResortText } from "./uncaught-exceptions.ts";
import type { CommandUsage } from "./usage-error.ts";
import { VERSION } from "./version.ts";

const USAGE = `Usage: llm-gateway [command] [options]

Commands:
  serve                 start the gateway (default)
  demo                  start the gateway with two built-in fake providers (no keys needed)
  check                 validate the config and .env without starting: problems with file:line,
                        enabled providers, missing keys
  providers             probe each configured key with GET /models: ok / invalid key / unreachable /
                        rate-limited, with timing
  models                the merged model catalog: public name, provider, context, quality, score
  route MODEL           the candidates a request for MODEL gets now, best first; --explain adds every
                        score term and why candidates are skipped

Options:
  --config PATH         config file (default: $LLM_GATEWAY_CONFIG or config/meta-providers.yaml)
  --json                machine-readable output (check, providers, models, route)
  --explain             with route: show score terms
  --parameters LIST     with route: body keys the request would carry, an array's with its number of
                        entries (seed,stop:6): a candidate that refused one is ranked last
  --tools, --vision, --json-schema
                        with route: the request carries tools, images or a json_schema response_format:
                        a candidate configured without it is skipped, one that refused it ranked last
  -v, --version         print the version
  -h, --help            show this help

Exit codes: 0 ok; 1 something does not work (a provider probe failed, no route); 2 config or usage error.
Colour is used only on a terminal and never when NO_COLOR is set.
`;

async function main(argv: string[]): Promise<number> {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (error) {
    const { usageErrorMessage } = await import("./usage-error.ts");
    process.stderr.write(`${usageErrorMessage(error, KNOWN_OPTIONS)}\n\n${USAGE}`);
    return EXIT_USAGE;
  }
  const { values } = parsed;
  // `npm start` runs `serve` already, and other tools' docs say `npm start -- serve`: a repeated `serve` is the
  // command itself, not a stray word (only that repeat: `serve serve x` still refuses "x").
  const positionals =
    parsed.positionals[0] === "serve" && parsed.positionals[1] === "serve"
      ? parsed.positionals.slice(1)
      : parsed.positionals;
  if (values.help === true) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (values.version === true) {
    process.stdout.write(`llm-gateway ${VERSION}\n`);
    return 0;
  }
  const command = positionals[0] ?? "serve";
  // The demo serves its own two fake providers; a config given to it was silently ignored.
  if (command === "demo" && values.config !== undefined) {
    process.stderr.write(
      `demo reads no config: it serves two built-in fake providers. To start with ${values.config}: npm start -- --config ${values.config}\n`,
    );
    return EXIT_USAGE;
  }
  if (!Object.hasOwn(COMMAND_USAGE, command)) {
    // Answered here, before the commands' modules load (~420 of them, once loaded only to reach this message).
    const { unknownCommandMessage } = await import("./usage-error.ts");
    process.stderr.write(`${unknownCommandMessage(command, COMMANDS)}\n\n${USAGE}`);
    return EXIT_USAGE;
  }
  const usage = COMMAND_USAGE[command as Command];
  // A word or option the command does not read was once ignored: `check foo` passed as a check of foo.
  const stray = positionals[1 + usage.arguments.length];
  const unused = Object.keys(values).filter(
    (name) => !GLOBAL_OPTIONS.includes(name) && !(usage.options as readonly string[]).includes(name),
  );
  if (stray !== undefined || unused.length > 0) {
    const { strayWordMessage, unusedOptionMessage } = await import("./usage-error.ts");
    const message =
      stray !== undefined
        ? strayWordMessage(stray, command as Command, COMMAND_USAGE)
        : unusedOptionMessage(unused[0] ?? "", command as Command, COMMAND_USAGE);
    process.stderr.write(`${message}\n\n${USAGE}`);
    return EXIT_USAGE;
  }
  // Each command's modules are loaded when it runs: `serve` starts without the other commands' code.
  if (command === "serve" || command === "demo") {
    const code =
      command === "serve"
        ? await (await import("./serve.ts")).serve({ configPath: values.config })
        : await (await import("./demo.ts")).demo();
    // A start that failed ends now, its message written: with Redis, the stores opened alongside the one that failed
    // are closed once they open (open-books.ts), and one waiting up to 5 s for a Redis not ready held the exit.
    if (code !== 0) process.stderr.write("", () => process.exit(code));
    return code;
  }
  const [{ check, models, providers, route, setConfigLoader }, { loadGatewayConfig }, { terminalOutput }] =
    await Promise.all([import("./commands.ts"), import("./gateway-config.ts"), import("./output.ts")]);
  // Every command loads its config the way `serve` does (presets, the no-config mode).
  setConfigLoader((_path, env) => loadGatewayConfig({ explicitPath: values.config, env, cwd: process.cwd() }).loaded);
  const options = { configPath: values.config, isJson: values.json === true, output: terminalOutput() };
  switch (command as Exclude<Command, "serve" | "demo">) {
    case "check":
      return check(options);
    case "providers":
      return providers(options);
    case "models":
      return models(options);
    case "route":
      return route({
        ...options,
        model: positionals[1],
        isExplain: values.explain === true,
        parameters: values.parameters,
        needs: { tools: values.tools, vision: values.vision, json_schema: values["json-schema"] },
      });
  }
}

const OPTIONS = {
  config: { type: "string" },
  json: { type: "boolean" },
  explain: { type: "boolean" },
  parameters: { type: "string" },
  tools: { type: "boolean" },
  vision: { type: "boolean" },
  "json-schema": { type: "boolean" },
  help: { type: "boolean", short: "h" },
  version: { type: "boolean", short: "v" },
} as const;
const KNOWN_OPTIONS = Object.keys(OPTIONS).map((name) => `--${name}`);
/** Options every command takes (each prints and exits). */
const GLOBAL_OPTIONS: readonly string[] = ["help", "version"];
/**
 * What each command reads besides the global options: its options (names of OPTIONS) and its positional arguments
 * (as the usage writes them).
 */
const COMMAND_USAGE = {
  serve: { options: ["config"], arguments: [] },
  demo: { options: [], arguments: [] },
  check: { options: ["config", "json"], arguments: [] },
  providers: { options: ["config", "json"], arguments: [] },
  models: { options: ["config", "json"], arguments: [] },
  route: {
    options: ["config", "json", "explain", "parameters", "tools", "vision", "json-schema"],
    arguments: ["MODEL"],
  },
} as const satisfies Record<string, CommandUsage>;
type Command = keyof typeof COMMAND_USAGE;
const COMMANDS = Object.keys(COMMAND_USAGE);

function parse(argv: string[]) {
  return parseArgs({ args: argv, allowPositionals: true, options: OPTIONS });
}

/**
 * Runs the command argv names, with the process's last-resort handlers: an uncaught exception is printed redacted
 * (Node's own print would show a key its message quotes), a failed command sets the exit code.
 */
export function runCli(argv: string[]): void {
  exitOnUncaughtExceptions();
  main(argv).then(
    (code) => {
      // serve/demo keep running (their servers hold the event loop); other commands end here.
      if (code !== 0) process.exitCode = code;
    },
    (error: unknown) => {
      process.stderr.write(lastResortText(error));
      process.exit(1);
    },
  );
}
