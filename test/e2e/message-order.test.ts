// Strict role order (providers/message-order.ts, docs/configuration.md "Message order"): a mock upstream playing
// Mistral's API validates the role sequence as Mistral does and refuses with its exact 400 bodies
// (`invalid_request_message_order`, code 3230) when it is wrong, and answers otherwise. Claude Code's replayed
// requests, a tool -> user conversation, the other providers of the same config, and the learned path.
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { playAlternatingHost } from "../helpers/alternating-host.ts";
import { runCli, tempDir } from "../helpers/cli-process.ts";
import {
  CHAT_ROUTE,
  chatRequests,
  postChat,
  recordsOf,
  rowOf,
  send,
  serveEveryChat,
  statsOf,
  useGateway,
  useMock,
} from "../helpers/e2e.ts";
import {
  chatCompletion,
  chatStream,
  type MockStep,
  type MockUpstream,
  type RecordedRequest,
} from "../helpers/mock-upstream.ts";

const CLIENT_KEY = "client-key-order";

interface Message {
  role: string;
  content?: unknown;
  prefix?: boolean;
  tool_calls?: unknown[];
}

/** Mistral's refusal of a role sequence, as its API words it (issues: avante.nvim #2562, datapizza-ai #98). */
function mistralRefusal(message: string): MockStep {
  return {
    kind: "json",
    status: 400,
    body: { object: "error", message, type: "invalid_request_message_order", param: null, code: "3230" },
  };
}

/** What Mistral's validator says about `messages`, or undefined when it serves them. */
function mistralVerdict(messages: readonly Message[]): string | undefined {
  let previous: string | undefined;
  for (const message of messages) {
    const { role } = message;
    if (previous !== undefined) {
      const isAllowed =
        previous === "tool"
          ? role === "assistant" || role === "tool"
          : previous === "user"
            ? role === "assistant"
            : previous === "assistant"
              ? role === "user" || role === "tool" || role === "assistant"
              : role !== "tool";
      if (!isAllowed || (role === "system" && previous !== "system"))
        return `Unexpected role '${role}' after role '${previous}'`;
    }
    previous = role;
  }
  const last = messages.at(-1);
  const isServable =
    last?.role === "user" || last?.role === "tool" || (last?.role === "assistant" && last.prefix === true);
  if (!isServable) {
    return `Expected last role User or Tool (or Assistant with prefix True) for serving but got ${last?.role ?? "none"}`;
  }
  return undefined;
}

/**
 * Mistral's refusal of a tool call id it did not make (mistral-common's validator: another provider's `call_...`, a
 * Claude Code `toolu_...`), as its API words it (issues: editor-code-assistant/eca #233, karthink/gptel #1203).
 */
function mistralIdRefusal(messages: readonly Message[]): MockStep | undefined {
  const ids = messages.flatMap((message) => [
    ...(message.tool_calls ?? []).map((call) => (call as { id?: unknown }).id),
    ...(message.role === "tool" ? [(message as { tool_call_id?: unknown }).tool_call_id] : []),
  ]);
  const wrong = ids.find((id) => typeof id !== "string" || !/^[a-zA-Z0-9]{9}$/.test(id));
  if (wrong === undefined) return undefined;
  return {
    kind: "json",
    status: 400,
    body: {
      object: "error",
      message: `Tool call id was ${String(wrong)} but must be a-z, A-Z, 0-9, with a length of 9.`,
      type: "invalid_function_call",
      param: null,
      code: "3280",
    },
  };
}

/** A Mistral-like upstream: refuses a wrong order or tool call id, else answers ("Served.", streamed when asked). */
function playMistral(mock: MockUpstream): void {
  mock.setDefault(CHAT_ROUTE, (request: RecordedRequest) => {
    const body = request.body as { model: string; messages: Message[]; stream?: boolean };
    const refusal = mistralVerdict(body.messages);
    if (refusal !== undefined) return mistralRefusal(refusal);
    const idRefusal = mistralIdRefusal(body.messages);
    if (idRefusal !== undefined) return idRefusal;
    return body.stream === true
      ? { kind: "sse", events: chatStream(["Served."], body.model, { usage: true }) }
      : { kind: "json", body: chatCompletion("Served.", body.model) };
  });
}

interface Scene {
  /** Provider `mistral` (the preset, at the mock) and `devstral` (no preset, a Mistral-family id) share it. */
  readonly strict: MockUpstream;
  /** Provider `lenient`: takes any order (an OpenAI-like upstream). */
  readonly lenient: MockUpstream;
  /** Provider `learner`: plays Mistral, but nothing in the config says it is strict. */
  readonly learner: MockUpstream;
  readonly gateway: Awaited<ReturnType<typeof useGateway>>;
}

async function scene(t: Parameters<typeof useMock>[0]): Promise<Scene> {
  const [strict, lenient, learner] = [await useMock(t), await useMock(t), await useMock(t)];
  playMistral(strict);
  playMistral(learner);
  const gateway = await useGateway(
    t,
    `server:
  port: 0
  host: 127.0.0.1
  api_keys: [${CLIENT_KEY}]
providers:
  - name: mistral
    preset: mistral
    base_url: ${strict.baseUrl}
    api_key: sk-mistral
    limits: { rps: 1000 }
    models:
      m: { id: vendor/m-instruct, context: 200000, priority: 100 }
  - name: devstral
    base_url: ${strict.baseUrl}
    api_key: sk-devstral
    retries: 0
    models:
      d: { id: mistralai/devstral-small-2505, vision: true }
  - name: lenient
    base_url: ${lenient.baseUrl}
    api_key: sk-lenient
    models:
      m: { id: vendor/m-instruct, context: 200000 }
      d: { id: vendor/d-instruct }
  - name: learner
    base_url: ${learner.baseUrl}
    api_key: sk-learner
    retries: 0
    models:
      l: { id: vendor/l-instruct }
request_log:
  enabled: true
`,
  );
  return { strict, lenient, learner, gateway };
}

interface CapturedRequest {
  readonly path: string;
  readonly headers: Record<string, string>;
  readonly body: Record<string, unknown>;
}

function captured(step: 1 | 2): CapturedRequest {
  const url = new URL(`../fixtures/agent-cli/claude-code-2.1.197-bash-${step}.json`, import.meta.url);
  return JSON.parse(readFileSync(url, "utf8")) as CapturedRequest;
}

/** A captured request as Claude Code sent it, to `model` (its `m` is the public name the captures named). */
function replay(gateway: Scene["gateway"], request: CapturedRequest, model: string) {
  return send(gateway, "POST", request.path, {
    body: { ...request.body, model },
    headers: { ...request.headers, "x-api-key": CLIENT_KEY },
  });
}

function sentMessages(mock: MockUpstream, index: number): Message[] {
  const body = chatRequests(mock)[index]?.body as { messages: Message[] } | undefined;
  assert.ok(body !== undefined, `upstream request ${index} was sent`);
  return body.messages;
}

const AUTH = { authorization: `Bearer ${CLIENT_KEY}` };

const TOOL_THEN_USER: Message[] = [
  { role: "system", content: "You are an agent." },
  { role: "user", content: "Take a screenshot." },
  {
    role: "assistant",
    content: null,
    tool_calls: [{ id: "call_1", type: "function", function: { name: "screenshot", arguments: "{}" } }],
  },
  // An image-only tool result, as the Messages door sends it: a tool message saying so, then the image.
  { role: "tool", content: "(image attached below)", tool_call_id: "call_1" } as Message,
  { role: "user", content: [{ type: "image_url", image_url: { url: "data:image/png;base64,iVBORw0KGgo=" } }] },
];

const TOOLS = [{ type: "function", function: { name: "screenshot", parameters: { type: "object", properties: {} } } }];

const PREFILL: Message[] = [
  { role: "user", content: "Write a haiku." },
  { role: "assistant", content: "Autumn" },
];

/**
 * A Mistral model behind a server that validates messages as a typed schema and refuses unknown fields (vLLM's,
 * NIM's): its 400 as vLLM words a pydantic `extra_forbidden`. A trailing assistant without the field is served (a
 * prefix, as vLLM's Mistral tokenizer reads it).
 */
function playValidatingHost(mock: MockUpstream): void {
  mock.setDefault(CHAT_ROUTE, (request: RecordedRequest) => {
    const body = request.body as { model: string; messages: Message[] };
    const index = body.messages.findIndex((message) => "prefix" in message);
    if (index >= 0) {
      return {
        kind: "json",
        status: 400,
        body: {
          object: "error",
          message: `[{'type': 'extra_forbidden', 'loc': ('body', 'messages', ${index}, 'prefix'), 'msg': 'Extra inputs are not permitted', 'input': True}]`,
          type: "BadRequestError",
          param: null,
          code: 400,
        },
      };
    }
    return { kind: "json", body: chatCompletion("Served.", body.model) };
  });
}

/** The next request is refused with a 400 that says `message` (an `unsupported` refusal). */
function mock400Once(mock: MockUpstream, message: string): void {
  mock.enqueue(CHAT_ROUTE, {
    kind: "json",
    status: 400,
    body: { error: { message, type: "invalid_request_error", param: null, code: null } },
  });
}

/**
 * `nim`: a Mistral-family id on a validating host, no preset. `proxied`: the mistral preset (it says the host takes
 * `prefix`) in front of such a host, as a proxy or a self-hosted deployment named with the preset would be.
 */
async function hostsScene(t: Parameters<typeof useMock>[0]) {
  const [nim, proxied] = [await useMock(t), await useMock(t)];
  playValidatingHost(nim);
  playValidatingHost(proxied);
  const gateway = await useGateway(
    t,
    `server:
  port: 0
  host: 127.0.0.1
  api_keys: [${CLIENT_KEY}]
providers:
  - name: nim
    base_url: ${nim.baseUrl}
    api_key: sk-nim
    retries: 0
    models:
      m: { id: mistralai/mistral-small-24b-instruct }
  - name: proxied
    preset: mistral
    base_url: ${proxied.baseUrl}
    api_key: sk-proxied
    retries: 0
    limits: { rps: 1000 }
    models:
      m: { id: mistral-small-latest }
request_log:
  enabled: true
`,
  );
  return { nim, proxied, gateway };
}

interface OrderRecord {
  attempts: { provider: string; outcome: string; messageOrder?: string; messageChanges?: string[] }[];
}

/** The request log's chat records, newest first. */
async function orderRecords(gateway: Scene["gateway"]): Promise<OrderRecord[]> {
  const listed = await send(gateway, "GET", "/v1/gateway/requests?limit=20", { headers: AUTH });
  assert.equal(listed.status, 200, listed.text);
  return (listed.json as { data: OrderRecord[] }).data;
}

/** Each candidate's `message_order` in the route explanation of `model`, by provider. */
interface ExplainedOrder {
  order: string;
  source: string;
  prefix: string;
  learned_from: string | null;
}

async function explainedOrders(gateway: Scene["gateway"], model: string): Promise<Map<string, ExplainedOrder | null>> {
  const route = await send(gateway, "GET", `/v1/gateway/route?model=${model}`, { headers: AUTH });
  assert.equal(route.status, 200, route.text);
  const candidates = (route.json as { candidates: { provider: string; message_order: ExplainedOrder | null }[] })
    .candidates;
  return new Map(candidates.map((candidate) => [candidate.provider, candidate.message_order]));
}

describe("message order for strict providers", () => {
  test("Claude Code's two requests through the Mistral preset are served: the late system turn is folded into the user's", async (t) => {
    const { strict, lenient, gateway } = await scene(t);
    for (const step of [1, 2] as const) {
      const answer = await replay(gateway, captured(step), "mistral/m");
      assert.equal(answer.status, 200, answer.text);
      assert.match(answer.text, /Served\./);
    }
    assert.equal(chatRequests(strict).length, 2, "each request served at its first attempt");
    assert.equal(chatRequests(lenient).length, 0);
    for (const index of [0, 1]) {
      const messages = sentMessages(strict, index);
      assert.equal(mistralVerdict(messages), undefined);
      // Only the first message is a system message; the reminder Claude Code sent as a system turn is user text now.
      assert.deepEqual(
        messages.map((message) => message.role).filter((role) => role === "system"),
        ["system"],
      );
      assert.equal(messages[0]?.role, "system");
      const clientSystem = (captured(1).body.messages as { role: string; content: unknown }[]).find(
        (message) => message.role === "system",
      );
      const reminder = typeof clientSystem?.content === "string" ? clientSystem.content : JSON.stringify(clientSystem);
      const user = messages.find((message) => message.role === "user");
      assert.ok(
        JSON.stringify(user?.content).includes(JSON.stringify(reminder).slice(1, 40)),
        "the reminder is in the user turn",
      );
    }
  });

  test("a tool -> user conversation to a Mistral-family id gets an assistant turn between them and is served", async (t) => {
    const { strict, gateway } = await scene(t);
    const answer = await postChat(gateway, { model: "devstral/d", messages: TOOL_THEN_USER, tools: TOOLS }, AUTH);
    assert.equal(answer.status, 200, answer.text);
    const messages = sentMessages(strict, 0);
    assert.deepEqual(
      messages.map((message) => message.role),
      ["system", "user", "assistant", "tool", "assistant", "user"],
    );
    assert.equal(messages[4]?.content, "Ok.");
    assert.deepEqual(messages[5], TOOL_THEN_USER[4]);
    assert.equal(chatRequests(strict).length, 1);
  });

  test("tool call ids Mistral did not make (another provider's, Claude Code's toolu_) go to it as ids it takes, each call still paired with its result", async (t) => {
    const { strict, gateway } = await scene(t);
    const call = (id: string) => ({ id, type: "function", function: { name: "screenshot", arguments: "{}" } });
    const messages: Message[] = [
      { role: "user", content: "Two screenshots." },
      { role: "assistant", content: null, tool_calls: [call("toolu_01A09q90qw90lq917835lq9"), call("call_b")] },
      { role: "tool", content: "first", tool_call_id: "toolu_01A09q90qw90lq917835lq9" } as Message,
      { role: "tool", content: "second", tool_call_id: "call_b" } as Message,
      { role: "assistant", content: null, tool_calls: [call("Ab3dE5gH9")] },
      { role: "tool", content: "third", tool_call_id: "Ab3dE5gH9" } as Message,
    ];
    const answer = await postChat(gateway, { model: "mistral/m", messages, tools: TOOLS }, AUTH);
    assert.equal(answer.status, 200, answer.text);
    assert.equal(chatRequests(strict).length, 1, "served at its first attempt");
    const sent = sentMessages(strict, 0);
    const [first, second] = (sent[1]?.tool_calls ?? []) as { id: string }[];
    assert.match(first?.id ?? "", /^[a-zA-Z0-9]{9}$/);
    assert.match(second?.id ?? "", /^[a-zA-Z0-9]{9}$/);
    assert.notEqual(first?.id, second?.id);
    assert.deepEqual(
      sent.slice(2).map((message) => (message as { tool_call_id?: string }).tool_call_id ?? message.tool_calls),
      [first?.id, second?.id, [call("Ab3dE5gH9")], "Ab3dE5gH9"],
      "results keep their calls; Mistral's own id is left as it is",
    );
    assert.equal(
      messages[2] && (messages[2] as { tool_call_id?: string }).tool_call_id,
      "toolu_01A09q90qw90lq917835lq9",
    );
    const record = (await orderRecords(gateway))[0];
    assert.deepEqual(
      record?.attempts.map((attempt) => attempt.messageChanges),
      [["tool_ids_fitted"]],
    );
  });

  test("a provider not known to be strict that refuses a tool call id as Mistral does learns strict and is retried with ids it takes", async (t) => {
    const { learner, gateway } = await scene(t);
    const messages: Message[] = [
      { role: "user", content: "Screenshot." },
      {
        role: "assistant",
        content: null,
        tool_calls: [{ id: "call_xyz", type: "function", function: { name: "screenshot", arguments: "{}" } }],
      },
      { role: "tool", content: "done", tool_call_id: "call_xyz" } as Message,
    ];
    const answer = await postChat(gateway, { model: "learner/l", messages, tools: TOOLS }, AUTH);
    assert.equal(answer.status, 200, answer.text);
    assert.equal(chatRequests(learner).length, 2);
    assert.equal(answer.headers["x-gateway-attempts"], "2");
    assert.deepEqual(
      rowOf(await statsOf(gateway, AUTH), "learner/l").refused_features.map((refusal) => refusal.feature),
      ["message_order:strict"],
    );
  });

  test("a prefill (a trailing assistant message) is sent to Mistral's API (the preset) with prefix: true, and the record says so", async (t) => {
    const { strict, gateway } = await scene(t);
    const answer = await postChat(gateway, { model: "mistral/m", messages: PREFILL }, AUTH);
    assert.equal(answer.status, 200, answer.text);
    assert.deepEqual(sentMessages(strict, 0).at(-1), { role: "assistant", content: "Autumn", prefix: true });
    // The request log's record says which rewrite the attempt's messages got, and what it changed.
    const record = (await orderRecords(gateway))[0];
    assert.deepEqual(
      record?.attempts.map((attempt) => [attempt.provider, attempt.messageOrder, attempt.messageChanges]),
      [["mistral", "strict", ["prefix_marked"]]],
    );
  });

  test("a prefill to a Mistral-family id on a host not known to take `prefix` (vLLM, NIM) is sent as written, not with the field it refuses", async (t) => {
    const { nim, gateway } = await hostsScene(t);
    const answer = await postChat(gateway, { model: "nim/m", messages: PREFILL }, AUTH);
    assert.equal(answer.status, 200, answer.text);
    assert.equal(chatRequests(nim).length, 1, "served at its first attempt");
    assert.deepEqual(sentMessages(nim, 0), PREFILL);
    // Its other rules still apply: a late system turn is folded, and the record says that (not a prefix).
    const late = [...PREFILL.slice(0, 1), { role: "system", content: "Rhyme." }, ...PREFILL.slice(1)];
    const folded = await postChat(gateway, { model: "nim/m", messages: late }, AUTH);
    assert.equal(folded.status, 200, folded.text);
    assert.deepEqual(sentMessages(nim, 1), [
      { role: "user", content: "Write a haiku.\n\nRhyme." },
      { role: "assistant", content: "Autumn" },
    ]);
    const record = (await orderRecords(gateway))[0];
    assert.deepEqual(
      record?.attempts.map((attempt) => [attempt.messageOrder, attempt.messageChanges]),
      [["strict", ["system_folded"]]],
    );
  });

  test("a host that takes `prefix` by its preset but refuses it is retried at once without it, and learns it", async (t) => {
    const { proxied, gateway } = await hostsScene(t);
    const answer = await postChat(gateway, { model: "proxied/m", messages: PREFILL }, AUTH);
    assert.equal(answer.status, 200, answer.text);
    assert.equal(answer.headers["x-gateway-attempts"], "2");
    assert.deepEqual(sentMessages(proxied, 0).at(-1), { role: "assistant", content: "Autumn", prefix: true });
    assert.deepEqual(sentMessages(proxied, 1), PREFILL, "then sent without the field");
    const learned = rowOf(await statsOf(gateway, AUTH), "proxied/m").refused_features;
    assert.deepEqual(
      learned.map((refusal) => refusal.feature),
      ["message_order:prefix"],
    );
    // The route explanation says so, and why.
    const route = await send(gateway, "GET", "/v1/gateway/route?model=proxied/m", { headers: AUTH });
    const ordering = (route.json as { candidates: { message_order: Record<string, unknown> | null }[] }).candidates[0]
      ?.message_order;
    assert.equal(ordering?.order, "strict");
    assert.equal(ordering?.prefix, "remove");
    assert.match(String(ordering?.learned_from), /Extra inputs are not permitted/);
    // The next prefill goes without it at once.
    const again = await postChat(gateway, { model: "proxied/m", messages: PREFILL }, AUTH);
    assert.equal(again.status, 200, again.text);
    assert.equal(chatRequests(proxied).length, 3);
    assert.deepEqual(sentMessages(proxied, 2), PREFILL);
  });

  test("a reload that changes a provider's `assistant_prefix` forgets the `prefix` refusal it learned; the field goes again when set back", async (t) => {
    const proxied = await useMock(t);
    playValidatingHost(proxied);
    const adminKey = "admin-key-order";
    const config = (prefixLine: string, comment: string) => `# ${comment}
server:
  port: 0
  host: 127.0.0.1
  api_keys: [${CLIENT_KEY}]
  admin_keys: [${adminKey}]
providers:
  - name: proxied
    preset: mistral
    base_url: ${proxied.baseUrl}
    api_key: sk-proxied
    retries: 0
    limits: { rps: 1000 }
${prefixLine}    models:
      m: { id: mistral-small-latest }
`;
    const gateway = await useGateway(t, config("", "first"));
    const reload = async (prefixLine: string, comment: string) => {
      writeFileSync(gateway.configPath, config(prefixLine, comment));
      const reloaded = await send(gateway, "POST", "/admin/reload", {
        headers: { authorization: `Bearer ${adminKey}` },
      });
      assert.equal(reloaded.status, 200, reloaded.text);
    };
    const learned = await postChat(gateway, { model: "proxied/m", messages: PREFILL }, AUTH);
    assert.equal(learned.status, 200, learned.text);
    assert.deepEqual(
      rowOf(await statsOf(gateway, AUTH), "proxied/m").refused_features.map((refusal) => refusal.feature),
      ["message_order:prefix"],
    );
    // The operator says the host does not take the field: the lesson is the config's now.
    await reload("    assistant_prefix: false\n", "second");
    assert.deepEqual(rowOf(await statsOf(gateway, AUTH), "proxied/m").refused_features, []);
    assert.equal((await explainedOrders(gateway, "proxied/m")).get("proxied")?.prefix, "leave");
    // The host was upgraded and takes it: set back, the field goes with the next prefill.
    serveEveryChat(proxied);
    await reload("    assistant_prefix: true\n", "third");
    const marked = await postChat(gateway, { model: "proxied/m", messages: PREFILL }, AUTH);
    assert.equal(marked.status, 200, marked.text);
    assert.deepEqual(sentMessages(proxied, chatRequests(proxied).length - 1).at(-1), {
      role: "assistant",
      content: "Autumn",
      prefix: true,
    });
  });

  test("a reload that writes out what was already in force (a Mistral id's strict order, a body default the provider gives) keeps the lessons", async (t) => {
    const host = await useMock(t);
    playValidatingHost(host);
    const adminKey = "admin-key-order-defaults";
    // A vLLM host serving a Mistral-family id (strict by its id), told it takes `prefix`: it refuses the field.
    const config = (modelLine: string, comment: string) => `# ${comment}
server:
  port: 0
  host: 127.0.0.1
  api_keys: [${CLIENT_KEY}]
  admin_keys: [${adminKey}]
providers:
  - name: vllm
    base_url: ${host.baseUrl}
    api_key: sk-vllm
    retries: 0
    assistant_prefix: true
    body:
      defaults: { temperature: 0.3, top_p: 0.9 }
      drop: [logit_bias, seed]
    models:
      m: { id: mistral-small-latest${modelLine} }
`;
    const gateway = await useGateway(t, config("", "first"));
    const reload = async (modelLine: string, comment: string) => {
      writeFileSync(gateway.configPath, config(modelLine, comment));
      const reloaded = await send(gateway, "POST", "/admin/reload", {
        headers: { authorization: `Bearer ${adminKey}` },
      });
      assert.equal(reloaded.status, 200, reloaded.text);
    };
    const lessons = async () =>
      rowOf(await statsOf(gateway, AUTH), "vllm/m").refused_features.map((refusal) => refusal.feature);
    const learned = await postChat(gateway, { model: "vllm/m", messages: PREFILL }, AUTH);
    assert.equal(learned.status, 200, learned.text);
    assert.equal(learned.headers["x-gateway-attempts"], "2");
    assert.deepEqual(await lessons(), ["message_order:prefix"]);

    // The order its id gives it, written out: the same messages go; the lesson stays.
    await reload(", message_order: strict", "second");
    assert.deepEqual(await lessons(), ["message_order:prefix"], "forgotten for writing out the default order");
    // The provider's default written again on the model, the drop list in another order: the same body goes.
    await reload(
      ", message_order: strict, body: { defaults: { temperature: 0.3 }, drop: [seed, logit_bias] }",
      "third",
    );
    assert.deepEqual(await lessons(), ["message_order:prefix"], "forgotten for writing out the same body rules");
    const served = await postChat(gateway, { model: "vllm/m", messages: PREFILL }, AUTH);
    assert.equal(served.status, 200, served.text);
    assert.equal(served.headers["x-gateway-attempts"], "1", "the refused field was sent again");
    assert.deepEqual(sentMessages(host, chatRequests(host).length - 1), PREFILL);

    // A real change still forgets: another default value is another request.
    await reload(", body: { defaults: { temperature: 0.5 } }", "fourth");
    assert.deepEqual(await lessons(), []);
  });

  test("a refusal of something else that quotes a prompt naming 'prefix' teaches no prefix refusal when none was sent", async (t) => {
    const { proxied, gateway } = await hostsScene(t);
    // A content filter quoting the prompt it refused; the request had no trailing assistant, so no `prefix` went.
    const prompt = "What does the 'prefix' option of Mistral's API do?";
    mock400Once(proxied, `Unsupported content: '${prompt}' is not supported by this deployment`);
    const refused = await postChat(
      gateway,
      { model: "proxied/m", messages: [{ role: "user", content: prompt }] },
      AUTH,
    );
    assert.equal(refused.status, 400, refused.text);
    assert.equal(chatRequests(proxied).length, 1, "not retried: nothing to send otherwise");
    assert.deepEqual(
      rowOf(await statsOf(gateway, AUTH), "proxied/m").refused_features.map((refusal) => refusal.feature),
      [],
      "no lesson about prefix",
    );
    // A prefill still goes with the field the preset says the host takes.
    serveEveryChat(proxied);
    const prefill = await postChat(gateway, { model: "proxied/m", messages: PREFILL }, AUTH);
    assert.equal(prefill.status, 200, prefill.text);
    assert.deepEqual(sentMessages(proxied, 1).at(-1), { role: "assistant", content: "Autumn", prefix: true });
  });

  test("the other providers of the same config get the client's messages unchanged", async (t) => {
    const { lenient, gateway } = await scene(t);
    const late = [
      { role: "system", content: "Be brief." },
      { role: "user", content: "Hi" },
      { role: "system", content: "<system-reminder>late</system-reminder>" },
    ];
    for (const messages of [TOOL_THEN_USER, late]) {
      const answer = await postChat(gateway, { model: "lenient/d", messages, tools: TOOLS }, AUTH);
      assert.equal(answer.status, 200, answer.text);
    }
    assert.deepEqual(sentMessages(lenient, 0), TOOL_THEN_USER);
    assert.deepEqual(sentMessages(lenient, 1), late);
  });

  test("a provider not known to be strict refuses once, is retried at once with the rewrite, and is sent it from then on", async (t) => {
    const { learner, gateway } = await scene(t);
    const answer = await postChat(gateway, { model: "learner/l", messages: TOOL_THEN_USER, tools: TOOLS }, AUTH);
    assert.equal(answer.status, 200, answer.text);
    assert.equal(chatRequests(learner).length, 2);
    assert.deepEqual(sentMessages(learner, 0), TOOL_THEN_USER, "first sent as the client wrote it");
    assert.equal(mistralVerdict(sentMessages(learner, 1)), undefined, "then rewritten");
    assert.equal(answer.headers["x-gateway-attempts"], "2");
    // Kept as a learned refusal of the deployment (its lifetime, the state file, Redis, the admin reset).
    const learned = rowOf(await statsOf(gateway, AUTH), "learner/l").refused_features;
    assert.deepEqual(
      learned.map((refusal) => refusal.feature),
      ["message_order:strict"],
    );
    assert.match(learned[0]?.reason ?? "", /Unexpected role 'user' after role 'tool'/);
    const again = await postChat(gateway, { model: "learner/l", messages: TOOL_THEN_USER, tools: TOOLS }, AUTH);
    assert.equal(again.status, 200, again.text);
    assert.equal(chatRequests(learner).length, 3, "learned: the next request is rewritten at its first attempt");
    assert.equal(mistralVerdict(sentMessages(learner, 2)), undefined);
    // The records say which attempt was rewritten, and how; the route explanation, that the order was learned.
    const [latest, first] = await orderRecords(gateway);
    assert.deepEqual(
      first?.attempts.map((attempt) => [attempt.outcome, attempt.messageOrder, attempt.messageChanges]),
      [
        ["unsupported", undefined, undefined],
        // The conversation's `call_1` is no id Mistral takes either.
        ["success", "strict", ["tool_bridged", "tool_ids_fitted"]],
      ],
    );
    assert.deepEqual(latest?.attempts[0]?.messageChanges, ["tool_bridged", "tool_ids_fitted"]);
    const route = await explainedOrders(gateway, "l");
    assert.equal(route.get("learner")?.source, "learned");
    assert.match(String(route.get("learner")?.learned_from), /Unexpected role 'user' after role 'tool'/);
  });

  test("the route explanation says each candidate's order, where it comes from and what becomes of a prefill", async (t) => {
    const { gateway } = await scene(t);
    const m = await explainedOrders(gateway, "m");
    assert.deepEqual(m.get("mistral"), { order: "strict", source: "config", prefix: "mark", learned_from: null });
    assert.equal(m.get("lenient"), null, "sent as the client wrote them");
    const d = await explainedOrders(gateway, "d");
    assert.deepEqual(d.get("devstral"), { order: "strict", source: "model_id", prefix: "leave", learned_from: null });

    // `route --explain` prints the same, one line per candidate that is rewritten.
    const dir = tempDir(t);
    const path = join(dir, "config.yaml");
    writeFileSync(
      path,
      `providers:
  - name: mistral
    preset: mistral
    base_url: http://127.0.0.1:9/v1
    api_key: sk-mistral
    models:
      m: { id: vendor/m-instruct }
  - name: lenient
    base_url: http://127.0.0.1:9/v1
    api_key: sk-lenient
    models:
      m: { id: vendor/m-instruct }
`,
    );
    const result = await runCli(["route", "m", "--explain", "--config", path], { cwd: dir });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^messages: mistral\/vendor\/m-instruct strict \(config\), prefix mark$/m);
    assert.doesNotMatch(result.stdout, /messages: lenient/);
  });

  test("a 400 that echoes the client's prompt (which says \"roles must alternate\") teaches nothing: only the provider's own words do", async (t) => {
    const { learner, gateway } = await scene(t);
    // A moderation-style refusal quoting the prompt back, as validation errors and proxies do.
    learner.setDefault(CHAT_ROUTE, (request: RecordedRequest) => {
      const body = request.body as { messages: Message[] };
      const prompt = String(body.messages.at(-1)?.content);
      return {
        kind: "json",
        status: 400,
        body: {
          error: { message: `Request blocked: input '${prompt}' is not allowed`, type: "invalid_request_error" },
        },
      };
    });
    const messages = [
      { role: "user", content: "Some background." },
      { role: "user", content: "Why must chat roles must alternate in Llama 2 templates?" },
    ];
    const answer = await postChat(gateway, { model: "learner/l", messages }, AUTH);
    assert.equal(answer.status, 400, answer.text);
    assert.match(answer.text, /Request blocked/);
    assert.equal(chatRequests(learner).length, 1, "not retried in another order");
    assert.deepEqual(rowOf(await statsOf(gateway, AUTH), "learner/l").refused_features, [], "nothing learned");
    // The next request goes as the client wrote it (its two user turns not merged).
    learner.setDefault(CHAT_ROUTE, (request: RecordedRequest) => ({
      kind: "json",
      body: chatCompletion("Served.", (request.body as { model: string }).model),
    }));
    const again = await postChat(gateway, { model: "learner/l", messages }, AUTH);
    assert.equal(again.status, 200, again.text);
    assert.deepEqual(sentMessages(learner, 1), messages);
  });

  test('a 400 that only echoes a prompt saying "roles must alternate" is the client\'s: returned after one attempt, the second candidate not asked', async (t) => {
    const [first, second] = [await useMock(t), await useMock(t)];
    // A moderation-style refusal quoting the prompt back; nothing in it is the provider's own role-order wording.
    first.setDefault(CHAT_ROUTE, (request: RecordedRequest) => {
      const prompt = String((request.body as { messages: Message[] }).messages.at(-1)?.content);
      return {
        kind: "json",
        status: 400,
        body: {
          error: { message: `Request blocked: input '${prompt}' is not allowed`, type: "invalid_request_error" },
        },
      };
    });
    second.setDefault(CHAT_ROUTE, (request: RecordedRequest) => ({
      kind: "json",
      body: chatCompletion("Served.", (request.body as { model: string }).model),
    }));
    const gateway = await useGateway(
      t,
      `providers:
  - name: first
    base_url: ${first.baseUrl}
    api_key: sk-first
    models:
      m: { id: vendor/m-instruct, priority: 100 }
  - name: second
    base_url: ${second.baseUrl}
    api_key: sk-second
    models:
      m: { id: vendor/m-instruct }
request_log:
  enabled: true
`,
    );
    const prompt = "Why must chat roles must alternate in Llama 2 templates?";
    const answer = await postChat(gateway, { model: "m", messages: [{ role: "user", content: prompt }] });
    assert.equal(answer.status, 400, answer.text);
    assert.match(answer.text, /Request blocked: input 'Why must chat roles must alternate/);
    assert.equal(chatRequests(first).length, 1);
    assert.equal(chatRequests(second).length, 0, "the client's own 400 is not failed over");
    const { records } = await recordsOf(gateway, "chat");
    assert.deepEqual(
      records[0]?.attempts.map((attempt) => [attempt.provider, attempt.outcome]),
      [["first", "rejected"]],
    );
    // The provider's own alternation wording (not in the request) is still a refusal to fail over from.
    first.setDefault(CHAT_ROUTE, () => ({
      kind: "json",
      status: 400,
      body: {
        error: {
          message: "Conversation roles must alternate user/assistant/user/assistant/...",
          type: "BadRequestError",
        },
      },
    }));
    const served = await postChat(gateway, { model: "m", messages: [{ role: "user", content: "hello" }] });
    assert.equal(served.status, 200, served.text);
    assert.equal(chatRequests(second).length, 1);
  });

  test("with no attempt left for the retry in order, the client gets the provider's refusal (a 400), not a gateway error", async (t) => {
    const learner = await useMock(t);
    playMistral(learner);
    const gateway = await useGateway(
      t,
      `server:
  port: 0
  host: 127.0.0.1
  api_keys: [${CLIENT_KEY}]
routing:
  max_attempts: 1
providers:
  - name: learner
    base_url: ${learner.baseUrl}
    api_key: sk-learner
    retries: 0
    models:
      l: { id: vendor/l-instruct }
`,
    );
    const answer = await postChat(gateway, { model: "learner/l", messages: TOOL_THEN_USER, tools: TOOLS }, AUTH);
    assert.equal(chatRequests(learner).length, 1, "max_attempts 1: no retry");
    assert.equal(answer.status, 400, answer.text);
    assert.match(answer.text, /Unexpected role 'user' after role 'tool'/);
    // Learned all the same: the next request is sent in order at once.
    const again = await postChat(gateway, { model: "learner/l", messages: TOOL_THEN_USER, tools: TOOLS }, AUTH);
    assert.equal(again.status, 200, again.text);
    assert.equal(mistralVerdict(sentMessages(learner, 1)), undefined);
  });

  test("a chat template's alternation refusal is learned as `alternate`: consecutive user messages merged", async (t) => {
    const { learner, gateway } = await scene(t);
    playAlternatingHost(learner);
    const messages = [
      { role: "system", content: "s" },
      { role: "user", content: "<system_reminder>r</system_reminder>" },
      { role: "user", content: "hello" },
    ];
    const answer = await postChat(gateway, { model: "learner/l", messages }, AUTH);
    assert.equal(answer.status, 200, answer.text);
    assert.deepEqual(sentMessages(learner, 1), [
      { role: "system", content: "s" },
      { role: "user", content: "<system_reminder>r</system_reminder>\n\nhello" },
    ]);
  });
});
