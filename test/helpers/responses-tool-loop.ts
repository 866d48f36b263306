// The OpenAI Responses client's (Codex's) two-turn tool loop with one `get_weather` tool, as the e2e tests of what a
// provider needs given back on the next turn (Gemini's thought signatures, OpenRouter's reasoning_details) drive it:
// the first turn calls the tool, the next one sends the call back as Codex rebuilds it, with the tool's result.
import assert from "node:assert/strict";
import OpenAI from "openai";
import { finished } from "./background-steps.ts";
import type { TestGateway } from "./gateway.ts";

const QUESTION = { role: "user" as const, content: "Weather in Paris?" };

type FunctionTool = OpenAI.Responses.FunctionTool;

/** The call the first turn answered with, as a client keeps it. */
interface KeptCall {
  readonly callId: string;
  readonly name: string;
  readonly args: string;
}

/**
 * The loop on `gateway` (the first turn streamed or not): the first turn must call the tool as `expectedCallId`; the
 * answer's text of the next turn (`store: false`). `isBackground`: the first turn is a background run instead, polled
 * to its end, whose output must hold that call.
 */
export async function responsesToolLoop(
  gateway: TestGateway,
  isStream: boolean,
  expectedCallId: string,
  options: { readonly isBackground?: boolean } = {},
): Promise<string> {
  const client = new OpenAI({ baseURL: gateway.baseUrl, apiKey: "x", maxRetries: 0 });
  if (options.isBackground === true) return backgroundToolLoop(client, isStream, expectedCallId);
  const tools: FunctionTool[] = [
    {
      type: "function",
      name: "get_weather",
      description: "Current weather for a city",
      parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
      strict: false,
    },
  ];
  const call = isStream ? await streamedCall(client, tools) : await answeredCall(client, tools);
  assert.equal(call.callId, expectedCallId);
  // As Codex does: the call rebuilt from what it kept (no id of the gateway's, no field it did not know).
  return nextTurn(client, tools, call);
}

async function backgroundToolLoop(client: OpenAI, isStream: boolean, expectedCallId: string): Promise<string> {
  const tools: FunctionTool[] = [
    { type: "function", name: "get_weather", parameters: { type: "object", properties: {} }, strict: false },
  ];
  let id = "";
  if (isStream) {
    const stream = await client.responses.create({
      model: "m",
      tools,
      input: [QUESTION],
      background: true,
      stream: true,
    });
    for await (const event of stream) if (event.type === "response.created") id = event.response.id;
  } else {
    id = (await client.responses.create({ model: "m", tools, input: [QUESTION], background: true })).id;
  }
  const done = await finished(client, id);
  const call = done.output.find((item) => item.type === "function_call");
  assert.equal(call?.call_id, expectedCallId, JSON.stringify(done.output));
  return nextTurn(client, tools, { callId: expectedCallId, name: "get_weather", args: call?.arguments ?? "{}" });
}

async function streamedCall(client: OpenAI, tools: FunctionTool[]): Promise<KeptCall> {
  const stream = await client.responses.create({ model: "m", store: false, tools, input: [QUESTION], stream: true });
  let call: KeptCall = { callId: "", name: "", args: "" };
  for await (const event of stream) {
    if (event.type === "response.output_item.done" && event.item.type === "function_call") {
      call = { callId: event.item.call_id, name: event.item.name, args: event.item.arguments };
    }
  }
  return call;
}

async function answeredCall(client: OpenAI, tools: FunctionTool[]): Promise<KeptCall> {
  const first = await client.responses.create({ model: "m", store: false, tools, input: [QUESTION] });
  const item = first.output.find((output) => output.type === "function_call");
  return { callId: item?.call_id ?? "", name: item?.name ?? "", args: item?.arguments ?? "" };
}

/** The next turn: the question, the call and the tool's result ("sunny"); the answer's text. */
async function nextTurn(client: OpenAI, tools: FunctionTool[], call: KeptCall): Promise<string> {
  const answer = await client.responses.create({
    model: "m",
    store: false,
    tools,
    input: [
      QUESTION,
      { type: "function_call", call_id: call.callId, name: call.name, arguments: call.args },
      { type: "function_call_output", call_id: call.callId, output: "sunny" },
    ],
  });
  return answer.output_text;
}
