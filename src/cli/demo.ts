// `npm run demo`: the real gateway in front of two local fake providers. "swift" is preferred but answers 429
// to every 3rd request, so repeated requests show failover to "steady" and back.
import { type Env, loadEnv } from "../config/env.ts";
import type { GatewayConfig } from "../config/types.ts";
import { DEMO_HOST, DEMO_PORT, demoConfig } from "./demo-config.ts";
import { startFakeProvider } from "./demo-providers.ts";
import { releaseOptimizingCompilersOnFirstRequest } from "./optimizing-compilers.ts";
import { startFailure } from "./start-failure.ts";
import {
  handleShutdownSignals,
  logUnhandledRejections,
  type RunningGateway,
  reportFaultsThrough,
  startGateway,
} from "./start-gateway.ts";
import { terminalLogger } from "./terminal-logger.ts";
import { capYoungGeneration } from "./young-generation.ts";

export async function demo(): Promise<number> {
  const env = loadEnv(process.cwd());
  const swift = await startFakeProvider("swift", { rateLimitEvery: 3, wordDelayMs: 40 });
  const steady = await startFakeProvider("steady", { rateLimitEvery: 0, wordDelayMs: 60 });
  let gateway: RunningGateway;
  let config: GatewayConfig;
  try {
    config = demoConfig(swift.baseUrl, steady.baseUrl, env);
    gateway = await startGateway(config, { logger: terminalLogger(config), env });
  } catch (error) {
    // The fake providers hold the event loop: closed here, so that the process ends with the message.
    await swift.close();
    await steady.close();
    const failure = startFailure(error, demoServer(env), "npm run demo");
    if (failure === undefined) throw error;
    process.stderr.write(failure.message);
    return failure.exitCode;
  }
  const base = `${gateway.url}/v1`;
  process.stdout.write(`
LLM Gateway demo: two fake providers ("swift" answers 429 to every 3rd request; "steady" always answers).

  curl -s ${base}/chat/completions -H 'content-type: application/json' \\
    -d '{"model":"best","messages":[{"role":"user","content":"Hi"}]}' -D - 

  curl -N ${base}/chat/completions -H 'content-type: application/json' \\
    -d '{"model":"best","stream":true,"messages":[{"role":"user","content":"Stream please"}]}'

  curl -s ${base}/audio/transcriptions -F model=demo-whisper -F file=@README.md

  curl -s ${base}/audio/speech -H 'content-type: application/json' \\
    -d '{"model":"demo-tts","input":"Hello there","voice":"alloy"}' -o hello.wav

  curl -s ${base}/images/generations -H 'content-type: application/json' \\
    -d '{"model":"demo-image","prompt":"A lighthouse at dusk","response_format":"b64_json"}'

  curl -s ${base}/images/edits -F model=demo-image -F image=@README.md -F prompt='Add a lighthouse'

  curl -s ${base}/rerank -H 'content-type: application/json' \\
    -d '{"model":"demo-rerank","query":"fast cheap models","documents":["Cheap and fast models","Slow big models","Weather"]}'

  curl -s ${base}/moderations -H 'content-type: application/json' \\
    -d '{"input":["Have a nice day","I will hurt you"]}'

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
  reportFaultsThrough(gateway);
  logUnhandledRejections(gateway);
  capYoungGeneration();
  releaseOptimizingCompilersOnFirstRequest(gateway.app.server);
  return 0;
}

/** Where the demo listens: 127.0.0.1:12345 unless $PORT / $HOST say otherwise (checked by buildConfig). */
function demoServer(env: Env): { port: number; host: string } {
  const port = env.PORT === undefined || env.PORT === "" ? DEMO_PORT : Number(env.PORT);
  return { port, host: env.HOST === undefined || env.HOST === "" ? DEMO_HOST : env.HOST };
}
