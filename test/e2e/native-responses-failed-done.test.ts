// A native Responses stream that fails in band (`response.failed`) and then sends `[DONE]`, as servers that end every
// stream with it do: the failure is the upstream's (recorded `stream_error_event` with its message), as without the
// `[DONE]`, not a `bad_response` "ended before response.completed" (responses-stream-check.ts). Client: the openai SDK.
import assert from "node:assert/strict";
import { test } from "node:test";
import { send } from "../helpers/e2e.ts";
import { messageEvents, RESPONSES_ROUTE, sseText, streamStart } from "../helpers/native-responses-stream.ts";
import { MODEL, startTwoProviders } from "../helpers/two-providers.ts";

const FAILED = {
  type: "response.failed",
  response: { id: "resp_x", status: "failed", output: [], error: { code: "server_error", message: "boom" } },
};

for (const done of ["", "data: [DONE]\n\n"]) {
  test(`a response.failed after the first delta${done === "" ? "" : " and then [DONE]"}: the upstream's error`, async (t) => {
    const native = { responses_api: "native" } as const;
    const { primary, gateway, client } = await startTwoProviders(t, { primary: native, backup: native });
    // One chunk: the failure and the [DONE] are read with the first delta, before the client's first byte.
    const body = `${sseText([...streamStart(), ...messageEvents("msg_1", ["Hi"]).slice(0, 3), FAILED])}${done}`;
    primary.enqueue(RESPONSES_ROUTE, { kind: "sse", events: [{ raw: body }], end: "close-without-done" });
    const stream = await client.responses.create({ model: MODEL, input: "Hi", stream: true });
    await assert.rejects(async () => {
      for await (const _event of stream);
    }, /the upstream sent an error event: boom/);
    type Listed = { route?: string; attempts: { provider: string; outcome: string; reason?: string }[] };
    let record: Listed | undefined;
    // The record is published as the stream closes, which the client may see first.
    for (let tries = 0; tries < 100 && record === undefined; tries++) {
      const listed = await send(gateway, "GET", "/v1/gateway/requests?limit=5");
      record = (listed.json as { data: Listed[] }).data.find((listed) => listed.route === undefined);
      if (record === undefined) await new Promise((resolve) => setImmediate(resolve));
    }
    assert.deepEqual(
      record?.attempts.map((attempt) => [attempt.provider, attempt.outcome, attempt.reason]),
      [["alpha", "stream_error_event", "the upstream sent an error event: boom"]],
    );
  });
}
