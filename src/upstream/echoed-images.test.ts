// The echo rule (providers/request-echo.ts) asked of the body as it was sent, in whichever protocol: a refusal whose
// "not supported" only quotes the prompt is the candidate's when it names images the request carries.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { classifyResponse, type Verdict } from "./classify-response.ts";

function classify(status: number, body: string, request?: unknown): Verdict {
  return classifyResponse(status, {}, body, 0, request);
}

function rejected(verdict: Verdict): Verdict & { kind: "rejected" } {
  assert.equal(verdict.kind, "rejected", JSON.stringify(verdict));
  return verdict as Verdict & { kind: "rejected" };
}

describe("the echo rule reads images in every protocol's body, as it was sent", () => {
  // The prompt quotes the refusal's first sentence (a user asking about it): only an image the request carries makes
  // the answer this candidate's refusal (failed over) rather than the client's 400.
  const refusal = "Image input is not supported for this endpoint model";
  const error = { message: `${refusal}. Send the text alone.` };
  const question = `My app says "${refusal}". Why?`;
  const bodies: Record<string, unknown> = {
    chat: {
      model: "m",
      messages: [
        {
          role: "user",
          content: [
            { type: "text", text: question },
            { type: "image_url", image_url: { url: "data:image/png;base64,AAAA" } },
          ],
        },
      ],
    },
    "Responses (native)": {
      model: "m",
      input: [
        {
          role: "user",
          content: [
            { type: "input_text", text: question },
            { type: "input_image", image_url: "data:image/png;base64,AAAA" },
          ],
        },
      ],
    },
    "Responses (an image in a function_call_output)": {
      model: "m",
      input: [
        { type: "message", role: "user", content: [{ type: "input_text", text: question }] },
        {
          type: "function_call_output",
          call_id: "c1",
          output: [{ type: "input_image", image_url: "https://x/y.png" }],
        },
      ],
    },
    Messages: {
      model: "m",
      messages: [
        {
          role: "user",
          content: [
            { type: "text", text: question },
            { type: "tool_result", tool_use_id: "t1", content: [{ type: "image", source: { type: "base64" } }] },
          ],
        },
      ],
    },
  };
  for (const [shape, body] of Object.entries(bodies)) {
    test(`${shape}: an image part makes the quoted refusal the candidate's`, () => {
      assert.equal(classify(400, JSON.stringify({ error }), body).kind, "rejected");
      assert.equal(rejected(classify(400, JSON.stringify({ error }), body)).refusal, "unsupported");
    });
  }

  test("without an image part (a Responses input_file is a document, as chat's file part is) it is the client's 400", () => {
    const withFile = {
      model: "m",
      input: [
        {
          role: "user",
          content: [
            { type: "input_text", text: question },
            { type: "input_file", filename: "a.pdf", file_data: "data:application/pdf;base64,AAAA" },
          ],
        },
      ],
    };
    assert.equal(rejected(classify(400, JSON.stringify({ error }), withFile)).refusal, "request");
    assert.equal(
      rejected(classify(400, JSON.stringify({ error }), { model: "m", input: question })).refusal,
      "request",
    );
  });
});
