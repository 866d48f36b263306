import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { classifyRateLimit } from "./classify-429.ts";

/** OpenRouter's own 402 (`provider_name` null), with `message` as its error's and the metadata given. */
function openRouter402(message: string, metadata: Record<string, unknown> = {}): string {
  return JSON.stringify({ error: { message, code: 402, metadata: { provider_name: null, ...metadata } } });
}

function classify402(bodyText: string) {
  return classifyRateLimit({ status: 402, headers: {}, bodyText });
}

const AFFORD_5365 =
  "This request requires more credits, or fewer max_tokens. You requested up to 65536 tokens, but can only afford 5365. To increase, visit https://openrouter.ai/settings/credits and upgrade to a paid account";

describe("credit-size refusals: read from the error's message, not from the whole body", () => {
  it("a spent key's message, with an 'afford N' wording in metadata.previous_errors: the key's credits", () => {
    const classified = classify402(
      openRouter402("Insufficient credits. Add more using https://openrouter.ai/settings/credits", {
        previous_errors: [{ code: 402, message: AFFORD_5365 }],
      }),
    );
    assert.equal(classified.kind, "credits");
    assert.equal(classified.isRequestTooLarge, undefined, classified.reason);
    assert.equal(classified.affordableOutputTokens, undefined);
  });

  it("another provider's text in metadata.raw ('Prompt tokens limit exceeded', 'max_tokens limit exceeded'): the key's", () => {
    for (const raw of [
      "Prompt tokens limit exceeded: 64128 > 6964",
      JSON.stringify({ error: { message: "max_tokens limit exceeded: 100000 > 9577" } }),
    ]) {
      const classified = classify402(
        openRouter402("Insufficient credits. This account never purchased credits.", { raw }),
      );
      assert.equal(classified.isRequestTooLarge, undefined, `${raw}: ${classified.reason}`);
    }
  });

  it("a size refusal in the message is read from it, not from the metadata's figures", () => {
    const classified = classify402(
      openRouter402(AFFORD_5365.replace("5365", "3395"), { previous_errors: [{ code: 402, message: AFFORD_5365 }] }),
    );
    assert.equal(classified.isRequestTooLarge, true);
    assert.equal(classified.affordableOutputTokens, 3395);
  });

  it("a body that is not JSON is read as text; JSON without any message too", () => {
    assert.equal(classify402(`402 Payment Required: ${AFFORD_5365}`).affordableOutputTokens, 5365);
    assert.equal(classify402(JSON.stringify({ detail: AFFORD_5365 })).affordableOutputTokens, 5365);
  });

  it("the message of a body OpenRouter nested in another error object, or a proxy wrapped (LiteLLM)", () => {
    // As forgecode logged it (tailcallhq/forgecode#571): `error` inside `error`.
    const nested = JSON.stringify({ error: { error: { message: AFFORD_5365, code: 402 }, code: 402 } });
    assert.equal(classify402(nested).affordableOutputTokens, 5365);
    const wrapped = JSON.stringify({
      error: {
        message: `litellm.APIError: APIError: OpenrouterException - ${openRouter402("Insufficient credits", { previous_errors: [{ message: AFFORD_5365 }] })}`,
        type: null,
        code: "402",
      },
    });
    assert.equal(classify402(wrapped).isRequestTooLarge, undefined, "the wrapped body's own message is the key's");
  });
});

describe("OpenRouter's older wording 'More credits are required to run this request'", () => {
  // Its exact text, as forgecode logged it (tailcallhq/forgecode#571).
  const moreCredits = (required: string, available: string) =>
    JSON.stringify({
      error: {
        error: {
          message: `More credits are required to run this request. ${required} token capacity required, ${available} available. To increase, visit https://openrouter.ai/settings/keys and create a key with a higher limit`,
          code: 402,
        },
        code: 402,
      },
    });

  it("with tokens available: this request's output, as 'can only afford M'", () => {
    const classified = classify402(moreCredits("128000", "19484"));
    assert.equal(classified.kind, "credits");
    assert.equal(classified.isRequestTooLarge, true, classified.reason);
    assert.equal(classified.affordableOutputTokens, 19_484);
    assert.match(classified.reason, /cover 19484 output tokens of this request, not the 128000/);
    assert.equal(
      classify402(openRouter402(JSON.parse(moreCredits("128,000", "~19,484")).error.error.message))
        .affordableOutputTokens,
      19_484,
    );
  });

  it("with none available: the key's credits (parked)", () => {
    const classified = classify402(moreCredits("128000", "0"));
    assert.equal(classified.kind, "credits");
    assert.equal(classified.isRequestTooLarge, undefined);
    assert.equal(classified.affordableOutputTokens, undefined);
  });
});
