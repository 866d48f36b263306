// A native Responses provider (`responses_api: native`) is sent the client's Responses body as it is: its images are
// `input_image` parts of `input`. An "Image input is not supported" refusal whose sentence the prompt happens to quote
// (a user asking about that very error) is still this provider's refusal of the image it was sent, and the request
// fails over, as it does for a chat body's `image_url` (classify-response.ts refusalOf, request-echo.ts hasImageParts).
// Real gateway, mock upstreams over loopback, the openai SDK.
import assert from "node:assert/strict";
import { test } from "node:test";
import { chatCompletion } from "../helpers/mock-upstream.ts";
import { CHAT_ROUTE, MODEL, startTwoProviders } from "../helpers/two-providers.ts";

const RESPONSES_ROUTE = "POST /v1/responses";
const REFUSAL = "Image input is not supported for this endpoint model";

test("a native Responses provider's image refusal quoted by the prompt fails over to the next candidate", async (t) => {
  const { primary, backup, client } = await startTwoProviders(t, {
    primary: { responses_api: "native" },
    primaryModel: { vision: true },
    backupModel: { vision: true },
  });
  primary.enqueue(RESPONSES_ROUTE, {
    kind: "json",
    status: 400,
    body: { error: { message: `${REFUSAL}. Send the text alone.`, type: "invalid_request_error", param: null } },
  });
  backup.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion("A cat.", "beta-m") });
  const answer = await client.responses.create({
    model: MODEL,
    input: [
      {
        role: "user",
        content: [
          { type: "input_text", text: `My app says "${REFUSAL}". What is in this picture?` },
          { type: "input_image", image_url: "data:image/png;base64,iVBORw0KGgo=", detail: "auto" },
        ],
      },
    ],
  });
  assert.equal(answer.output_text, "A cat.");
  assert.equal(primary.requests.filter((request) => request.path === "/v1/responses").length, 1);
  assert.equal(backup.requests.filter((request) => request.path === "/v1/chat/completions").length, 1);
});
