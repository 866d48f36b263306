// The Batch API tests' shared scene: the mock's echo answer, the provider config, an input file's lines, and the
// upload -> create -> poll -> read steps driven through the real `openai` SDK.
import assert from "node:assert/strict";
import type { TestContext } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import type OpenAI from "openai";
import { toFile } from "openai";
import type { Batch } from "openai/resources/batches";
import { CHAT_ROUTE, openAiClient, useGateway, useMock } from "./e2e.ts";
import { chatCompletion, type MockUpstream, type RecordedRequest } from "./mock-upstream.ts";

export const UPSTREAM_ID = "vendor/m-instruct";

/**
 * The mock answers each chat request with "echo: <last user message>" (after `delayMs` when given), so a result
 * shows which line it is.
 */
export function echoing(mock: MockUpstream, delayMs?: number, gate?: Promise<void>): void {
  mock.setDefault(CHAT_ROUTE, (request: RecordedRequest) => {
    const content = (request.body as { messages: { content: string }[] }).messages.at(-1)?.content ?? "";
    const body = chatCompletion(`echo: ${content}`, UPSTREAM_ID);
    if (gate !== undefined) {
      // Answered only once the test opens the gate (after its own step, however slow the machine), then delayMs.
      return {
        kind: "handler",
        handle: async (_request, response) => {
          await gate;
          if (delayMs !== undefined) await new Promise((resolve) => setTimeout(resolve, delayMs));
          response.writeHead(200, { "content-type": "application/json" });
          response.end(JSON.stringify(body));
        },
      };
    }
    return delayMs === undefined ? { kind: "json", body } : { kind: "json", body, delayMs };
  });
}

/**
 * One provider `alpha` serving model `m`; `modelKeys` is appended inside the model's flow mapping, `moreModels` (whole
 * lines, indented as `m`'s) after it. The text ends inside the `providers` list: another provider may follow.
 */
export function providersYaml(
  mock: MockUpstream,
  options: { apiKey?: string; modelKeys?: string; moreModels?: string } = {},
): string {
  return `providers:
  - name: alpha
    base_url: ${mock.baseUrl}
    api_key: ${options.apiKey ?? "sk-alpha"}
    models:
      m: { id: ${UPSTREAM_ID}${options.modelKeys ?? ""} }
${options.moreModels ?? ""}`;
}

/**
 * The echoing chat model `m` and an embeddings model `e` (one vector [0.5, 0.25] per request) on one provider, a
 * gateway over them and an openai client of it: the scene of batches with lines for several endpoints.
 */
export async function chatAndEmbeddingsScene(t: TestContext) {
  const mock = await useMock(t);
  echoing(mock);
  mock.setDefault("POST /v1/embeddings", {
    kind: "json",
    body: {
      object: "list",
      data: [{ object: "embedding", index: 0, embedding: [0.5, 0.25] }],
      model: "e",
      usage: { prompt_tokens: 3, total_tokens: 3 },
    },
  });
  const gateway = await useGateway(t, providersYaml(mock, { moreModels: "      e: { kind: embedding }\n" }));
  return { mock, gateway, client: openAiClient(gateway) };
}

export function chatLine(customId: string, content: string, model = "m"): string {
  return JSON.stringify({
    custom_id: customId,
    method: "POST",
    url: "/v1/chat/completions",
    body: { model, messages: [{ role: "user", content }] },
  });
}

export async function upload(client: OpenAI, text: string, name = "input.jsonl") {
  return client.files.create({ file: await toFile(Buffer.from(text), name), purpose: "batch" });
}

/** A chat-completions batch over the 24 h window (the only one there is). */
export async function createBatch(client: OpenAI, inputFileId: string) {
  return client.batches.create({
    input_file_id: inputFileId,
    endpoint: "/v1/chat/completions",
    completion_window: "24h",
  });
}

export async function waitForBatch(
  client: OpenAI,
  id: string,
  isDone: (batch: Batch) => boolean,
  timeoutMs = 15_000,
): Promise<Batch> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const batch = await client.batches.retrieve(id);
    if (isDone(batch)) return batch;
    if (Date.now() > deadline) assert.fail(`batch ${id} still ${batch.status}: ${JSON.stringify(batch)}`);
    await sleep(50);
  }
}

export const isFinished = (batch: Batch): boolean =>
  ["completed", "failed", "expired", "cancelled"].includes(batch.status);

/** The JSON lines of an output or error file; none when the batch has no such file. */
export async function linesOf(client: OpenAI, fileId: string | null | undefined): Promise<Record<string, unknown>[]> {
  if (fileId === null || fileId === undefined) return [];
  const text = await (await client.files.content(fileId)).text();
  return text
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

/**
 * One line's batch run to its end on `endpoint` (upload, create, poll), and the line of its error file: the finished
 * batch (for its counts and usage) and that line's `response` (its status code and body), asserted present.
 */
export async function runOneFailingLine(
  client: OpenAI,
  endpoint: "/v1/chat/completions" | "/v1/responses",
  body: Record<string, unknown>,
): Promise<{ batch: Batch; response: { status_code: number; body: { error: { code: string } } } }> {
  const line = JSON.stringify({ custom_id: "one", method: "POST", url: endpoint, body });
  const file = await upload(client, line);
  const created = await client.batches.create({ input_file_id: file.id, endpoint, completion_window: "24h" });
  const batch = await waitForBatch(client, created.id, isFinished, 30_000);
  const [errorLine] = await linesOf(client, batch.error_file_id);
  assert.ok(errorLine, JSON.stringify(batch));
  return { batch, response: errorLine.response as { status_code: number; body: { error: { code: string } } } };
}

/** The last user message of each chat request the mock got, in order: which lines were sent, and how often. */
export function sentContents(mock: MockUpstream): (string | undefined)[] {
  return mock.requests
    .filter((request) => request.path === "/v1/chat/completions")
    .map((request) => (request.body as { messages: { content: string }[] }).messages.at(-1)?.content);
}

/** Waits for the batch to finish and asserts it completed with each of its `total` lines served, none failed. */
export async function waitForCompleted(client: OpenAI, id: string, total: number, timeoutMs = 15_000): Promise<Batch> {
  const done = await waitForBatch(client, id, isFinished, timeoutMs);
  assert.equal(done.status, "completed", JSON.stringify(done));
  assert.deepEqual(done.request_counts, { total, completed: total, failed: 0 });
  return done;
}

/** The `server:` section with the given `api_keys` entries (flow mappings): named clients, each key its own. */
export function serverWithKeys(...keys: string[]): string {
  return `server:
  port: 0
  host: 127.0.0.1
  api_keys:
${keys.map((key) => `    - ${key}\n`).join("")}`;
}

/** Two named clients: `team-a` (key sk-team-a) and `team-b` (key sk-team-b). */
export const TWO_TEAMS_YAML = serverWithKeys("{ key: sk-team-a, name: team-a }", "{ key: sk-team-b, name: team-b }");
