// A body Fastify's parser refuses for a `__proto__` key (or a `constructor` holding `prototype`) is said to be that,
// naming where (server/json-body.ts). Finding that place is one more pass over a body a hostile client sized: it must
// cost about what parsing it does, and a body that is simply not JSON must not be parsed a second time.
import assert from "node:assert/strict";
import { test } from "node:test";
import { chatRequests, errorOf, oneProviderScene, send, serveEveryChat } from "../helpers/e2e.ts";
import { threadCpuMsWhile } from "../helpers/thread-cpu.ts";

/** A chat body of 2 M numbers nested 60 levels deep (4 MB, within every bound), ending with `tail`. */
function bigBody(tail: string): string {
  const numbers = `[${Array.from({ length: 2_000_000 }, () => "1").join(",")}]`;
  const nested = `${"[".repeat(60)}${numbers}${"]".repeat(60)}`;
  return `{"model":"m","messages":[{"role":"user","content":"hi"}],"extra":${nested},${tail}`;
}

test("a big body with a __proto__ key at its end: 400 naming it, in about the time a body that is not JSON takes", async (t) => {
  const { mock, gateway } = await oneProviderScene(t);
  serveEveryChat(mock);
  // Both bodies hold a `__proto__` key, so both are parsed twice (Fastify's parser, then JSON.parse to find where);
  // the first is cut at its end, so it takes as long to fail and has no walk. The walk that named the key copied its
  // 60-long path for each number: ~4 parses' time, the poisoned body ~2.5 times as long as the cut one.
  const poisoned = bigBody(`"tail":{"__proto__":{"polluted":true}}}`);
  const cut = bigBody(`"tail":{"__proto__":{"polluted":true}}`);
  // This thread's CPU (the gateway runs in it): the two bodies are compared by their cost, which another process
  // holding the core between the two requests does not change.
  const timed = async (body: string) => {
    const { value: response, ms: elapsedMs } = await threadCpuMsWhile(() =>
      send(gateway, "POST", "/v1/chat/completions", { body }),
    );
    return { response, elapsedMs };
  };
  await timed(cut); // warm-up
  const notJson = await timed(cut);
  assert.equal(notJson.response.status, 400);
  assert.equal(errorOf(notJson.response).code, "invalid_json");
  const refused = await timed(poisoned);
  assert.equal(refused.response.status, 400, refused.response.text.slice(0, 300));
  const error = errorOf(refused.response);
  assert.equal(error.code, "invalid_value");
  assert.equal(error.param, "tail");
  const shown = `${refused.elapsedMs.toFixed(0)} ms; the cut body ${notJson.elapsedMs.toFixed(0)} ms`;
  assert.ok(refused.elapsedMs < 1.7 * notJson.elapsedMs, `refused after ${shown}`);
  assert.equal(chatRequests(mock).length, 0);
});

test("a body that is not JSON, without such a key: 400 invalid_json after one JSON.parse of it, not two", async (t) => {
  const { mock, gateway } = await oneProviderScene(t);
  serveEveryChat(mock);
  const body = bigBody(`"tail":`);
  // Counted in this process (the gateway runs in it): the parses of a string as long as the body.
  const parse = JSON.parse;
  let parses = 0;
  JSON.parse = (text: string, reviver?: Parameters<typeof JSON.parse>[1]) => {
    if (text.length === body.length) parses++;
    return parse(text, reviver);
  };
  t.after(() => {
    JSON.parse = parse;
  });
  const response = await send(gateway, "POST", "/v1/chat/completions", { body });
  assert.equal(response.status, 400, response.text.slice(0, 300));
  assert.equal(errorOf(response).code, "invalid_json");
  // Fastify's parser's; before, a second to look for a `__proto__` key a body that is not JSON cannot be refused for.
  assert.equal(parses, 1);
  assert.equal(chatRequests(mock).length, 0);
});
