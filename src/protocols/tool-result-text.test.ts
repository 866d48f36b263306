import assert from "node:assert/strict";
import { test } from "node:test";
import type { ChatContentPart } from "./chat-completions.ts";
import { EMPTY_TOOL_RESULT_TEXT, filledToolResults, toolResultText } from "./tool-result-text.ts";

const image: ChatContentPart = { type: "image_url", image_url: { url: "data:image/png;base64,AAAA" } };
const file: ChatContentPart = { type: "file", file: { file_data: "data:application/pdf;base64,AAAA" } };

test("a tool result of images or files only says what follows it; text is left as it is; none at all gets a placeholder", () => {
  assert.equal(toolResultText("", [image]), "(image attached below)");
  assert.equal(toolResultText("", [image, image, image]), "(3 images attached below)");
  assert.equal(toolResultText("", [file]), "(file attached below)");
  assert.equal(toolResultText("", [image, file, file]), "(image and 2 files attached below)");
  assert.equal(toolResultText("Screenshot:", [image]), "Screenshot:");
  assert.equal(toolResultText("", []), EMPTY_TOOL_RESULT_TEXT);
  assert.equal(toolResultText(" \n", []), EMPTY_TOOL_RESULT_TEXT, "white space only is refused as empty too");
  assert.equal(toolResultText("0", []), "0");
});

test("the chat door's empty tool messages are filled; others, and a request without any, are left as they came", () => {
  const filled = { role: "tool", tool_call_id: "c", content: EMPTY_TOOL_RESULT_TEXT };
  assert.deepEqual(
    filledToolResults([
      { role: "user", content: "" },
      { role: "tool", tool_call_id: "c", content: "" },
      { role: "tool", tool_call_id: "c", content: "  " },
      { role: "tool", tool_call_id: "c", content: null },
      { role: "tool", tool_call_id: "c" },
      { role: "tool", tool_call_id: "c", content: [] },
      { role: "tool", tool_call_id: "c", content: [{ type: "text", text: "" }] },
      { role: "tool", tool_call_id: "c", content: [{ type: "text", text: "ok" }] },
      { role: "tool", tool_call_id: "c", content: "ok" },
    ]),
    [
      { role: "user", content: "" },
      filled,
      filled,
      filled,
      filled,
      filled,
      filled,
      { role: "tool", tool_call_id: "c", content: [{ type: "text", text: "ok" }] },
      { role: "tool", tool_call_id: "c", content: "ok" },
    ],
  );
  // Llama 3.1's and ChatGLM3's tool-result roles are filled alike; `function` (OpenAI's deprecated one) is not.
  assert.deepEqual(
    filledToolResults([
      { role: "ipython", content: null },
      { role: "observation", content: " " },
      { role: "function", name: "f", content: null },
    ]),
    [
      { role: "ipython", content: EMPTY_TOOL_RESULT_TEXT },
      { role: "observation", content: EMPTY_TOOL_RESULT_TEXT },
      { role: "function", name: "f", content: null },
    ],
  );
  assert.equal(filledToolResults([{ role: "tool", tool_call_id: "c", content: "ok" }]), undefined);
  assert.equal(filledToolResults("junk"), undefined);
  assert.equal(filledToolResults([null, 3, { role: "tool", content: [null] }]), undefined);
});
