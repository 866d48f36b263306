// `npm run demo`: the real gateway in front of two local fake providers. "swift" is preferred but answers 429
// to every 3rd request, so repeated requests show failover to "steady" and back.
import { loadEnv } from "../config/env.ts";
import { buildConfig } from "../config/load.ts";
import { startFakeProvider } from "./demo-providers.ts";
import { releaseOptimizingCompilersOnFirstRequest } from "./optimizing-compilers.ts";
import { handleShutdownSignals, logUnhandledRejections, startGateway } from "./start-gateway.ts";
import { terminalLogger } from "./terminal-logger.ts";
import { capYoungGeneration } from "./young-generation.ts";

export async function demo(): Promise<number> {
  const env = loadEnv(process.cwd());
  const swift = await startFakeProvider("swift", { rateLimitEvery: 3, wordDelayMs: 40 });
  const steady = await startFakeProvider("steady", { rateLimitEvery: 0, wordDelayMs: 60 });
  const { config } = buildConfig(
    {
      server: { port: env.PORT === undefined ? 12345 : Number(env.PORT), host: env.HOST ?? "127.0.0.1" },
      providers: [
        {
          name: "swift",
          base_url: swift.baseUrl,
          api_key: "demo-key-swift",
          cost: "free",
          models: {
            "demo-large": { priority: 10, context: 32768, params_b: 70 },
            "demo-small": { priority: 2, context: 8192 },
          },
        },
        {
          name: "steady",
          base_url: steady.baseUrl,
          api_key: "demo-key-steady",
          cost: "free",
          models: {
            "demo-large": { priority: 5, context: 32768, params_b: 70 },
            "demo-small": { priority: 1, context: 8192 },
          },
        },
      ],
      meta_models: { best: ["demo-large", "demo-small"] },
    },
    "<demo>",
    { env: {} },
  );
  const gateway = await startGateway(config, { logger: terminalLogger(config), env });
  const base = `${gateway.url}/v1`;
  process.stdout.write(`
LLM Gateway demo: two fake providers ("swift" answers 429 to every 3rd request; "steady" always answers).

  curl -s ${base}/chat/completions -H 'content-type: application/json' \\
    -d '{"model":"best","messages":[{"role":"user","content":"Hi"}]}' -D - 

  curl -N ${base}/chat/completions -H 'content-type: application/json' \\
    -d '{"model":"best","stream":true,"messages":[{"role":"user","content":"Stream please"}]}'

  curl -s ${base}/models ; curl -s ${gateway.url}/stats ; curl -s ${gateway.url}/health

Live dashboard: ${gateway.url}/dashboard   Metrics: ${gateway.url}/metrics

Watch the x-gateway-provider header switch from swift to steady on a 429. Ctrl-C stops.
`);
  handleShutdownSignals(
    {
      ...gateway,
      close: async () => {
        await gateway.close();
        await swift.close();
        await steady.close();
      },
    },
    config.server.shutdownTimeoutMs,
    (code) => process.exit(code),
  );
  logUnhandledRejections(gateway);
  capYoungGeneration();
  releaseOptimizingCompilersOnFirstRequest(gateway.app.server);
  return 0;
}
