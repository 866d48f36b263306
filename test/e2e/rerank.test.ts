// `/v1/rerank`: a query and documents, served by rerank models with failover, answered in the shape Cohere, Jina,
// Together and vLLM share. No official SDK has a rerank call: the client is plain HTTP, as curl users send it.
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { describe, type TestContext, test } from "node:test";
import {
  assertServedAs,
  errorOf,
  failedOverRecord,
  recordsOf,
  send,
  twoProviderScene,
  useGateway,
  useMock,
} from "../helpers/e2e.ts";
import type { MockStep, MockUpstream, RecordedRequest } from "../helpers/mock-upstream.ts";
import { parsePrometheusText, sumOf } from "../helpers/prometheus-text.ts";

const RERANK = "POST /v1/rerank";
const DOCUMENTS = ["Paris is the capital of France.", "Bananas are yellow.", "France borders Spain."];

interface RerankAnswer {
  id?: string;
  model?: string;
  results: { index: number; relevance_score: number; document?: { text: string } }[];
  usage?: Record<string, number>;
}

/** A Cohere-style answer: documents 0 and 2 relevant, best first. */
function resultsStep(extra: Record<string, unknown> = {}): MockStep {
  return {
    kind: "json",
    body: {
      id: "rr-1",
      results: [
        { index: 0, relevance_score: 0.92 },
        { index: 2, relevance_score: 0.41 },
      ],
      usage: { total_tokens: 37 },
      ...extra,
    },
  };
}

function rerankRequests(mock: MockUpstream, path = "/v1/rerank"): RecordedRequest[] {
  return mock.requests.filter((recorded) => recorded.path === path);
}

async function twoProviders(t: TestContext, extra = "") {
  const { first, second, gateway } = await twoProviderScene(t, {
    model: "reranker",
    firstModel: "{ id: bge-reranker-first }",
    secondModel: "{ id: rerank-second }",
    firstKeys: "retries: 0\nbody:\n  defaults: { temperature: 0.2, max_tokens_per_doc: 512 }",
    extra,
  });
  const post = (body: unknown, path = "/v1/rerank") => send(gateway, "POST", path, { body });
  return { first, second, gateway, post };
}

describe("rerank", () => {
  test("the provider gets its own model id and the fields; the results come back, with the model that answered", async (t) => {
    const { first, second, post } = await twoProviders(t);
    first.enqueue(RERANK, resultsStep());
    const answer = await post({
      model: "reranker",
      query: "What is the capital of France?",
      documents: DOCUMENTS,
      top_n: 2,
      return_documents: false,
      rank_fields: ["text"],
      // The gateway's own field is never sent upstream (as on the other routes).
      x_gateway_reasoning_effort: "high",
    });
    assert.equal(answer.status, 200, answer.text);
    assert.equal(answer.headers["x-gateway-provider"], "first");
    const body = answer.json as RerankAnswer;
    assert.deepEqual(body.results, [
      { index: 0, relevance_score: 0.92 },
      { index: 2, relevance_score: 0.41 },
    ]);
    assert.equal(body.id, "rr-1");
    // The provider named no model: the gateway says which one answered.
    assert.equal(body.model, "bge-reranker-first");
    const sent = rerankRequests(first)[0];
    assert.ok(sent, "the provider got no request");
    // The provider's rerank default goes in, its chat default stays out.
    assert.deepEqual(sent.body, {
      model: "bge-reranker-first",
      query: "What is the capital of France?",
      documents: DOCUMENTS,
      top_n: 2,
      return_documents: false,
      rank_fields: ["text"],
      max_tokens_per_doc: 512,
    });
    assert.equal(sent.headers.authorization, "Bearer sk-first-key");
    assert.equal(rerankRequests(second).length, 0);

    // Without /v1; an object holding only `text` is sent as that text (vLLM, Infinity, Cohere v2 take strings
    // only), one with more fields as it came.
    first.enqueue(RERANK, resultsStep({ results: [{ index: 1, relevance_score: 0.5, document: { text: "b" } }] }));
    const objects = await post(
      { model: "reranker", query: "q", documents: [{ text: "a" }, { text: "b", title: "B" }] },
      "/rerank",
    );
    assert.equal(objects.status, 200, objects.text);
    assert.deepEqual((objects.json as RerankAnswer).results, [
      { index: 1, relevance_score: 0.5, document: { text: "b" } },
    ]);
    assert.deepEqual((rerankRequests(first)[1]?.body as { documents?: unknown } | undefined)?.documents, [
      "a",
      { text: "b", title: "B" },
    ]);
  });

  test("a 429 fails over to the next provider; the record, usage and metrics name the rerank", async (t) => {
    const { first, second, gateway, post } = await twoProviders(t, "log:\n  content: true\n");
    first.enqueue(RERANK, {
      kind: "json",
      status: 429,
      body: { error: { message: "Rate limit reached", type: "rate_limit_error" } },
      headers: { "retry-after": "30" },
    });
    second.enqueue(RERANK, resultsStep({ model: "rerank-second" }));
    const answer = await post({ model: "reranker", query: "capital of France", documents: DOCUMENTS });
    assert.equal(answer.status, 200, answer.text);
    assert.equal(answer.headers["x-gateway-attempts"], "2");
    assert.equal(answer.headers["x-gateway-provider"], "second");
    assert.equal((answer.json as RerankAnswer).results.length, 2);
    assert.equal((rerankRequests(second)[0]?.body as { model?: string } | undefined)?.model, "rerank-second");

    const { record } = await failedOverRecord(gateway, "rerank", "rerank");
    // The provider's token count is the request's (its `usage.total_tokens`).
    assert.equal(record.tokensIn, 37);
    assert.deepEqual(record.content?.request, { query: "capital of France", documents: DOCUMENTS });

    const metrics = parsePrometheusText((await send(gateway, "GET", "/metrics")).text);
    assert.equal(
      sumOf(metrics, "llm_gateway_requests_total", { endpoint: "rerank", protocol: "rerank", status_class: "2xx" }),
      1,
    );

    // The cooled-down provider is skipped for the next request.
    second.enqueue(RERANK, resultsStep());
    assert.equal((await post({ model: "reranker", query: "again", documents: DOCUMENTS })).status, 200);
    assert.equal(rerankRequests(first).length, 1);
  });

  test("a 200 without results (an error in JSON, no list, entries without scores or out of range, none, one twice) fails over", async (t) => {
    const notAnswers: [MockStep, RegExp][] = [
      [{ kind: "json", body: { error: { message: "model overloaded", type: "server_error" } } }, /overloaded/],
      [{ kind: "json", body: { id: "x", meta: {} } }, /no `results` array/],
      [{ kind: "json", body: { results: [{ index: 0 }] } }, /without a document's `index`/],
      [{ kind: "json", body: { results: [{ index: 7, relevance_score: 0.3 }] } }, /without a document's `index`/],
      // No document scored, or one scored twice: the client would get an empty or a duplicated ranking.
      [{ kind: "json", body: { results: [] } }, /an empty `results`/],
      [
        {
          kind: "json",
          body: {
            results: [
              { index: 0, relevance_score: 0.9 },
              { index: 0, relevance_score: 0.8 },
            ],
          },
        },
        /a document listed twice in `results`/,
      ],
      [{ kind: "text", status: 200, body: "<html>proxy</html>", headers: { "content-type": "text/html" } }, /not JSON/],
    ];
    for (const [step, reason] of notAnswers) {
      const { first, second, gateway, post } = await twoProviders(t);
      first.enqueue(RERANK, step);
      second.enqueue(RERANK, resultsStep());
      const answer = await post({ model: "reranker", query: "q", documents: DOCUMENTS });
      assert.equal(answer.status, 200, answer.text);
      assert.equal(answer.headers["x-gateway-provider"], "second");
      const failedAttempt = (await (await recordsOf(gateway, "rerank")).records)[0]?.attempts[0];
      assert.equal(failedAttempt?.provider, "first");
      assert.match(failedAttempt?.reason ?? "", reason);
    }
  });

  test("bad bodies and chat models get a clear 400 in OpenAI's shape and reach no provider", async (t) => {
    const { first, second, post } = await twoProviders(t);
    const cases: [unknown, string, RegExp][] = [
      [{ model: "reranker", documents: DOCUMENTS }, "query", /`query` is required/],
      [{ model: "reranker", query: "", documents: DOCUMENTS }, "query", /must not be empty/],
      [{ model: "reranker", query: ["a"], documents: DOCUMENTS }, "query", /`query` is required/],
      [{ model: "reranker", query: "q" }, "documents", /`documents` is required/],
      [{ model: "reranker", query: "q", documents: [] }, "documents", /must not be empty/],
      [{ model: "reranker", query: "q", documents: "one" }, "documents", /`documents` is required/],
      [{ model: "reranker", query: "q", documents: ["a", 3] }, "documents[1]", /string or an object/],
      [{ model: "reranker", query: "q", documents: [{ title: "no text" }] }, "documents[0]", /string or an object/],
      [{ model: "reranker", query: "q", documents: Array(1001).fill("d") }, "documents", /at most 1000/],
      [{ model: "reranker", query: "q", documents: DOCUMENTS, top_n: 0 }, "top_n", /positive whole number/],
      [{ model: "reranker", query: "q", documents: DOCUMENTS, top_n: 1.5 }, "top_n", /positive whole number/],
      [{ model: "reranker", query: "q", documents: DOCUMENTS, top_n: "2" }, "top_n", /positive whole number/],
      [{ model: "reranker", query: "q", documents: DOCUMENTS, return_documents: "yes" }, "return_documents", /boolean/],
      [{ model: "reranker", query: "q", documents: DOCUMENTS, stream: true }, "stream", /not supported for rerank/],
      [{ query: "q", documents: DOCUMENTS }, "model", /`model` is required/],
    ];
    for (const [body, param, message] of cases) {
      const answer = await post(body);
      assert.equal(answer.status, 400, `${JSON.stringify(body).slice(0, 80)}: ${answer.text}`);
      const error = errorOf(answer);
      assert.equal(error.param, param, answer.text);
      assert.match(error.message, message);
      assert.equal(error.type, "invalid_request_error");
    }
    const chat = await post({ model: "chatty", query: "q", documents: DOCUMENTS });
    assert.equal(chat.status, 400, chat.text);
    assert.equal(errorOf(chat).code, "model_not_supported");
    assert.match(errorOf(chat).message, /chat model and cannot serve this rerank endpoint/);
    assert.equal(rerankRequests(first).length + rerankRequests(second).length, 0);
  });

  test("rerank_api voyage and nvidia: the request translated (top_k, passages at /ranking), the answers read back as results", async (t) => {
    const voyage = await useMock(t);
    const nim = await useMock(t);
    const gateway = await useGateway(
      t,
      `providers:
  - name: voy
    base_url: ${voyage.baseUrl}
    api_key: sk-voyage
    retries: 0
    rerank_api: voyage
    body:
      defaults: { truncation: false }
    models:
      reranker: { id: rerank-2.5 }
  - name: nim
    base_url: ${nim.baseUrl}
    api_key: sk-nim
    rerank_api: nvidia
    models:
      reranker: { id: nvidia/llama-3.2-nv-rerankqa-1b-v2 }
request_log:
  enabled: true
`,
    );
    const post = (body: unknown) => send(gateway, "POST", "/v1/rerank", { body });
    voyage.enqueue(RERANK, {
      kind: "json",
      body: {
        object: "list",
        data: [
          { index: 2, relevance_score: 0.8, document: DOCUMENTS[2] },
          { index: 0, relevance_score: 0.6, document: DOCUMENTS[0] },
        ],
        model: "rerank-2.5",
        usage: { total_tokens: 29 },
      },
    });
    const viaVoyage = await post({
      model: "reranker",
      query: "France",
      documents: [DOCUMENTS[0], { text: DOCUMENTS[1] as string, title: "fruit" }, DOCUMENTS[2]],
      top_n: 2,
      return_documents: true,
    });
    assert.equal(viaVoyage.status, 200, viaVoyage.text);
    assert.deepEqual(viaVoyage.json, {
      model: "rerank-2.5",
      results: [
        { index: 2, relevance_score: 0.8, document: { text: DOCUMENTS[2] } },
        { index: 0, relevance_score: 0.6, document: { text: DOCUMENTS[0] } },
      ],
      usage: { total_tokens: 29 },
    });
    // Voyage's names, strings only; the rule's default in Voyage's own field.
    assert.deepEqual(rerankRequests(voyage)[0]?.body, {
      model: "rerank-2.5",
      query: "France",
      documents: DOCUMENTS,
      top_k: 2,
      return_documents: true,
      truncation: false,
    });

    // A Cohere-shaped answer is none from a Voyage provider: the NIM is tried, at /ranking in its shape.
    voyage.enqueue(RERANK, resultsStep());
    nim.enqueue("POST /v1/ranking", {
      kind: "json",
      body: {
        rankings: [
          { index: 1, logit: -3.5 },
          { index: 0, logit: 2.25 },
          { index: 2, logit: 0 },
        ],
        usage: { prompt_tokens: 41, total_tokens: 41 },
      },
    });
    const viaNim = await post({
      model: "reranker",
      query: "capital",
      documents: DOCUMENTS,
      top_n: 2,
      return_documents: true,
      truncate: "END",
    });
    assert.equal(viaNim.status, 200, viaNim.text);
    assert.equal(viaNim.headers["x-gateway-provider"], "nim");
    const answer = viaNim.json as RerankAnswer;
    assert.equal(answer.model, "nvidia/llama-3.2-nv-rerankqa-1b-v2");
    // Best first, cut to top_n, each logit as the logistic function's 0..1 score, the documents added.
    assert.deepEqual(
      answer.results.map((result) => [result.index, result.document?.text]),
      [
        [0, DOCUMENTS[0]],
        [2, DOCUMENTS[2]],
      ],
    );
    assert.ok(Math.abs((answer.results[0]?.relevance_score ?? 0) - 1 / (1 + Math.exp(-2.25))) < 1e-12);
    assert.equal(answer.results[1]?.relevance_score, 0.5);
    assert.deepEqual(rerankRequests(nim, "/v1/ranking")[0]?.body, {
      model: "nvidia/llama-3.2-nv-rerankqa-1b-v2",
      query: { text: "capital" },
      passages: DOCUMENTS.map((text) => ({ text })),
      truncate: "END",
    });
    const record = (await (await recordsOf(gateway, "rerank")).records)[0];
    assert.match(record?.attempts[0]?.reason ?? "", /no `data` array/);
    assert.equal(record?.tokensIn, 41);
  });

  test("rerank_api nvidia: the provider's body rules for top_n and return_documents cut and complete the answer", async (t) => {
    const nim = await useMock(t);
    const gateway = await useGateway(
      t,
      `providers:
  - name: nim
    base_url: ${nim.baseUrl}
    api_key: sk-nim
    rerank_api: nvidia
    body:
      defaults: { top_n: 1, return_documents: true }
    models:
      reranker: { id: nvidia/llama-3.2-nv-rerankqa-1b-v2 }
`,
    );
    nim.enqueue("POST /v1/ranking", {
      kind: "json",
      body: {
        rankings: [
          { index: 2, logit: 1 },
          { index: 0, logit: 3 },
          { index: 1, logit: -2 },
        ],
      },
    });
    const answer = await send(gateway, "POST", "/v1/rerank", {
      body: { model: "reranker", query: "capital", documents: DOCUMENTS },
    });
    assert.equal(answer.status, 200, answer.text);
    // A NIM is sent neither field: the rules' values decide the cut and the documents, as the client's would.
    assert.deepEqual(
      (answer.json as RerankAnswer).results.map((result) => [result.index, result.document?.text]),
      [[0, DOCUMENTS[0]]],
    );
  });

  test("a reload that changes a provider's rerank_api retires its cached answers: the next one is asked in the new dialect", async (t) => {
    const mock = await useMock(t);
    // Port 0: a `server:` block without a port listens on the default 12345, which another process may hold.
    const config = (api: string) => `server:
  port: 0
  host: 127.0.0.1
  admin_keys: [rerank-admin-key-1]
providers:
  - name: host
    base_url: ${mock.baseUrl}
    api_key: sk-host
    rerank_api: ${api}
    models:
      reranker: { id: rerank-2.5 }
cache:
  enabled: true
`;
    const gateway = await useGateway(t, config("cohere"));
    const body = { model: "reranker", query: "France", documents: DOCUMENTS };
    mock.enqueue(RERANK, resultsStep());
    assert.equal((await send(gateway, "POST", "/v1/rerank", { body })).status, 200);
    assert.equal((await send(gateway, "POST", "/v1/rerank", { body })).headers["x-gateway-cache"], "hit");

    writeFileSync(gateway.configPath, config("voyage"));
    const reloaded = await send(gateway, "POST", "/admin/reload", {
      headers: { authorization: "Bearer rerank-admin-key-1" },
    });
    assert.equal(reloaded.status, 200, reloaded.text);
    // The kept answer was read in Cohere's shape from a host now spoken to as Voyage: not this config's answer.
    mock.enqueue(RERANK, { kind: "json", body: { data: [{ index: 1, relevance_score: 0.7 }], model: "rerank-2.5" } });
    const after = await send(gateway, "POST", "/v1/rerank", { body });
    assert.equal(after.status, 200, after.text);
    assert.equal(after.headers["x-gateway-cache"], "miss");
    assert.deepEqual((after.json as RerankAnswer).results, [{ index: 1, relevance_score: 0.7 }]);
    assert.equal(rerankRequests(mock).length, 2);
  });

  test("/v1/models lists rerank models with /v1/rerank, the route explanation plans kind=rerank, answers are cached", async (t) => {
    const { first, gateway, post } = await twoProviders(t, "cache:\n  enabled: true\n");
    await assertServedAs(gateway, "reranker", {
      kind: "rerank",
      endpoints: ["/v1/rerank"],
      providers: ["first", "second"],
    });

    // Jina's usage as some hosts give it: `prompt_tokens: 0` next to the real total, which is what counts.
    first.enqueue(
      RERANK,
      resultsStep({ usage: { prompt_tokens: 0, completion_tokens: 0, total_tokens: 815 } }),
      resultsStep({ id: "rr-2" }),
    );
    const body = { model: "reranker", query: "Same question.", documents: DOCUMENTS };
    const once = await post(body);
    const twice = await post(body);
    assert.equal((once.json as RerankAnswer).id, "rr-1");
    assert.equal((twice.json as RerankAnswer).id, "rr-1", "the second answer was not the kept one");
    assert.equal(twice.headers["x-gateway-cache"], "hit");
    assert.equal(rerankRequests(first).length, 1);
    const served = (await (await recordsOf(gateway, "rerank")).records).find((record) => record.attempts.length === 1);
    assert.equal(served?.tokensIn, 815);
  });

  test("the query and the documents count against a token budget: long documents skip the provider whose tpm they exceed", async (t) => {
    const { first, second, gateway } = await twoProviderScene(t, {
      model: "reranker",
      firstModel: "{ id: rerank-first, limits: { tpm: 60 } }",
      secondModel: "{ id: rerank-second }",
      hasChatModel: false,
      keepsRequestLog: false,
    });
    const post = (body: unknown) => send(gateway, "POST", "/v1/rerank", { body });
    second.enqueue(RERANK, resultsStep());
    // A short query, but the documents hold far more than 60 tokens between them.
    const long = await post({
      model: "reranker",
      query: "q",
      documents: Array(3).fill("A sentence to rank. ".repeat(10)),
    });
    assert.equal(long.status, 200, long.text);
    assert.equal(long.headers["x-gateway-provider"], "second");
    assert.equal(rerankRequests(first).length, 0);
    first.enqueue(RERANK, resultsStep({ usage: undefined }));
    const short = await post({ model: "reranker", query: "q", documents: ["a", "b", "c"] });
    assert.equal(short.headers["x-gateway-provider"], "first");
  });

  test("no context-fit test: documents longer than a reranker's window together are still sent (it holds one pair)", async (t) => {
    const only = await useMock(t);
    const gateway = await useGateway(
      t,
      `providers:
  - name: only
    base_url: ${only.baseUrl}
    api_key: sk-only
    models:
      reranker: { id: jina-reranker-v2-base-multilingual, context: 64 }
  - name: budgeted
    base_url: ${only.baseUrl}
    api_key: sk-budgeted
    models:
      reranker: { id: budgeted-reranker, context: 64, limits: { tpm: 5000 } }
`,
    );
    only.enqueue(RERANK, resultsStep());
    const documents = Array(3).fill("A sentence to rank, long enough. ".repeat(6));
    const answer = await send(gateway, "POST", "/v1/rerank", { body: { model: "reranker", query: "q", documents } });
    assert.equal(answer.status, 200, answer.text);
    assert.equal(rerankRequests(only).length, 1);
    // The route explanation plans it the same way: `tokens=` skips no reranker for its context, but counts against a
    // token budget (a request that large would be refused by it too).
    const route = await send(gateway, "GET", "/v1/gateway/route?model=reranker&kind=rerank&tokens=100000");
    assert.equal(route.status, 200, route.text);
    const explained = route.json as {
      candidates: { provider: string; context_fit: unknown }[];
      skipped: { provider: string; cause: string }[];
    };
    assert.deepEqual(
      explained.candidates.map((candidate) => [candidate.provider, candidate.context_fit]),
      [["only", null]],
    );
    assert.deepEqual(
      explained.skipped.map((skip) => [skip.provider, skip.cause]),
      [["budgeted", "budget"]],
    );
  });

  test("hostile bodies get a 400 in OpenAI's shape or a clean answer, never a 5xx or a stack", async (t) => {
    const { first, second, post } = await twoProviders(t);
    for (const mock of [first, second]) {
      mock.setDefault(RERANK, resultsStep({ results: [{ index: 0, relevance_score: 0.5 }] }));
    }
    const deep: Record<string, unknown> = {};
    let cursor = deep;
    for (let depth = 0; depth < 200; depth++) cursor = cursor.next = {} as Record<string, unknown>;
    const bodies: unknown[] = [
      "not an object",
      [1, 2, 3],
      null,
      { model: "reranker", query: "q", documents: [null] },
      { model: "reranker", query: "q", documents: [{ text: null }] },
      { model: "reranker", query: "q", documents: [{ text: "a", __proto__: { text: 1 } }] },
      JSON.parse('{"model":"reranker","query":"q","documents":[{"__proto__":{"text":"x"}}]}'),
      { model: "reranker", query: "q", documents: ["a", ["nested"]] },
      { model: "reranker", query: { text: "q" }, documents: ["a"] },
      { model: "reranker", query: "q\u0000", documents: ["\u0000", "\ud800"] },
      { model: "reranker", query: "q", documents: ["a"], top_n: 1e308 },
      { model: "reranker", query: "q", documents: ["a"], top_n: -1 },
      { model: "reranker", query: "q", documents: ["a"], top_n: 99 },
      { model: "reranker", query: "q", documents: ["a"], deep },
      { model: "reranker", models: "reranker", query: "q", documents: ["a"] },
      { model: ["reranker"], query: "q", documents: ["a"] },
    ];
    for (const body of bodies) {
      const answer = await post(body);
      assert.ok(
        answer.status === 200 || answer.status === 400,
        `${JSON.stringify(body)?.slice(0, 80)}: ${answer.text}`,
      );
      if (answer.status === 400) assert.equal(errorOf(answer).type, "invalid_request_error");
      else assert.ok(Array.isArray((answer.json as RerankAnswer).results));
      assert.doesNotMatch(answer.text, /at .+\.ts:\d+/);
    }
  });
});
