// `/v1/images/generations`: image generation, served by image models with failover, the provider's answer (`data`:
// URLs or base64 images) passed on as it came. The real `openai` SDK is the client.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, type TestContext, test } from "node:test";
import {
  assertServedAs,
  errorOf,
  failedOverRecord,
  modelOf,
  recordsOf,
  rowOf,
  send,
  statsOf,
  twoProviderScene,
  useGateway,
  useMock,
} from "../helpers/e2e.ts";
import type { MockStep, MockUpstream, RecordedRequest } from "../helpers/mock-upstream.ts";
import { parsePrometheusText, sumOf } from "../helpers/prometheus-text.ts";

const IMAGES = "POST /v1/images/generations";
/** A real 1x1 PNG (one transparent pixel), as an image host sends it in `b64_json`. */
const PIXEL_PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==";

/** An answer as the provider writes it: its own spacing and key order, which the gateway must not rewrite. */
function imageAnswer(data: readonly object[], extra = ""): { text: string; step: MockStep } {
  const text = `{"created": 1733443200, "data": [${data.map((item) => JSON.stringify(item)).join(", ")}]${extra}}`;
  return { text, step: { kind: "text", status: 200, body: text, headers: { "content-type": "application/json" } } };
}

function imageRequests(mock: MockUpstream): RecordedRequest[] {
  return mock.requests.filter((recorded) => recorded.path === "/v1/images/generations");
}

function twoProviders(t: TestContext, extra = "") {
  return twoProviderScene(t, {
    model: "flux-schnell",
    firstModel: "{ id: black-forest-labs/FLUX.1-schnell }",
    secondModel: "{ id: black-forest-labs/flux-schnell }",
    firstKeys: "retries: 0\nbody:\n  defaults: { temperature: 0.2, reasoning_effort: low, size: 512x512, steps: 4 }",
    extra,
  });
}

describe("image generation", () => {
  test("the SDK gets the provider's images unchanged; the provider gets the body with its own model id and its image defaults only", async (t) => {
    const { first, second, client, gateway } = await twoProviders(t);
    const answer = imageAnswer(
      [
        { b64_json: PIXEL_PNG, revised_prompt: "A red fox in the snow, watercolour" },
        { b64_json: PIXEL_PNG.replace("A", "B") },
      ],
      ', "usage": {"input_tokens": 12, "output_tokens": 4160, "total_tokens": 4172}',
    );
    first.enqueue(IMAGES, answer.step);
    const generated = await client.images
      .generate({
        model: "flux-schnell",
        prompt: "A red fox in the snow",
        n: 2,
        size: "1024x1024",
        quality: "high",
        response_format: "b64_json",
        style: "natural",
        user: "user-7",
      })
      .withResponse();
    assert.equal(generated.data.data?.[0]?.b64_json, PIXEL_PNG);
    assert.equal(generated.data.data?.[0]?.revised_prompt, "A red fox in the snow, watercolour");
    assert.equal(generated.data.data?.length, 2);
    assert.equal(generated.response.headers.get("x-gateway-provider"), "first");
    assert.equal(generated.response.headers.get("x-gateway-model"), "black-forest-labs/FLUX.1-schnell");
    const sent = imageRequests(first)[0];
    assert.ok(sent, "the provider got no request");
    // The client's size wins over the provider's default; `steps` (an image field) fills in; the provider's chat
    // defaults (`temperature`, `reasoning_effort`) stay out.
    assert.deepEqual(sent.body, {
      model: "black-forest-labs/FLUX.1-schnell",
      prompt: "A red fox in the snow",
      n: 2,
      size: "1024x1024",
      quality: "high",
      response_format: "b64_json",
      style: "natural",
      user: "user-7",
      steps: 4,
    });
    assert.equal(sent.headers.authorization, "Bearer sk-first-key");
    assert.equal(imageRequests(second).length, 0);

    // Without the /v1 prefix, byte for byte: no `model` added, nothing re-serialised; the default size fills in.
    first.enqueue(IMAGES, answer.step);
    const raw = await send(gateway, "POST", "/images/generations", {
      body: { model: "flux-schnell", prompt: "A fox" },
    });
    assert.equal(raw.status, 200, raw.text);
    assert.equal(raw.text, answer.text);
    assert.match(raw.headers["content-type"] ?? "", /^application\/json/);
    assert.deepEqual(imageRequests(first)[1]?.body, {
      model: "black-forest-labs/FLUX.1-schnell",
      prompt: "A fox",
      size: "512x512",
      steps: 4,
    });

    // gpt-image-1's `usage` is read as chat's: the prompt's and the images' tokens reach the books.
    const row = rowOf(await statsOf(gateway), "first/flux-schnell");
    assert.equal(row.kind, "image");
    assert.equal(row.tokens_in, 24);
    assert.equal(row.tokens_out, 8320);
  });

  test("URL answers and several megabytes of base64 images come back whole", async (t) => {
    const { first, client } = await twoProviders(t);
    // Three images of 2 MB each: about 8 MB of base64, under the default max_response_bytes (64 MiB).
    const images = [randomBytes(2_000_000), randomBytes(2_000_000), randomBytes(2_000_000)].map((bytes) =>
      bytes.toString("base64"),
    );
    first.enqueue(IMAGES, imageAnswer(images.map((b64_json) => ({ b64_json }))).step);
    const big = await client.images.generate({ model: "flux-schnell", prompt: "Three", n: 3 });
    assert.deepEqual(
      big.data?.map((image) => image.b64_json),
      images,
    );

    first.enqueue(IMAGES, imageAnswer([{ url: "https://images.example/fox.png?sig=abc" }]).step);
    const linked = await client.images.generate({ model: "flux-schnell", prompt: "A fox", response_format: "url" });
    assert.equal(linked.data?.[0]?.url, "https://images.example/fox.png?sig=abc");
  });

  test("an answer larger than max_response_bytes is a bad_response and the next provider is tried", async (t) => {
    const { first, second, gateway, client } = await twoProviders(
      t,
      "upstream_limits:\n  max_response_bytes: 100000\n",
    );
    first.enqueue(IMAGES, imageAnswer([{ b64_json: randomBytes(120_000).toString("base64") }]).step);
    second.enqueue(IMAGES, imageAnswer([{ b64_json: PIXEL_PNG }]).step);
    const generated = await client.images.generate({ model: "flux-schnell", prompt: "Too big." }).withResponse();
    assert.equal(generated.data.data?.[0]?.b64_json, PIXEL_PNG);
    assert.equal(generated.response.headers.get("x-gateway-provider"), "second");
    const { records } = await recordsOf(gateway, "images");
    assert.match(records[0]?.attempts[0]?.reason ?? "", /larger than max_response_bytes \(100000 bytes\)/);
  });

  test("a 429 fails over to the next provider; the record names both attempts and keeps the prompt, never the images", async (t) => {
    const { first, second, gateway, client } = await twoProviders(t, "log:\n  content: true\n");
    first.enqueue(IMAGES, {
      kind: "json",
      status: 429,
      body: { error: { message: "Rate limit reached", type: "rate_limit_error" } },
      headers: { "retry-after": "30" },
    });
    const image = randomBytes(3000).toString("base64");
    second.enqueue(IMAGES, imageAnswer([{ b64_json: image, revised_prompt: "A lighthouse at dusk" }]).step);
    const generated = await client.images
      .generate({ model: "flux-schnell", prompt: "Failover, please.", response_format: "b64_json" })
      .withResponse();
    assert.equal(generated.data.data?.[0]?.b64_json, image);
    assert.equal(generated.response.headers.get("x-gateway-attempts"), "2");
    assert.equal(generated.response.headers.get("x-gateway-provider"), "second");
    assert.equal(modelOf(imageRequests(second)[0]), "black-forest-labs/flux-schnell");

    const { record, text } = await failedOverRecord(gateway, "images", "openai-images");
    assert.equal(record.status, 200);
    // `log.content` keeps the prompt; the images are in no record (nor is their revised prompt, read from them).
    assert.equal(record.content?.request, "Failover, please.");
    assert.equal(record.content?.responseText, undefined);
    assert.ok(!text.includes(image.slice(100, 160)), "the request log carries the image");

    const metrics = parsePrometheusText((await send(gateway, "GET", "/metrics")).text);
    assert.equal(
      sumOf(metrics, "llm_gateway_requests_total", {
        endpoint: "images",
        protocol: "openai-images",
        status_class: "2xx",
      }),
      1,
    );

    // The cooled-down provider is skipped for the next request.
    second.enqueue(IMAGES, imageAnswer([{ b64_json: PIXEL_PNG }]).step);
    const again = await client.images.generate({ model: "flux-schnell", prompt: "Again." });
    assert.equal(again.data?.[0]?.b64_json, PIXEL_PNG);
    assert.equal(imageRequests(first).length, 1);
  });

  test("a 200 that is no image answer (no `data`, no image in it, an error in JSON, not JSON) fails over", async (t) => {
    const notAnswers: [MockStep, RegExp][] = [
      [{ kind: "json", body: { created: 1733443200 } }, /no `data` array/],
      [{ kind: "json", body: { created: 1733443200, data: { url: "https://x" } } }, /no `data` array/],
      // A list that holds no image: the SDK would read none from it.
      [{ kind: "json", body: { created: 1733443200, data: [] } }, /an empty `data`/],
      [{ kind: "json", body: { created: 1733443200, data: [null, 1] } }, /without a `url` or a `b64_json`/],
      [{ kind: "json", body: { created: 1733443200, data: [{ revised_prompt: "x" }] } }, /without a `url`/],
      [{ kind: "json", body: { error: { message: "model overloaded", type: "server_error" } } }, /overloaded/],
      [{ kind: "text", status: 200, body: "<html>proxy</html>", headers: { "content-type": "text/html" } }, /not JSON/],
    ];
    for (const [step, reason] of notAnswers) {
      // A new scene each time: the failed first candidate would otherwise be ranked lower (health) or cooling.
      const { first, second, gateway, client } = await twoProviders(t);
      first.enqueue(IMAGES, step);
      second.enqueue(IMAGES, imageAnswer([{ b64_json: PIXEL_PNG }]).step);
      const generated = await client.images.generate({ model: "flux-schnell", prompt: "Draw it." }).withResponse();
      assert.equal(generated.data.data?.[0]?.b64_json, PIXEL_PNG);
      assert.equal(generated.response.headers.get("x-gateway-provider"), "second");
      const { records } = await recordsOf(gateway, "images");
      const failedAttempt = records[0]?.attempts[0];
      assert.equal(failedAttempt?.provider, "first");
      assert.match(failedAttempt?.reason ?? "", reason);
    }
  });

  test("a 404 that does not say the path is missing is taken as not serving the model; the next one answers", async (t) => {
    const { first, second, gateway, client } = await twoProviders(t);
    // Nothing queued: the mock answers 404 in its own words ("mock upstream: no route ..."), which no real router
    // writes: kept as the model's. A real router's "no such path" is test/e2e/unserved-endpoints.test.ts's.
    second.enqueue(IMAGES, imageAnswer([{ b64_json: PIXEL_PNG }]).step);
    const generated = await client.images.generate({ model: "flux-schnell", prompt: "Anywhere." }).withResponse();
    assert.equal(generated.data.data?.[0]?.b64_json, PIXEL_PNG);
    assert.equal(generated.response.headers.get("x-gateway-provider"), "second");
    assert.equal(imageRequests(first).length, 1);
    const { records } = await recordsOf(gateway, "images");
    assert.deepEqual(
      records[0]?.attempts.map((attempt) => [attempt.provider, attempt.outcome]),
      [
        ["first", "model_unavailable"],
        ["second", "success"],
      ],
    );
  });

  test("the prompt counts against a token budget: a long prompt skips the provider whose tpm it exceeds", async (t) => {
    const { first, second, client } = await twoProviderScene(t, {
      model: "dall-e-3",
      firstModel: "{ limits: { tpm: 40 } }",
      secondModel: "{}",
      hasChatModel: false,
      keepsRequestLog: false,
    });
    second.enqueue(IMAGES, imageAnswer([{ url: "https://images.example/long.png" }]).step);
    const long = await client.images
      .generate({ model: "dall-e-3", prompt: "A very detailed scene with many parts. ".repeat(20) })
      .withResponse();
    assert.equal(long.response.headers.get("x-gateway-provider"), "second");
    assert.equal(imageRequests(first).length, 0);
    first.enqueue(IMAGES, imageAnswer([{ url: "https://images.example/short.png" }]).step);
    const short = await client.images.generate({ model: "dall-e-3", prompt: "A cat." }).withResponse();
    assert.equal(short.response.headers.get("x-gateway-provider"), "first");
  });

  test("a prompt no image model's context holds is refused naming `prompt`, not chat's `messages`", async (t) => {
    const first = await useMock(t);
    const gateway = await useGateway(
      t,
      `providers:
  - name: first
    base_url: ${first.baseUrl}
    api_key: sk-first-key
    models:
      dall-e-3: { context: 40 }
`,
    );
    const answer = await send(gateway, "POST", "/v1/images/generations", {
      body: { model: "dall-e-3", prompt: "A very detailed scene with many parts. ".repeat(40) },
    });
    assert.equal(answer.status, 400);
    assert.equal(errorOf(answer).param, "prompt");
    assert.equal(imageRequests(first).length, 0);
  });

  test("bad bodies and chat models get a clear 400 in OpenAI's shape and reach no provider", async (t) => {
    const { first, second, gateway } = await twoProviders(t);
    const post = (body: unknown) => send(gateway, "POST", "/v1/images/generations", { body });

    const noPrompt = await post({ model: "flux-schnell", size: "1024x1024" });
    assert.equal(noPrompt.status, 400);
    assert.equal(errorOf(noPrompt).param, "prompt");
    assert.match(errorOf(noPrompt).message, /`prompt` is required/);

    const emptyPrompt = await post({ model: "flux-schnell", prompt: "" });
    assert.equal(emptyPrompt.status, 400);
    assert.equal(errorOf(emptyPrompt).param, "prompt");
    assert.match(errorOf(emptyPrompt).message, /must not be empty/);

    const notText = await post({ model: "flux-schnell", prompt: ["a", "b"] });
    assert.equal(notText.status, 400);
    assert.equal(errorOf(notText).param, "prompt");

    for (const n of [0, -1, 1.5, "2"]) {
      const badCount = await post({ model: "flux-schnell", prompt: "A fox", n });
      assert.equal(badCount.status, 400, `n: ${JSON.stringify(n)}`);
      assert.equal(errorOf(badCount).param, "n");
      assert.match(errorOf(badCount).message, /`n`/);
    }

    const streamed = await post({ model: "flux-schnell", prompt: "A fox", stream: true, partial_images: 2 });
    assert.equal(streamed.status, 400);
    assert.equal(errorOf(streamed).param, "stream");
    assert.match(errorOf(streamed).message, /`stream` is not supported for image generation/);

    const chat = await post({ model: "chatty", prompt: "A fox" });
    assert.equal(chat.status, 400);
    assert.equal(errorOf(chat).code, "model_not_supported");

    const notJson = await send(gateway, "POST", "/v1/images/generations", {
      body: "{not json",
      headers: { "content-type": "application/json" },
    });
    assert.equal(notJson.status, 400);
    errorOf(notJson);

    // An image model is not a chat model either.
    const asChat = await send(gateway, "POST", "/v1/chat/completions", {
      body: { model: "flux-schnell", messages: [{ role: "user", content: "hi" }] },
    });
    assert.equal(asChat.status, 400);
    assert.equal(errorOf(asChat).code, "model_not_supported");
    assert.match(errorOf(asChat).message, /`flux-schnell` is an image model and cannot serve this chat endpoint/);

    assert.equal(first.requests.filter((recorded) => recorded.method === "POST").length, 0);
    assert.equal(second.requests.filter((recorded) => recorded.method === "POST").length, 0);
  });

  test("/v1/models lists the image model with /v1/images/generations; its answer is never cached", async (t) => {
    const { first, gateway, client } = await twoProviders(t, "cache:\n  enabled: true\n");
    await assertServedAs(gateway, "flux-schnell", {
      kind: "image",
      endpoints: ["/v1/images/generations", "/v1/images/edits", "/v1/images/variations"],
      providers: ["first", "second"],
    });

    first.enqueue(IMAGES, imageAnswer([{ b64_json: PIXEL_PNG }]).step, imageAnswer([{ b64_json: "AAAA" }]).step);
    const body = { model: "flux-schnell", prompt: "Same words." } as const;
    const once = await client.images.generate(body);
    const twice = await client.images.generate(body);
    assert.equal(once.data?.[0]?.b64_json, PIXEL_PNG);
    assert.equal(twice.data?.[0]?.b64_json, "AAAA", "the second answer came from a cache");
    assert.equal(imageRequests(first).length, 2);
  });
});
