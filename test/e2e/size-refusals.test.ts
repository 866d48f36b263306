// A provider that refuses a parameter for its size (OpenAI's 400 `array_above_max_length` for a `stop` of more than
// 4 entries, where DeepSeek takes 16) refuses what another candidate may take: the gateway fails over and remembers
// the parameter for that deployment. Real gateway, two scripted mock upstreams over loopback, the OpenAI SDK.
import assert from "node:assert/strict";
import { dirname } from "node:path";
import { describe, type TestContext, test } from "node:test";
import { runCli } from "../helpers/cli-process.ts";
import { CHAT_ROUTE, chatRequests, rowOf, send, serveEveryChat, statsOf, twoProviderScene } from "../helpers/e2e.ts";
import { chatCompletion, chatStream, type RecordedRequest } from "../helpers/mock-upstream.ts";

/** OpenAI's answer, word for word, to a `stop` array of 5. */
const STOP_TOO_LONG = {
  error: {
    message:
      "Invalid 'stop': array too long. Expected an array with maximum length 4, but got an array with length 5 instead.",
    type: "invalid_request_error",
    param: "stop",
    code: "array_above_max_length",
  },
};

function stopCount(request: RecordedRequest): number {
  const stop = (request.body as { stop?: unknown } | undefined)?.stop;
  return Array.isArray(stop) ? stop.length : 0;
}

/** Two providers serving `m` (the first without retries), as the size refusals need. */
function sizeScene(t: TestContext) {
  return twoProviderScene(t, {
    model: "m",
    firstModel: "{ id: first-m }",
    secondModel: "{ id: second-m }",
    firstKeys: "retries: 0",
    hasChatModel: false,
  });
}

/**
 * The first provider refuses a `stop` of more than `max` entries with `refusal` (400 unless said) and serves the rest,
 * the second serves everything; `ask` sends a request with `stop` and returns the answer's text.
 */
async function stopScene(t: TestContext, max: number, refusal: unknown, status = 400) {
  const scene = await sizeScene(t);
  scene.first.setDefault(CHAT_ROUTE, (request) =>
    stopCount(request) > max
      ? { kind: "json", status, body: refusal }
      : { kind: "json", status: 200, body: chatCompletion("first here", "first-m") },
  );
  serveEveryChat(scene.second, "second here");
  const ask = async (stop: string[]) =>
    (await scene.client.chat.completions.create({ model: "m", messages: [{ role: "user", content: "Hi" }], stop }))
      .choices[0]?.message.content;
  return { ...scene, ask };
}

describe("a parameter refused for its size", () => {
  test("a `stop` of 5 refused as too long fails over, and the next such request goes to the other provider at once", async (t) => {
    const { first, second, client } = await sizeScene(t);
    first.setDefault(CHAT_ROUTE, (request) =>
      stopCount(request) > 4
        ? { kind: "json", status: 400, body: STOP_TOO_LONG }
        : { kind: "json", status: 200, body: chatCompletion("first here", "first-m") },
    );
    serveEveryChat(second, "second here");
    const stop = ["a", "b", "c", "d", "END"];

    const answer = await client.chat.completions.create({
      model: "m",
      messages: [{ role: "user", content: "Hi" }],
      stop,
    });
    assert.equal(answer.choices[0]?.message.content, "second here");
    assert.equal(chatRequests(first).length, 1);
    assert.equal(chatRequests(second).length, 1);
    const sent = chatRequests(second)[0];
    assert.ok(sent !== undefined);
    assert.deepEqual((sent.body as { stop?: unknown }).stop, stop, "sent as the client asked");

    // Learned: the next request with `stop` goes to the other provider first, no round trip to the refusing one.
    const again = await client.chat.completions.create({
      model: "m",
      messages: [{ role: "user", content: "Hi" }],
      stop,
    });
    assert.equal(again.choices[0]?.message.content, "second here");
    assert.equal(chatRequests(first).length, 1, "the refusing provider was not asked again");
    assert.equal(chatRequests(second).length, 2);

    // A request without `stop` still goes to the first provider.
    const plain = await client.chat.completions.create({ model: "m", messages: [{ role: "user", content: "Hi" }] });
    assert.equal(plain.choices[0]?.message.content, "first here");
  });

  test("the lesson is about the size refused: a smaller `stop` still goes to the refusing provider first", async (t) => {
    const { first, ask } = await stopScene(t, 4, STOP_TOO_LONG);

    // Six entries refused: the message states the limit (4), so five are avoided too, one is not.
    assert.equal(await ask(["a", "b", "c", "d", "e", "f"]), "second here");
    assert.equal(chatRequests(first).length, 1);
    assert.equal(await ask(["END"]), "first here", "a 1-entry `stop` is not what was refused");
    assert.equal(chatRequests(first).length, 2);
    assert.equal(await ask(["a", "b", "c", "d", "e"]), "second here", "5 entries are above the stated limit");
    assert.equal(chatRequests(first).length, 2, "the refusing provider was not asked with 5");
    // The success of the 1-entry request did not end the lesson about larger ones.
    assert.equal(await ask(["a", "b", "c", "d", "e", "f"]), "second here");
    assert.equal(chatRequests(first).length, 2);
  });

  test("without a stated limit the lesson starts at the number of entries sent", async (t) => {
    const unstated = { error: { ...STOP_TOO_LONG.error, message: "Invalid 'stop': array too long." } };
    const { first, ask } = await stopScene(t, 4, unstated);

    assert.equal(await ask(["a", "b", "c", "d", "e", "f"]), "second here");
    assert.equal(chatRequests(first).length, 1);
    // Five were never refused: asked first, refused, and learned from then on.
    assert.equal(await ask(["a", "b", "c", "d", "e"]), "second here");
    assert.equal(chatRequests(first).length, 2);
    assert.equal(await ask(["a", "b", "c", "d", "e"]), "second here");
    assert.equal(chatRequests(first).length, 2, "5 entries learned as refused");
    assert.equal(await ask(["a", "b", "c", "d"]), "first here");
  });

  test("a size refusal of a key every request carries is still the client's 400: nothing to fail over for", async (t) => {
    const { first, second, client } = await sizeScene(t);
    first.setDefault(CHAT_ROUTE, {
      kind: "json",
      status: 400,
      body: { error: { ...STOP_TOO_LONG.error, message: "Invalid 'messages': array too long.", param: "messages" } },
    });
    serveEveryChat(second);
    await assert.rejects(
      client.chat.completions.create({ model: "m", messages: [{ role: "user", content: "Hi" }] }),
      (error: { status?: number; code?: string }) => error.status === 400 && error.code === "array_above_max_length",
    );
    assert.equal(chatRequests(second).length, 0);
  });

  test("a size wording that only quotes the client's prompt back is the client's 400: no failover, nothing learned", async (t) => {
    const { first, second, gateway, client } = await sizeScene(t);
    const quoted =
      "Invalid 'stop': array too long. Expected an array with maximum length 1, but got an array with length 2 instead";
    // A content filter quoting the prompt: no code, no param, the provider's own words around the quotation.
    first.setDefault(CHAT_ROUTE, {
      kind: "json",
      status: 400,
      body: {
        error: {
          message: `Request blocked: input '${quoted}' matched a filtered pattern.`,
          type: "invalid_request_error",
        },
      },
    });
    serveEveryChat(second);
    const content = `My other client logs this: ${quoted}. What does it mean?`;
    await assert.rejects(
      client.chat.completions.create({ model: "m", messages: [{ role: "user", content }], stop: ["a", "b"] }),
      (error: { status?: number; message?: string }) =>
        error.status === 400 && /Request blocked/.test(error.message ?? ""),
    );
    assert.equal(chatRequests(second).length, 0, "not failed over: the words were the prompt's");
    assert.deepEqual(rowOf(await statsOf(gateway), "first/m").refused_features, [], "nothing learned from a quotation");
  });
});

interface ExplainedRoute {
  candidates: { provider: string; refused_feature: { feature: string; min_entries: number | null } | null }[];
}

interface LoggedRecord {
  isStream?: boolean;
  candidates: { provider: string; refusedFeature?: string }[];
  skips?: { provider: string; phase: string; reason: string }[];
}

async function loggedRecords(gateway: Parameters<typeof send>[0]): Promise<LoggedRecord[]> {
  return ((await send(gateway, "GET", "/v1/gateway/requests?limit=5")).json as { data: LoggedRecord[] }).data;
}

describe("a size lesson where the route is explained, recorded and continued", () => {
  test("a route explanation with `parameters=stop:N` applies the lesson for N entries; the record names the size", async (t) => {
    const { first, gateway, ask } = await stopScene(t, 4, STOP_TOO_LONG);
    assert.equal(await ask(["a", "b", "c", "d", "e", "f"]), "second here");
    const explain = async (parameters: string) =>
      ((await send(gateway, "GET", `/v1/gateway/route?model=m&parameters=${parameters}`)).json as ExplainedRoute)
        .candidates;
    const few = await explain("stop:2");
    assert.deepEqual(
      few.map((candidate) => [candidate.provider, candidate.refused_feature]),
      [
        ["first", null],
        ["second", null],
      ],
      "2 entries are not what was refused",
    );
    const many = await explain("stop:6");
    assert.deepEqual(
      many.map((candidate) => [candidate.provider, candidate.refused_feature?.min_entries ?? null]),
      [
        ["second", null],
        ["first", 5],
      ],
      "6 entries: the refusing candidate ranked last, with the size its lesson is about",
    );
    assert.equal(many[1]?.refused_feature?.feature, "stop");
    // A request of 6: its record names the lesson with its size.
    assert.equal(await ask(["a", "b", "c", "d", "e", "f"]), "second here");
    assert.equal(chatRequests(first).length, 1);
    const [latest] = await loggedRecords(gateway);
    const refused = latest?.candidates.find((candidate) => candidate.provider === "first")?.refusedFeature ?? "";
    assert.match(refused, /^stop \(5 entries or more\): /);
    const badSize = await send(gateway, "GET", "/v1/gateway/route?model=m&parameters=stop:many");
    assert.equal(badSize.status, 400, badSize.text);
  });

  test("`llm-gateway route --parameters stop:N` applies the lesson kept in the state file as the HTTP explanation does", async (t) => {
    const { gateway, ask } = await stopScene(t, 4, STOP_TOO_LONG);
    assert.equal(await ask(["a", "b", "c", "d", "e", "f"]), "second here");
    const fromHttp = (
      (await send(gateway, "GET", "/v1/gateway/route?model=m&parameters=stop:6")).json as ExplainedRoute
    ).candidates.map((candidate) => [candidate.provider, candidate.refused_feature]);
    await gateway.close(); // the lesson is written to the state file, which the command reads
    const route = (...options: string[]) =>
      runCli(["route", "m", "--config", gateway.configPath, ...options], { cwd: dirname(gateway.configPath) });
    const explained = async (parameters: string) => {
      const result = await route("--json", "--parameters", parameters);
      assert.equal(result.code, 0, result.stderr);
      return (JSON.parse(result.stdout) as ExplainedRoute).candidates.map((candidate) => [
        candidate.provider,
        candidate.refused_feature,
      ]);
    };
    const many = await explained("stop:6");
    assert.deepEqual(many, fromHttp, "the same lesson, ranked the same, as `GET /v1/gateway/route`");
    assert.deepEqual(
      many.map(([provider, refused]) => [provider, (refused as { min_entries?: number } | null)?.min_entries ?? null]),
      [
        ["second", null],
        ["first", 5],
      ],
    );
    assert.deepEqual(
      (await explained("stop:2")).map(([provider, refused]) => [provider, refused]),
      [
        ["first", null],
        ["second", null],
      ],
      "2 entries are not what was refused",
    );
    // The table says why the first provider is last.
    const text = await route("--explain", "--parameters", "stop:6");
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /^ *1 +second +second-m /m);
    assert.match(
      text.stdout,
      /^refused: first\/first-m stop \(5 entries or more\): HTTP 400: Invalid 'stop'.* \(until \S+\)$/m,
    );
    // A bad value is the HTTP route's 400, as a usage error: exit 2, nothing explained.
    for (const options of [[], ["--json"]]) {
      const bad = await route(...options, "--parameters", "stop:many");
      assert.equal(bad.code, 2, bad.stdout);
      assert.match(bad.stderr, /`parameters` takes body keys, an array's with its number of entries/);
      assert.equal(bad.stdout, "");
    }
  });

  test("a broken stream is not continued by a candidate that refused the request's number of stop entries", async (t) => {
    const { first, second, gateway, ask } = await stopScene(t, 4, STOP_TOO_LONG);
    assert.equal(await ask(["a", "b", "c", "d", "e", "f"]), "second here");
    assert.equal(chatRequests(first).length, 1);
    // The stream second serves breaks mid-answer; first, ranked last for 6 entries, would refuse its continuation.
    second.enqueue(CHAT_ROUTE, {
      kind: "sse",
      events: chatStream(["Part", "ial"], "second-m").slice(0, 3),
      end: "destroy",
    });
    const stop = ["a", "b", "c", "d", "e", "f"];
    await send(gateway, "POST", "/v1/chat/completions", {
      body: { model: "m", messages: [{ role: "user", content: "Hi" }], stop, stream: true },
    });
    assert.equal(chatRequests(first).length, 1, "the refusing candidate was not asked to continue");
    const [latest] = await loggedRecords(gateway);
    assert.ok(latest?.isStream, JSON.stringify(latest));
    const skip = latest?.skips?.find((entry) => entry.provider === "first" && entry.phase === "continuation");
    assert.match(skip?.reason ?? "", /^refused stop \(5 entries or more\): /, JSON.stringify(latest?.skips));
  });
});

/** Other providers' wordings for too many stop sequences, word for word from their reports (size-refusal.ts cites each). */
const STOP_WORDINGS: readonly { readonly provider: string; readonly status: number; readonly body: unknown }[] = [
  {
    provider: "Groq",
    status: 400,
    body: { error: { message: "len(stop) > 4 is not supported", type: "invalid_request_error" } },
  },
  {
    provider: "Gemini",
    status: 400,
    body: [
      {
        error: {
          code: 400,
          message:
            "* GenerateContentRequest.generation_config.stop_sequences: the number of stop_sequences must not exceed 5.\n",
          status: "INVALID_ARGUMENT",
        },
      },
    ],
  },
  {
    provider: "vLLM",
    status: 400,
    body: {
      detail: [
        { type: "too_long", loc: ["body", "stop"], msg: "List should have at most 4 items after validation, not 6" },
      ],
    },
  },
  {
    provider: "FastDeploy",
    status: 400,
    body: {
      object: "error",
      message:
        "Length of stop ([2, 16, 2, 1, 3, 3]) exceeds the limit max_model_len(5).Please reduce the number of stop or set a lager max_stop_seqs_num by `FD_MAX_STOP_SEQS_NUM`",
      code: 400,
    },
  },
];

describe("other providers' wordings of too many stop sequences", () => {
  for (const wording of STOP_WORDINGS) {
    test(`${wording.provider}: fails over, and only requests as large avoid the provider`, async (t) => {
      const { first, ask } = await stopScene(t, 5, wording.body, wording.status);
      assert.equal(await ask(["a", "b", "c", "d", "e", "f"]), "second here", "failed over, not the client's 400");
      assert.equal(await ask(["a", "b", "c", "d", "e", "f"]), "second here");
      assert.equal(chatRequests(first).length, 1, "learned: not asked again with as many");
      assert.equal(await ask(["END"]), "first here", "a smaller `stop` still goes there");
    });
  }
});
