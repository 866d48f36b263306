// The records tests' gateway: one provider (a mock), the request log on, an unnamed key (reads every record) and a
// named one (`team-a`), plus whatever server lines or config sections a test adds.
import type { TestContext } from "node:test";
import { useGateway, useMock } from "./e2e.ts";
import type { TestGateway } from "./gateway.ts";

export async function recordingGateway(
  t: TestContext,
  keys: { readonly unnamed: string; readonly team: string },
  options: { readonly server?: string; readonly extra?: string } = {},
): Promise<TestGateway> {
  const mock = await useMock(t);
  return useGateway(
    t,
    `server:
  port: 0
  host: 127.0.0.1
${options.server ?? ""}  api_keys:
    - ${keys.unnamed}
    - { key: ${keys.team}, name: team-a }
providers:
  - name: alpha
    base_url: ${mock.baseUrl}
    api_key: sk-alpha
    models:
      m: { id: m }
request_log:
  enabled: true
${options.extra ?? ""}`,
  );
}
