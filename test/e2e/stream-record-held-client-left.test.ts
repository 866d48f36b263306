// A Responses or Messages stream's record waits for the door's keeping at its end (StreamAnswer.holdRecord,
// protocol-adapters.ts): a client that leaves mid-stream must still leave its record (499 `client_aborted`), the
// upstream hung up on, with the head sent with the answer or early (`server.stream_keepalive_ms`). A record held and
// never released would be lost to the request log, the metrics and a named client's budget.
import assert from "node:assert/strict";
import { test } from "node:test";
import { CHAT_ROUTE } from "../helpers/e2e.ts";
import { keepAliveScene, readFor, recordOf, STREAM_DOORS, UPSTREAM_MODEL } from "../helpers/keepalive-scene.ts";
import { chatStream } from "../helpers/mock-upstream.ts";
import { waitUntil } from "../helpers/sse-client.ts";

for (const door of STREAM_DOORS) {
  for (const isEarly of [false, true]) {
    test(`${door.path}: a client that leaves mid-stream leaves its record (${isEarly ? "early head" : "no keep-alives"})`, async (t) => {
      const { mock, gateway } = await keepAliveScene(t, isEarly ? {} : { keepAliveMs: 0 });
      mock.enqueue(CHAT_ROUTE, {
        kind: "sse",
        headersDelayMs: isEarly ? 500 : 0,
        events: chatStream(["a", " b", " c", " d", " e", " f", " g", " h"], UPSTREAM_MODEL, { delayMs: 150 }),
      });
      const read = await readFor(`${gateway.url}${door.path}`, door.body, isEarly ? 900 : 400);
      assert.equal(read.isEnded, false, "the client left before the stream's end");
      await waitUntil(() => mock.activeRequests() === 0, "the upstream stream hung up on");
      const record = await recordOf(gateway, door.endpoint);
      assert.equal(record.status, 499, JSON.stringify(record));
      assert.equal(record.outcome, "client_aborted");
    });
  }
}
