// A stream whose one choice carries an odd `index` (`null`, `"0"`, -1: OpenAI-compatible servers and hostile ones) is
// still the answer's first choice (chat-choice.ts firstChunkChoice), as before 2026-12-07: read by `index` 0 alone, its
// text was nobody's, so a cut stream was continued from no delivered text and the client got the answer twice.
import assert from "node:assert/strict";
import { test } from "node:test";
import { chatStream, type SseScript } from "../helpers/mock-upstream.ts";
import { CHAT_ROUTE, MODEL, startTwoProviders } from "../helpers/two-providers.ts";

for (const index of ["0", null, -1]) {
  test(`a cut stream whose choice's index is ${JSON.stringify(index)} is continued from what it delivered`, async (t) => {
    const scene = await startTwoProviders(t);
    const events = chatStream([" one", " two"], MODEL)
      .slice(0, 3)
      .map((step) => {
        const data = (step as { data: { choices: Record<string, unknown>[] } }).data;
        return { data: { ...data, choices: data.choices.map((choice) => ({ ...choice, index })) } } as SseScript;
      });
    scene.primary.enqueue(CHAT_ROUTE, { kind: "sse", events, end: "destroy" });
    scene.backup.enqueue(CHAT_ROUTE, { kind: "sse", events: chatStream([" one", " two", " three"], MODEL) });
    const stream = await scene.client.chat.completions.create({
      model: MODEL,
      messages: [{ role: "user", content: "Count to three." }],
      stream: true,
    });
    let text = "";
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? "";
    // Before: " one two one two three" (the replay's repetition was not dropped: nothing was known delivered).
    assert.equal(text, " one two three");
    assert.equal(scene.backup.requests.length, 1);
  });
}
