// Kept Responses answers the store accepted and then lost, for real: the state file locked by another process while
// more answers wait for it in memory than its bounds hold (1,000). The oldest waiting answer is dropped after its
// request was answered and recorded as kept; until 2026-12-07 nothing marked it, so a later GET was the plain 404 of
// an id never kept and `previous_response_id` the generic "not found". Now it is remembered as not kept (the GET's
// 404 and the continuation's 400 say it could not be stored), counted in llm_gateway_answers_not_kept_total and
// logged when the drops begin.
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import {
  CHAT_ROUTE,
  logCollector,
  oneProviderYaml,
  openAiClient,
  send,
  useGateway,
  useMock,
  VENDOR_MODEL_ID,
} from "../helpers/e2e.ts";
import { chatCompletion } from "../helpers/mock-upstream.ts";
import { assertToldNotStored } from "../helpers/not-stored.ts";
import { parsePrometheusText, sumOf } from "../helpers/prometheus-text.ts";
import { lockInAnotherProcess } from "../helpers/sqlite-lock.ts";
import { waitUntil } from "../helpers/sse-client.ts";

/** The embedded store's MAX_WAITING_ROWS (embedded-kept-responses.ts): one more waiting drops the oldest. */
const MAX_WAITING_ROWS = 1_000;
/** Requests in flight at once while the file is locked (a 2-core machine, shared). */
const CONCURRENCY = 25;

describe("kept answers the state file's store lost after answering", () => {
  test("past the 1,000 answers waiting for a locked file: the oldest is marked not kept (GET 404, previous_response_id 400, metric, log)", async (t) => {
    const mock = await useMock(t);
    mock.setDefault(CHAT_ROUTE, { kind: "json", body: chatCompletion("Kept?", VENDOR_MODEL_ID) });
    const statePath = join(mkdtempSync(join(tmpdir(), "kept-lost-")), "state.db");
    const logs = logCollector();
    const gateway = await useGateway(t, `${oneProviderYaml(mock)}state:\n  path: ${JSON.stringify(statePath)}\n`, {
      logLevel: "info",
      logStream: logs.stream,
    });
    const client = openAiClient(gateway);
    await client.responses.create({ model: "m", input: "warm up" });
    const lock = await lockInAnotherProcess(t, statePath, 120_000);

    // The first answer to wait for the lock, then enough after it to push it out of memory.
    const first = await client.responses.create({ model: "m", input: "first" });
    assert.equal(first.output_text, "Kept?");
    assert.equal((await client.responses.retrieve(first.id)).id, first.id, "waiting in memory, found at once");
    const later: string[] = [];
    for (let sent = 0; sent < MAX_WAITING_ROWS; sent += CONCURRENCY) {
      const answers = await Promise.all(
        Array.from({ length: Math.min(CONCURRENCY, MAX_WAITING_ROWS - sent) }, (_, index) =>
          client.responses.create({ model: "m", input: `later ${sent + index}` }),
        ),
      );
      later.push(...answers.map((answer) => answer.id));
    }

    await assertToldNotStored(client.responses.retrieve(first.id), 404, "response_id");
    await assertToldNotStored(
      client.responses.create({ model: "m", previous_response_id: first.id, input: "and then?" }),
      400,
      "previous_response_id",
    );
    const metrics = parsePrometheusText((await send(gateway, "GET", "/metrics")).text);
    assert.equal(sumOf(metrics, "llm_gateway_answers_not_kept_total", { endpoint: "responses" }), 1);
    const said = logs.lines.filter((line) => line.includes("past the memory bounds"));
    assert.equal(said.length, 1, logs.lines.filter((line) => line.includes("kept responses")).join(""));

    // The lock gone: the others are written and found; the lost one is still told apart.
    await lock.release();
    await waitUntil(
      () => logs.lines.some((line) => line.includes("answers that waited for the lock are written")),
      "the waiting answers written",
      10_000,
    );
    const last = later.at(-1) ?? "";
    assert.equal((await client.responses.retrieve(last)).id, last);
    await assertToldNotStored(client.responses.retrieve(first.id), 404, "response_id");
  });
});
