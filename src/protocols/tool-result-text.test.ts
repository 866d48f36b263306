import assert from "node:assert/strict";
import { test } from "node:test";
import type { ChatContentPart } from "./chat-completions.ts";
import { toolResultText } from "./tool-result-text.ts";

const image: ChatContentPart = { type: "image_url", image_url: { url: "data:image/png;base64,AAAA" } };
const file: ChatContentPart = { type: "file", file: { file_data: "data:application/pdf;base64,AAAA" } };

test("a tool result of images or files only says what follows it; text, or nothing attached, is left as it is", () => {
  assert.equal(toolResultText("", [image]), "(image attached below)");
  assert.equal(toolResultText("", [image, image, image]), "(3 images attached below)");
  assert.equal(toolResultText("", [file]), "(file attached below)");
  assert.equal(toolResultText("", [image, file, file]), "(image and 2 files attached below)");
  assert.equal(toolResultText("Screenshot:", [image]), "Screenshot:");
  assert.equal(toolResultText("", []), "");
});
