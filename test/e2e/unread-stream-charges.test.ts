// A stream whose client stopped reading, then left (pipeline/segment-charge.ts isAbandoned, SegmentEnd.isLeftUnread):
// while the gateway waited for the client to read, it did not read its upstream, and what the provider generated
// meanwhile (billed) piled up unread in the connection. Charged its prompt plus what the gateway had read (the rule
// for a segment the gateway hung up on), its budget counted a fraction of what the provider did; it keeps its
// reservation as its floor, `max_tokens` included, the most its provider could have generated.
import assert from "node:assert/strict";
import { request } from "node:http";
import { test } from "node:test";
import { stringify } from "yaml";
import { countTextTokens, estimateChatPrompt } from "../../src/limits/token-estimate.ts";
import type { RequestRecord } from "../../src/observability/request-record.ts";
import { statsOf, useGateway, useMock } from "../helpers/e2e.ts";
import { type DeploymentView, windowOf } from "../helpers/limits-scene.ts";
import { chatStream } from "../helpers/mock-upstream.ts";
import { waitUntil } from "../helpers/sse-client.ts";

const MESSAGES = [{ role: "user" as const, content: "Count, one word each." }];
/** More than the sockets between the provider, the gateway and the client hold, all sent at once. */
const WORDS = Array.from({ length: 40_000 }, (_, index) => ` word${index}`);
const MAX_TOKENS = 300_000;

test("a client that stopped reading, then left: its first segment keeps its reservation as its floor", async (t) => {
  const mock = await useMock(t);
  mock.enqueue("POST /v1/chat/completions", { kind: "sse", events: chatStream(WORDS, "m"), end: "hang" });
  const provider = { name: "alpha", base_url: mock.baseUrl, api_key: "sk-alpha", retries: 0 };
  const model = { m: { id: "m", limits: { tpm: 10_000_000 } } };
  const gateway = await useGateway(t, stringify({ providers: [{ ...provider, models: model }] }));
  const records: RequestRecord[] = [];
  gateway.runtime.onRecord((record) => records.push(record));
  const body = JSON.stringify({ model: "m", messages: MESSAGES, stream: true, max_tokens: MAX_TOKENS });
  await new Promise<void>((resolve, reject) => {
    const asked = request(`${gateway.baseUrl}/chat/completions`, { method: "POST" }, (response) => {
      // The client reads the first bytes, then nothing more, and leaves a while later.
      response.once("data", () => {
        response.pause();
        setTimeout(() => {
          asked.destroy();
          resolve();
        }, 800);
      });
    });
    asked.on("error", (error) => {
      if (!asked.destroyed) reject(error);
    });
    asked.setHeader("content-type", "application/json");
    asked.end(body);
  });
  await waitUntil(() => records.length === 1, "the request's record");
  assert.equal(records[0]?.attempts[0]?.outcome, "client_aborted");
  const row = (await statsOf(gateway)).get("alpha/m") as unknown as DeploymentView;
  const used = windowOf(row, "deployment:alpha/m", "tokens", "minute").used;
  const generated = estimateChatPrompt(MESSAGES, undefined).promptTokens + countTextTokens(WORDS.join(""));
  // Before: the prompt plus what the gateway had read (about half of what the provider sent).
  assert.ok(used >= generated, `charged ${used}, the provider generated ${generated}`);
});
