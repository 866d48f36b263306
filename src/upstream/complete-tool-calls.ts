// A chat answer's tool calls as OpenAI writes them, which the SDKs' schemas require: `type: "function"` and
// `function.arguments` a JSON string. A few providers leave `type` out, send the arguments as the object itself, or
// send `""` for a call without any (the Agents SDK then tells the model its arguments were not valid JSON), or give
// a call no `id` (a client needs one to send the call back with its result; llama.cpp and LM Studio answered so):
// passed on as they came, the AI SDK's chat provider refused the answer on its schema and the `openai` SDK's
// `runTools()` failed to parse the arguments. (Streamed calls: streaming/tool-call-deltas.ts; the Responses and
// Messages doors read either form.)

import { randomBytes } from "node:crypto";
import { isRecord } from "../is-record.ts";

/** Completes the answer's tool calls in place; returns whether anything changed (then the body is written again). */
export function completeToolCalls(answer: Record<string, unknown>): boolean {
  const choices = answer.choices;
  if (!Array.isArray(choices)) return false;
  let isChanged = false;
  for (const choice of choices) {
    const calls = isRecord(choice) && isRecord(choice.message) ? choice.message.tool_calls : undefined;
    if (!Array.isArray(calls)) continue;
    for (const call of calls) {
      if (!isRecord(call)) continue;
      if (typeof call.id !== "string" || call.id === "") {
        call.id = `call_${randomBytes(12).toString("hex")}`;
        isChanged = true;
      }
      if (call.type === undefined || call.type === null) {
        // A freeform call (`custom: {name, input}`) without its type is a custom one, not a function of no arguments.
        call.type = isRecord(call.custom) && !isRecord(call.function) ? "custom" : "function";
        isChanged = true;
      }
      const fn = call.function;
      if (!isRecord(fn) || (typeof fn.arguments === "string" && fn.arguments.trim() !== "")) continue;
      // No arguments at all (or `""`, as some providers send for a function without parameters) is a call without
      // any: `{}`, what OpenAI sends and a client's JSON.parse can read.
      fn.arguments =
        fn.arguments === undefined || fn.arguments === null || typeof fn.arguments === "string"
          ? "{}"
          : JSON.stringify(fn.arguments);
      isChanged = true;
    }
  }
  return isChanged;
}

/**
 * Whether a call names its tool: one without a name cannot be run by the client (the Messages door made it a
 * nameless tool_use), and the answer is no answer. A freeform `custom` call (of a `custom` tool the client offered)
 * names it in `custom`, not `function`.
 */
export function isNamedCall(call: unknown): boolean {
  if (!isRecord(call)) return false;
  const named = call.type === "custom" ? call.custom : call.function;
  return isRecord(named) && typeof named.name === "string" && named.name !== "";
}
