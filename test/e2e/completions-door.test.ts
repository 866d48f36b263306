// The legacy completions door against OpenAI's reference: what it refuses (`best_of` below `n` or streamed, a
// non-integer `n`) is a 400 naming the field before any upstream call, as OpenAI answers it, whatever the host would
// have done with it.
import assert from "node:assert/strict";
import { test } from "node:test";
import { BadRequestError } from "openai";
import { errorOf, oneProviderScene, send } from "../helpers/e2e.ts";

test("n and best_of as OpenAI's reference states them: a 400 naming the field, nothing sent", async (t) => {
  const { mock, gateway, client } = await oneProviderScene(t);
  const refused: [Record<string, unknown>, string][] = [
    [{ n: 2, best_of: 1 }, "best_of"],
    [{ best_of: 2, stream: true }, "best_of"],
    [{ n: 0 }, "n"],
    [{ n: "2" }, "n"],
    [{ n: 1.5 }, "n"],
    [{ best_of: 0 }, "best_of"],
    [{ echo: "yes" }, "echo"],
    [{ suffix: 3 }, "suffix"],
  ];
  for (const [fields, param] of refused) {
    const response = await send(gateway, "POST", "/v1/completions", { body: { model: "m", prompt: "hi", ...fields } });
    assert.equal(response.status, 400, `${JSON.stringify(fields)}: ${response.text}`);
    assert.equal(errorOf(response).type, "invalid_request_error");
    assert.equal(errorOf(response).param, param, JSON.stringify(fields));
  }
  // The SDK's own call, streamed with best_of: its BadRequestError, with the field named.
  await assert.rejects(
    client.completions.create({ model: "m", prompt: "hi", best_of: 2, stream: true }),
    (error: unknown) => error instanceof BadRequestError && error.param === "best_of",
  );
  assert.equal(mock.requests.filter((request) => request.path === "/v1/completions").length, 0);

  // What the reference allows is sent on as it came.
  const allowed = { n: 2, best_of: 3, echo: true, suffix: "end", logprobs: 2 };
  const served = await send(gateway, "POST", "/v1/completions", { body: { model: "m", prompt: "hi", ...allowed } });
  assert.equal(served.status, 200, served.text);
  const sent = mock.requests.find((request) => request.path === "/v1/completions")?.body as Record<string, unknown>;
  assert.deepEqual(
    { n: sent.n, best_of: sent.best_of, echo: sent.echo, suffix: sent.suffix, logprobs: sent.logprobs },
    allowed,
  );
});

test("best_of that picks nothing (1, or equal to n) streams: LangChain's and typed clients' defaults", async (t) => {
  const { mock, client } = await oneProviderScene(t);
  // LangChain's OpenAI LLM refuses only `bestOf > 1` with streaming; typed clients send their default `best_of: 1`.
  for (const fields of [{ best_of: 1 }, { n: 2, best_of: 2 }]) {
    const stream = await client.completions.create({ model: "m", prompt: "hi", stream: true, ...fields });
    let chunks = 0;
    for await (const _chunk of stream) chunks += 1;
    assert.ok(chunks > 0, JSON.stringify(fields));
  }
  assert.equal(mock.requests.filter((request) => request.path === "/v1/completions").length, 2);
});
