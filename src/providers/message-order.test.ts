import assert from "node:assert/strict";
import { test } from "node:test";
import {
  BRIDGE_ASSISTANT_TEXT,
  type MessageOrdering,
  messageOrderOf,
  orderMessages,
  orderMessagesWithChanges,
} from "./message-order.ts";
import { isMessageFieldRefusal, isPrefixRefusal, orderRefusedBy } from "./order-refusals.ts";

/** `strict` for a host that takes Mistral's `prefix` (the mistral and codestral presets). */
const MARKING: MessageOrdering = { order: "strict", prefix: "mark" };

test("message order: a system turn after the user's is folded into the last user message when none follows", () => {
  const messages = [
    { role: "system", content: "You are Claude Code." },
    { role: "user", content: [{ type: "text", text: "run ls" }] },
    { role: "system", content: "<system-reminder>be brief</system-reminder>" },
  ];
  assert.deepEqual(orderMessages(messages, "strict"), [
    { role: "system", content: "You are Claude Code." },
    {
      role: "user",
      content: [
        { type: "text", text: "run ls" },
        { type: "text", text: "<system-reminder>be brief</system-reminder>" },
      ],
    },
  ]);
  // The client's objects are untouched.
  assert.deepEqual(messages[1], { role: "user", content: [{ type: "text", text: "run ls" }] });
});

test("message order: a late system turn goes before the next user message's text", () => {
  const messages = [
    { role: "user", content: "hi" },
    { role: "assistant", content: "hello" },
    { role: "system", content: [{ type: "text", text: "Be terse." }] },
    { role: "user", content: "why?" },
  ];
  assert.deepEqual(orderMessages(messages, "strict"), [
    { role: "user", content: "hi" },
    { role: "assistant", content: "hello" },
    { role: "user", content: "Be terse.\n\nwhy?" },
  ]);
});

test("message order: a trailing system turn after an answer becomes a user turn (not a prefix of that answer)", () => {
  const messages = [
    { role: "user", content: "hi" },
    { role: "assistant", content: "hello" },
    { role: "system", content: "Now summarise." },
  ];
  assert.deepEqual(orderMessages(messages, "strict"), [
    { role: "user", content: "hi" },
    { role: "assistant", content: "hello" },
    { role: "user", content: "Now summarise." },
  ]);
});

test("message order: a user turn right after tool results gets a non-empty assistant turn between them", () => {
  const call = { id: "c1", type: "function", function: { name: "ls", arguments: "{}" } };
  const messages = [
    { role: "user", content: "list" },
    { role: "assistant", content: null, tool_calls: [call] },
    { role: "tool", tool_call_id: "c1", content: "" },
    { role: "user", content: [{ type: "image_url", image_url: { url: "data:image/png;base64,AA==" } }] },
  ];
  const ordered = orderMessages(messages, "strict");
  assert.deepEqual(ordered[3], { role: "assistant", content: BRIDGE_ASSISTANT_TEXT });
  assert.notEqual(BRIDGE_ASSISTANT_TEXT, "");
  assert.equal(ordered.length, 5);
  assert.equal(ordered[4], messages[3]);
});

test("message order: strict marks a trailing assistant as a prefix; a tool call or `alternate` is left as is", () => {
  const prefill = [
    { role: "user", content: "Say a poem" },
    { role: "assistant", content: "Roses are" },
  ];
  assert.deepEqual(orderMessages(prefill, MARKING).at(-1), { role: "assistant", content: "Roses are", prefix: true });
  // A host not known to take `prefix` gets the trailing assistant as the client wrote it.
  assert.equal(orderMessages(prefill, "strict"), prefill);
  assert.equal(orderMessages(prefill, "alternate"), prefill);
  const calling = [
    { role: "user", content: "x" },
    { role: "assistant", content: null, tool_calls: [{ id: "c0ffee123" }] },
  ];
  assert.equal(orderMessages(calling, "strict"), calling);
});

test("message order: consecutive user messages are merged only for `alternate`", () => {
  const messages = [
    { role: "system", content: "s" },
    { role: "user", content: "<system_reminder>r</system_reminder>" },
    { role: "user", content: "hello" },
    { role: "user", content: [{ type: "image_url", image_url: { url: "u" } }] },
  ];
  assert.equal(orderMessages(messages, "strict"), messages);
  assert.deepEqual(orderMessages(messages, "alternate"), [
    { role: "system", content: "s" },
    {
      role: "user",
      content: [
        { type: "text", text: "<system_reminder>r</system_reminder>\n\nhello" },
        { type: "image_url", image_url: { url: "u" } },
      ],
    },
  ]);
});

test("message order: messages already in order, `any`, and malformed input are returned as they came", () => {
  const fine = [
    { role: "system", content: "s" },
    { role: "user", content: "u" },
  ];
  assert.equal(orderMessages(fine, "strict"), fine);
  const late = [...fine, { role: "system", content: "late" }];
  assert.equal(orderMessages(late, "any"), late);
  const odd = [{ role: "user", content: "u" }, "not a message", { role: "system", content: "x" }];
  assert.equal(orderMessages(odd, "strict"), odd);
  const noUser = [
    { role: "assistant", content: "a" },
    { role: "system", content: "s" },
  ];
  assert.deepEqual(orderMessages(noUser, "alternate"), [
    { role: "assistant", content: "a" },
    { role: "user", content: "s" },
  ]);
});

test("message order: a late system turn without text is kept in place (nothing dropped); an empty one goes", () => {
  const image = { role: "system", content: [{ type: "image_url", image_url: { url: "u" } }] };
  const messages = [{ role: "user", content: "u" }, image, { role: "system", content: "" }];
  assert.deepEqual(orderMessages(messages, "strict"), [{ role: "user", content: "u" }, image]);
});

test("message order: configured wins, Mistral-family ids default to strict, a learned order only raises it", () => {
  assert.equal(messageOrderOf(undefined, undefined, "mistralai/devstral-small-2505", undefined), "strict");
  for (const id of ["ministral-8b", "Magistral-Medium", "codestral-latest", "pixtral-12b", "mixtral-8x7b"])
    assert.equal(messageOrderOf(undefined, undefined, id, undefined), "strict", id);
  assert.equal(messageOrderOf(undefined, undefined, "llama-3.3-70b", undefined), "any");
  assert.equal(messageOrderOf(undefined, "strict", "llama-3.3-70b", undefined), "strict");
  assert.equal(messageOrderOf("any", "strict", "mistral-large", undefined), "any");
  assert.equal(messageOrderOf(undefined, undefined, "mistral-large", "alternate"), "alternate");
  assert.equal(messageOrderOf("alternate", undefined, "gemma", "strict"), "alternate");
  assert.equal(messageOrderOf("any", undefined, "m", "strict"), "strict");
});

test("message order: the refusals that teach an order", () => {
  assert.equal(
    orderRefusedBy({
      message: "Expected last role User or Tool (or Assistant with prefix True) for serving but got assistant",
    }),
    "strict",
  );
  assert.equal(orderRefusedBy({ message: "Unexpected role 'user' after role 'tool'" }), "strict");
  assert.equal(
    orderRefusedBy({
      message: "After the optional system message, conversation roles must alternate user/assistant/user/assistant...",
    }),
    "alternate",
  );
  assert.equal(
    orderRefusedBy({ message: "Conversation roles must alternate user/assistant/user/assistant/..." }),
    "alternate",
  );
  assert.equal(orderRefusedBy({ message: "'seed' is not supported" }), undefined);
  assert.equal(orderRefusedBy({ message: "Invalid 'messages[0].role': unexpected" }), undefined);
});

test("message order: a late system turn before a trailing assistant prefill stays before it (the prefill is continued, not answered)", () => {
  // A client's prefill, or the gateway's own stream continuation (continuation-source.ts withPrefill) of a request
  // whose last turn was a system reminder: the delivered text must stay the conversation's end, marked a prefix.
  const messages = [
    { role: "user", content: "Write a poem" },
    { role: "system", content: "Rhyme." },
    { role: "assistant", content: "Roses are" },
  ];
  assert.deepEqual(orderMessages(messages, MARKING), [
    { role: "user", content: "Write a poem\n\nRhyme." },
    { role: "assistant", content: "Roses are", prefix: true },
  ]);
  assert.deepEqual(orderMessages(messages, "alternate"), [
    { role: "user", content: "Write a poem\n\nRhyme." },
    { role: "assistant", content: "Roses are" },
  ]);
});

test("message order: a late system turn between two assistant turns becomes a user turn in its place", () => {
  const messages = [
    { role: "user", content: "hi" },
    { role: "assistant", content: "hello" },
    { role: "system", content: "Now in French." },
    { role: "assistant", content: "Bonjour" },
  ];
  assert.deepEqual(orderMessages(messages, MARKING), [
    { role: "user", content: "hi" },
    { role: "assistant", content: "hello" },
    { role: "user", content: "Now in French." },
    { role: "assistant", content: "Bonjour", prefix: true },
  ]);
});

test("message order: a refusal phrase that is also in the request (an echo of it) teaches nothing; the error's type does", () => {
  const request = { messages: [{ role: "user", content: "Explain why chat roles must alternate in Llama 2." }] };
  const echo = {
    message: `Invalid request: prompt 'Explain why chat roles must alternate in Llama 2.' contains a blocked word`,
  };
  assert.equal(orderRefusedBy(echo), "alternate", "without the request, the words alone are taken");
  assert.equal(orderRefusedBy(echo, request), undefined);
  // The provider's own wording counts even when the prompt carries another refusal phrase.
  assert.equal(
    orderRefusedBy(
      { message: "Unexpected role 'user' after role 'tool'" },
      { messages: [{ content: "roles must alternate" }] },
    ),
    "strict",
  );
  // Mistral's error type is its own field, never an echo.
  assert.equal(
    orderRefusedBy(
      { message: "Unexpected role 'user' after role 'tool'", type: "invalid_request_message_order" },
      {
        messages: [{ content: "Unexpected role 'user' after role 'tool'" }],
      },
    ),
    "strict",
  );
});

test("message order: a refusal of the `prefix` field is told from its param or its words", () => {
  assert.equal(isPrefixRefusal({ message: "messages.1.prefix: Extra inputs are not permitted" }), true);
  assert.equal(isPrefixRefusal({ message: "Extra inputs are not permitted", param: "messages[1].prefix" }), true);
  assert.equal(isPrefixRefusal({ message: "Additional properties are not allowed ('prefix' was unexpected)" }), true);
  assert.equal(isPrefixRefusal({ message: "'seed' is not supported" }), false);
  assert.equal(isPrefixRefusal({ message: "prefix caching is not supported" }), false);
});

test("message order: a refusal of `reasoning_content` is told from its param or its words, not from an echo", () => {
  const refused = (message: string, param?: string, request?: unknown) =>
    isMessageFieldRefusal("reasoning_content", param === undefined ? { message } : { message, param }, request);
  const cerebras =
    "messages.2.assistant.reasoning_content: property 'messages.2.assistant.reasoning_content' is unsupported";
  assert.equal(refused(cerebras), true);
  assert.equal(refused("messages.1.reasoning_content: Extra inputs are not permitted"), true);
  assert.equal(refused("Extra inputs are not permitted", "messages[1].reasoning_content"), true);
  assert.equal(refused("'seed' is not supported"), false);
  assert.equal(refused("reasoning is not supported"), false);
  // A prompt that asks about the field, quoted back by a filter: a copy of the request, no lesson.
  const prompt = "Why is 'reasoning_content' refused?";
  assert.equal(refused(`Flagged: ${prompt}`, undefined, { messages: [{ role: "user", content: prompt }] }), false);
  // The field removed: in any order, the client's objects untouched.
  const messages = [
    { role: "user", content: "Hi" },
    { role: "assistant", content: "Hello.", reasoning_content: "Greet back." },
    { role: "user", content: "And?" },
  ];
  const removed = orderMessagesWithChanges(messages, { order: "any", prefix: "leave", reasoning: "remove" });
  assert.deepEqual(removed.changes, ["reasoning_removed"]);
  assert.deepEqual(removed.messages[1], { role: "assistant", content: "Hello." });
  assert.equal(messages[1]?.reasoning_content, "Greet back.");
});

test("message order: what a rewrite changed is said; a learned `prefix` refusal removes the field in any order", () => {
  const call = { id: "c1", type: "function", function: { name: "ls", arguments: "{}" } };
  const messages = [
    { role: "user", content: "list" },
    { role: "system", content: "Be brief." },
    { role: "assistant", content: null, tool_calls: [call] },
    { role: "tool", tool_call_id: "c1", content: "a b" },
    { role: "user", content: "and now?" },
    { role: "assistant", content: "Now" },
  ];
  assert.deepEqual(orderMessagesWithChanges(messages, MARKING).changes, [
    "system_folded",
    "tool_bridged",
    "tool_ids_fitted",
    "prefix_marked",
  ]);
  assert.deepEqual(orderMessagesWithChanges(messages, "strict").changes, [
    "system_folded",
    "tool_bridged",
    "tool_ids_fitted",
  ]);
  const unchanged = orderMessagesWithChanges([{ role: "user", content: "hi" }], MARKING);
  assert.deepEqual(unchanged.changes, []);
  const prefilled = [
    { role: "user", content: "hi" },
    { role: "assistant", content: "Hel", prefix: true },
  ];
  const removed = orderMessagesWithChanges(prefilled, { order: "any", prefix: "remove" });
  assert.deepEqual(removed.changes, ["prefix_removed"]);
  assert.deepEqual(removed.messages.at(-1), { role: "assistant", content: "Hel" });
  assert.deepEqual(
    prefilled[1],
    { role: "assistant", content: "Hel", prefix: true },
    "the client's object is untouched",
  );
});

test("message order: a prompt echoed with its quotes or newlines as written (not as JSON escapes them) teaches nothing", () => {
  const prompt = 'The server said: Expected last role "user" but got assistant.\nWhy?';
  const request = { messages: [{ role: "user", content: prompt }] };
  const echo = { message: `Content policy: the prompt '${prompt}' is not supported` };
  assert.equal(orderRefusedBy(echo), "strict", "without the request, the words alone are taken");
  assert.equal(orderRefusedBy(echo, request), undefined);
});

test("message order: tool call ids Mistral did not make become 9 letters and digits, the same for a call and its result", () => {
  const call = (id: string) => ({ id, type: "function", function: { name: "ls", arguments: "{}" } });
  const messages = [
    { role: "user", content: "list" },
    { role: "assistant", content: null, tool_calls: [call("toolu_01XYZ"), call("Ab3dE5gH9")] },
    { role: "tool", tool_call_id: "toolu_01XYZ", content: "a" },
    { role: "tool", tool_call_id: "Ab3dE5gH9", content: "b" },
  ];
  for (const order of ["strict", "alternate"] as const) {
    const { messages: sent, changes } = orderMessagesWithChanges(messages, order);
    assert.deepEqual(changes, ["tool_ids_fitted"]);
    const ids = (sent[1] as { tool_calls: { id: string }[] }).tool_calls.map((each) => each.id);
    assert.match(ids[0] ?? "", /^[a-zA-Z0-9]{9}$/);
    assert.equal(ids[1], "Ab3dE5gH9", "an id Mistral takes is left as it is");
    assert.deepEqual(
      sent.slice(2).map((message) => (message as { tool_call_id: string }).tool_call_id),
      ids,
    );
    // The same on every request of the conversation; the client's messages are untouched.
    assert.deepEqual(orderMessagesWithChanges(messages, order).messages, sent);
  }
  assert.equal((messages[1] as { tool_calls: { id: string }[] }).tool_calls[0]?.id, "toolu_01XYZ");
  assert.equal(orderMessages(messages, "any"), messages);
});
