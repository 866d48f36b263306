// Composition root and command dispatch. No logic of its own.
import { parseArgs } from "node:util";
import { demo } from "./cli/demo.ts";
import { EXIT_CONFIG_ERROR, serve } from "./cli/serve.ts";

const USAGE = `Usage: llm-gateway [command] [options]

Commands:
  serve            start the gateway (default)
  demo             start the gateway with two built-in fake providers (no keys needed)

Options:
  --config PATH    config file (default: $LLM_GATEWAY_CONFIG or config/meta-providers.yaml)
  -h, --help       show this help
`;

async function main(argv: string[]): Promise<number> {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (error) {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n\n${USAGE}`);
    return EXIT_CONFIG_ERROR;
  }
  const { values, positionals } = parsed;
  if (values.help === true) {
    process.stdout.write(USAGE);
    return 0;
  }
  const command = positionals[0] ?? "serve";
  switch (command) {
    case "serve":
      return serve({ configPath: values.config });
    case "demo":
      return demo();
    default:
      process.stderr.write(`Unknown command "${command}".\n\n${USAGE}`);
      return EXIT_CONFIG_ERROR;
  }
}

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    allowPositionals: true,
    options: { config: { type: "string" }, help: { type: "boolean", short: "h" } },
  });
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code !== 0) process.exit(code);
  },
  (error: unknown) => {
    process.stderr.write(`llm-gateway: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
