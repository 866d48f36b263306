// A batch line whose upstream answers "overloaded" without `retry-after` (a 529 `overloaded_error`, Anthropic's; an
// in-band overload in a 200; OpenRouter's relayed capacity 429) is the overload the live door answers 503
// `upstream_overloaded` for: the line waits the candidate's capacity cooldown off its slot and is tried again, as a
// rate-limited line is, never written as a generic 5xx line (502 `upstream_unavailable`) or counted failed.
// Pins behaviour checked on 2026-12-07 (it held already): an HTTP 503 or 500 without retry-after stays a blip on both
// doors, whatever its words (docs/streaming.md), so it is not among these.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { openRouter } from "../fixtures/provider-fixtures.ts";
import {
  chatLine,
  createBatch,
  linesOf,
  providersYaml,
  sentContents,
  UPSTREAM_ID,
  upload,
  waitForCompleted,
} from "../helpers/batches-scene.ts";
import { CHAT_ROUTE, HELLO, openAiClient, postChat, useGateway, useMock } from "../helpers/e2e.ts";
import { chatCompletion, type MockStep } from "../helpers/mock-upstream.ts";

const OVERLOADS: readonly (readonly [string, MockStep])[] = [
  [
    "529 overloaded_error",
    { kind: "json", status: 529, body: { type: "error", error: { type: "overloaded_error", message: "Overloaded" } } },
  ],
  [
    "a 200 with an in-band overloaded_error",
    { kind: "json", status: 200, body: { type: "error", error: { type: "overloaded_error", message: "Overloaded" } } },
  ],
  [
    "OpenRouter's relayed capacity 429",
    { kind: "text", status: 429, body: openRouter.upstreamRateLimited429.bodyText },
  ],
];

describe("a batch line answered overloaded without retry-after", () => {
  for (const [name, overloaded] of OVERLOADS) {
    test(`${name}: the live door's 503 upstream_overloaded; the line waits the cooldown and is served`, async (t) => {
      const mock = await useMock(t);
      // The live request's answer, then the line's first try; the line's second try is served.
      mock.enqueue(CHAT_ROUTE, overloaded, overloaded, {
        kind: "json",
        body: chatCompletion("echo: line", UPSTREAM_ID),
      });
      const gateway = await useGateway(t, providersYaml(mock));
      const live = await postChat(gateway, { model: "m", messages: HELLO });
      assert.equal(live.status, 503, live.text);
      assert.equal((live.json as { error: { code: string } }).error.code, "upstream_overloaded");
      const client = openAiClient(gateway);
      const batch = await createBatch(client, (await upload(client, chatLine("a", "line"))).id);
      const done = await waitForCompleted(client, batch.id, 1, 20_000);
      assert.deepEqual(await linesOf(client, done.error_file_id), [], "no error line for an overload");
      const [answered] = await linesOf(client, done.output_file_id);
      assert.equal((answered?.response as { status_code?: number } | undefined)?.status_code, 200);
      assert.deepEqual(sentContents(mock), ["Say hello", "line", "line"], "tried again after the cooldown");
    });
  }
});
