// An attempt never sent stays uncharged (errors/outcomes.ts hasProviderCountedPrompt): the client left while its
// connection was still being opened. undici still hands such a request to the connection once it opens, and aborts it
// there before writing a byte; a streamed call (upstream-request.ts SentTap) reported that moment as the send, so the
// attempt was marked sent and charged its prompt (a JSON call's handler checked the signal first: buffered-call.ts).
import assert from "node:assert/strict";
import { connect } from "node:net";
import { test } from "node:test";
import { Agent } from "undici";
import { stringify } from "yaml";
import type { RequestRecord } from "../../src/observability/request-record.ts";
import { openAiClient, statsOf, useGateway, useMock } from "../helpers/e2e.ts";
import { type DeploymentView, windowOf } from "../helpers/limits-scene.ts";
import { chatCompletion, chatStream } from "../helpers/mock-upstream.ts";
import { waitUntil } from "../helpers/sse-client.ts";

for (const stream of [true, false]) {
  test(`the client left while the connection opened: nothing was sent, nothing is charged (stream: ${stream})`, async (t) => {
    const mock = await useMock(t);
    mock.enqueue(
      "POST /v1/chat/completions",
      stream
        ? { kind: "sse", events: chatStream(["Rhine"], "m") }
        : { kind: "json", body: chatCompletion("Rhine", "m") },
    );
    let asked = 0;
    let open = (): void => {};
    const opened = new Promise<void>((resolve) => {
      open = resolve;
    });
    // A connection that opens only when the test says (a TLS handshake to a distant provider, say).
    const dispatcher = new Agent({
      connect: (options, callback) => {
        asked++;
        void opened.then(() => {
          const socket = connect({ host: options.hostname, port: Number(options.port) });
          socket.once("connect", () => callback(null, socket));
          socket.once("error", (error) => callback(error, null));
        });
      },
    });
    t.after(() => dispatcher.close());
    const config = {
      providers: [
        {
          name: "alpha",
          base_url: mock.baseUrl,
          api_key: "sk-alpha",
          retries: 0,
          models: { m: { id: "m", limits: { tpm: 1_000_000 } } },
        },
      ],
    };
    const gateway = await useGateway(t, stringify(config), { dispatcher });
    const records: RequestRecord[] = [];
    gateway.runtime.onRecord((record) => records.push(record));
    const client = openAiClient(gateway);
    const controller = new AbortController();
    const answer = (async () => {
      const request = { model: "m", messages: [{ role: "user" as const, content: "Rivers?" }], max_tokens: 500 };
      if (!stream) return await client.chat.completions.create(request, { signal: controller.signal });
      const chunks = await client.chat.completions.create({ ...request, stream: true }, { signal: controller.signal });
      for await (const _ of chunks);
    })();
    await waitUntil(() => asked === 1, "the gateway to open a connection");
    controller.abort();
    await assert.rejects(answer);
    // The gateway has seen the client leave before the connection opens.
    await new Promise((resolve) => setTimeout(resolve, 200));
    open();
    await waitUntil(() => records.length === 1, "the request's record");
    assert.equal(records[0]?.attempts[0]?.outcome, "client_aborted");
    assert.equal(mock.requests.length, 0, "nothing reached the provider");
    const row = (await statsOf(gateway)).get("alpha/m") as unknown as DeploymentView;
    // Before: the streamed call was charged its prompt, as if the provider had taken it in.
    assert.equal(windowOf(row, "deployment:alpha/m", "tokens", "minute").used, 0);
  });
}
