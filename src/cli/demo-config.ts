// `npm run demo`'s config: the models of its two fake providers (demo-providers.ts), at the URLs they listen on.
// Apart from demo.ts so that bin/warm-caches.js builds its scoring memo entries without the server
// (warm-scoring-data.ts): the demo's first start then reads no scoring data.
import type { Env } from "../config/env.ts";
import { buildConfig } from "../config/load.ts";
import type { GatewayConfig } from "../config/types.ts";

export const DEMO_PORT = 12345;
export const DEMO_HOST = "127.0.0.1";

export function demoConfig(swiftUrl: string, steadyUrl: string, env: Env): GatewayConfig {
  return buildConfig(
    {
      server: { port: DEMO_PORT, host: DEMO_HOST },
      providers: [
        {
          name: "swift",
          base_url: swiftUrl,
          api_key: "demo-key-swift",
          cost: "free",
          models: {
            "demo-large": { priority: 10, context: 32768, params_b: 70 },
            "demo-small": { priority: 2, context: 8192 },
            "demo-whisper": { kind: "transcription" },
            "demo-tts": { kind: "speech" },
            "demo-image": { kind: "image" },
            "demo-rerank": { kind: "rerank" },
            // A native /moderations model here, a Llama Guard chat model on steady: the door translates its verdict.
            "demo-moderation": { kind: "moderation" },
          },
        },
        {
          name: "steady",
          base_url: steadyUrl,
          api_key: "demo-key-steady",
          cost: "free",
          models: {
            "demo-large": { priority: 5, context: 32768, params_b: 70 },
            "demo-small": { priority: 1, context: 8192 },
            "demo-whisper": { kind: "transcription" },
            "demo-tts": { kind: "speech" },
            "demo-image": { kind: "image" },
            "demo-rerank": { kind: "rerank" },
            "demo-moderation": { id: "demo-llama-guard-3", kind: "moderation" },
          },
        },
      ],
      meta_models: { best: ["demo-large", "demo-small"] },
      // In memory: the demo's made-up requests, budgets and cooldowns must not land in data/state.db (and the
      // request log next to it), which a later `serve` in the same folder reads and shows.
      state: { path: ":memory:" },
    },
    "<demo>",
    // Only $PORT and $HOST from the environment, checked like any config's (a bad $PORT names itself).
    { env: { PORT: env.PORT, HOST: env.HOST } },
  ).config;
}
