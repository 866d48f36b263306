import assert from "node:assert/strict";
import { test } from "node:test";
import {
  FALLBACK_THOUGHT_SIGNATURE,
  isGeminiDeployment,
  readsReasoningDetails,
  signaturesFor,
} from "./thought-signatures.ts";

test("Gemini deployments: the gemini preset, or a gemini model on a Google host; not a Gemini model elsewhere", () => {
  assert.equal(isGeminiDeployment("gemini", "http://127.0.0.1:9/v1", "anything"), true);
  assert.equal(
    isGeminiDeployment(
      undefined,
      "https://us-central1-aiplatform.googleapis.com/v1/projects/p/locations/us-central1/endpoints/openapi",
      "google/gemini-3-pro-preview",
    ),
    true,
  );
  assert.equal(isGeminiDeployment(undefined, "https://aiplatform.googleapis.com/v1", "meta/llama-4"), false);
  assert.equal(isGeminiDeployment("openrouter", "https://openrouter.ai/api/v1", "google/gemini-3-pro-preview"), false);
  assert.equal(isGeminiDeployment(undefined, "https://evilgoogleapis.com/v1", "gemini-3"), false);
  assert.equal(isGeminiDeployment(undefined, "not a url", "gemini-3"), false);
});

const call = (id: string, extra?: unknown) => ({
  id,
  type: "function",
  function: { name: "f", arguments: "{}" },
  ...(extra === undefined ? {} : { extra_content: extra }),
});

test("gemini: a turn with no signature gets the fallback on its first call only; a signed turn is left as it is", () => {
  const unsigned = [
    { role: "user", content: "hi" },
    { role: "assistant", tool_calls: [call("a"), call("b")] },
  ];
  const sent = signaturesFor(unsigned, "gemini") as { tool_calls?: { extra_content?: unknown }[] }[];
  assert.deepEqual(sent[1]?.tool_calls?.[0]?.extra_content, {
    google: { thought_signature: FALLBACK_THOUGHT_SIGNATURE },
  });
  assert.equal(sent[1]?.tool_calls?.[1]?.extra_content, undefined);
  assert.equal(JSON.stringify(unsigned).includes("extra_content"), false, "the client's objects are not changed");
  const signed = [{ role: "assistant", tool_calls: [call("a", { google: { thought_signature: "real" } }), call("b")] }];
  assert.equal(signaturesFor(signed, "gemini"), signed, "the same array: nothing to change");
  // A non-object extra_content (a hostile or broken client) is replaced, not read.
  const broken = [{ role: "assistant", tool_calls: [call("a", "junk")] }];
  assert.deepEqual(
    (signaturesFor(broken, "gemini")[0] as { tool_calls: { extra_content: unknown }[] }).tool_calls[0]?.extra_content,
    {
      google: { thought_signature: FALLBACK_THOUGHT_SIGNATURE },
    },
  );
});

test("drop: every extra_content removed; a history without any is the same array", () => {
  const history = [{ role: "assistant", tool_calls: [call("a", { google: { thought_signature: "real" } })] }];
  assert.equal(JSON.stringify(signaturesFor(history, "drop")).includes("extra_content"), false);
  const plain = [
    { role: "assistant", tool_calls: [call("a")] },
    { role: "tool", content: "x" },
  ];
  assert.equal(signaturesFor(plain, "drop"), plain);
});

test("OpenRouter deployments: the openrouter preset, or an openrouter.ai host", () => {
  assert.equal(readsReasoningDetails("openrouter", "http://127.0.0.1:9/v1"), true);
  assert.equal(readsReasoningDetails(undefined, "https://openrouter.ai/api/v1"), true);
  assert.equal(readsReasoningDetails(undefined, "https://eu.openrouter.ai/api/v1"), true);
  assert.equal(readsReasoningDetails(undefined, "https://notopenrouter.ai/api/v1"), false);
  assert.equal(readsReasoningDetails("gemini", "https://generativelanguage.googleapis.com/v1beta/openai"), false);
  assert.equal(readsReasoningDetails(undefined, "not a url"), false);
});

test("Vercel AI Gateway reads reasoning_details too (by its host: no preset names it)", () => {
  assert.equal(readsReasoningDetails(undefined, "https://ai-gateway.vercel.sh/v1"), true);
  assert.equal(readsReasoningDetails(undefined, "https://AI-Gateway.Vercel.sh/v1/"), true);
  assert.equal(readsReasoningDetails(undefined, "https://my-ai-gateway.vercel.sh/v1"), false);
  assert.equal(readsReasoningDetails(undefined, "https://ai-gateway.vercel.sh.example.com/v1"), false);
});
