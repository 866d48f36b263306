// Two speech providers for the relayed-speech tests: `first` (no retries, silent for 400 ms = stalled) fails over to
// `second`; both answer the public name `tts-1`; the request log on, so each test can read its record.
import { useGateway, useMock } from "./e2e.ts";

export async function speechFailoverScene(t: Parameters<typeof useMock>[0]) {
  const first = await useMock(t);
  const second = await useMock(t);
  const gateway = await useGateway(
    t,
    `providers:
  - name: first
    base_url: ${first.baseUrl}
    api_key: sk-first-key
    retries: 0
    stream_idle_timeout_ms: 400
    models:
      tts-1: { id: tts-first }
  - name: second
    base_url: ${second.baseUrl}
    api_key: sk-second-key
    models:
      tts-1: { id: tts-second }
request_log:
  enabled: true
`,
  );
  return { first, second, gateway };
}
