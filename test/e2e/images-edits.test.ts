// `/v1/images/edits`: a multipart upload of one or several images (an optional mask) and a prompt, served by image
// models with the routing, failover and records of image generation, the provider's answer passed on as it came. The
// real `openai` SDK is the client where it can be; malformed uploads are written by hand.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, type TestContext, test } from "node:test";
import { toFile } from "openai";
import { request } from "undici";
import {
  assertServedAs,
  errorOf,
  failedOverRecord,
  type RawResponse,
  recordsOf,
  send,
  twoProviderScene,
} from "../helpers/e2e.ts";
import type { TestGateway } from "../helpers/gateway.ts";
import type { MockStep, MockUpstream, RecordedRequest } from "../helpers/mock-upstream.ts";
import { parsePrometheusText, sumOf } from "../helpers/prometheus-text.ts";
import { threadCpuMsWhile } from "../helpers/thread-cpu.ts";

const EDITS = "POST /v1/images/edits";
/** A real 1x1 PNG (one transparent pixel), as an image host sends it in `b64_json`. */
const PIXEL_PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==";
/** Bytes no text encoding would keep (every byte value): a file changed on the way fails the comparisons. */
const PHOTO = Buffer.concat([Buffer.from("\x89PNG\r\n\x1a\n", "latin1"), randomBytes(40_000)]);
const SECOND_PHOTO = randomBytes(20_000);
const MASK = randomBytes(5_000);

function editAnswer(b64 = PIXEL_PNG): { text: string; step: MockStep } {
  const text = `{"created": 1733443200, "data": [{"b64_json": "${b64}"}], "usage": {"input_tokens": 50, "output_tokens": 272}}`;
  return { text, step: { kind: "text", status: 200, body: text, headers: { "content-type": "application/json" } } };
}

function editRequests(mock: MockUpstream): RecordedRequest[] {
  return mock.requests.filter((recorded) => recorded.path === "/v1/images/edits");
}

/** The parts of a multipart body as the mock received it, parsed by Node's own FormData parser. */
async function partsOf(recorded: RecordedRequest | undefined): Promise<FormData> {
  assert.ok(recorded, "the upstream got no request");
  const type = String(recorded.headers["content-type"]);
  assert.match(type, /^multipart\/form-data; boundary=/);
  return new Response(recorded.bodyBytes, { headers: { "content-type": type } }).formData();
}

async function bytesOf(part: File | string | null | undefined): Promise<Buffer> {
  assert.ok(part instanceof Blob, "not a file part");
  return Buffer.from(await part.arrayBuffer());
}

/**
 * A form posted as the bytes and content type a browser or SDK sends (encoded by Node's own `Request`): undici's
 * `request()` with a FormData body of another undici copy never ends its body.
 */
async function postForm(gateway: TestGateway, path: string, form: FormData): Promise<RawResponse> {
  const encoder = new Request("http://localhost/", { method: "POST", body: form });
  const response = await request(`${gateway.url}${path}`, {
    method: "POST",
    headers: { "content-type": encoder.headers.get("content-type") ?? "" },
    body: Buffer.from(await encoder.arrayBuffer()),
  });
  const text = await response.body.text();
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(response.headers)) if (typeof value === "string") headers[name] = value;
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.statusCode, headers, text, json };
}

function twoProviders(t: TestContext, extra = "") {
  return twoProviderScene(t, {
    model: "image-editor",
    firstModel: "{ id: gpt-image-1-first, kind: image }",
    secondModel: "{ id: flux-kontext-second, kind: image }",
    firstKeys: "retries: 0\nbody:\n  defaults: { temperature: 0.2, quality: medium }",
    extra,
  });
}

describe("image edits", () => {
  test("the SDK's upload reaches the provider with its upstream model id and the same bytes; the answer comes back unchanged", async (t) => {
    const { first, second, gateway, client } = await twoProviders(t);
    const answer = editAnswer();
    first.enqueue(EDITS, answer.step);
    const edited = await client.images
      .edit({
        model: "image-editor",
        image: await toFile(PHOTO, "photo.png", { type: "image/png" }),
        mask: await toFile(MASK, "mask.png", { type: "image/png" }),
        prompt: "Add a red hat",
        n: 1,
        size: "1024x1024",
        background: "transparent",
        output_format: "webp",
        input_fidelity: "high",
        user: "user-7",
      })
      .withResponse();
    assert.equal(edited.data.data?.[0]?.b64_json, PIXEL_PNG);
    assert.equal(edited.response.headers.get("x-gateway-provider"), "first");
    assert.equal(edited.response.headers.get("x-gateway-model"), "gpt-image-1-first");
    const form = await partsOf(editRequests(first)[0]);
    assert.equal(form.get("model"), "gpt-image-1-first");
    assert.equal(form.get("prompt"), "Add a red hat");
    assert.equal(form.get("n"), "1");
    assert.equal(form.get("size"), "1024x1024");
    assert.equal(form.get("background"), "transparent");
    assert.equal(form.get("output_format"), "webp");
    assert.equal(form.get("input_fidelity"), "high");
    assert.equal(form.get("user"), "user-7");
    // The provider's image default fills in; its chat default (`temperature`) stays out.
    assert.equal(form.get("quality"), "medium");
    assert.equal(form.get("temperature"), null);
    assert.ok((await bytesOf(form.get("image"))).equals(PHOTO), "the image's bytes changed on the way");
    assert.equal((form.get("image") as File).name, "photo.png");
    assert.equal((form.get("image") as File).type, "image/png");
    assert.ok((await bytesOf(form.get("mask"))).equals(MASK), "the mask's bytes changed on the way");
    assert.equal(editRequests(first)[0]?.headers.authorization, "Bearer sk-first-key");
    assert.equal(editRequests(second).length, 0);

    // Several images (the SDK sends them as `image[]` parts), without the /v1 prefix: sent on as they came, in order.
    first.enqueue(EDITS, answer.step);
    const several = new FormData();
    several.append("model", "image-editor");
    several.append("prompt", "Put them side by side");
    several.append("image[]", new Blob([PHOTO], { type: "image/png" }), "a.png");
    several.append("image[]", new Blob([SECOND_PHOTO], { type: "image/jpeg" }), "b.jpg");
    const raw = await postForm(gateway, "/images/edits", several);
    assert.equal(raw.status, 200, raw.text);
    assert.equal(raw.text, answer.text, "the answer was rewritten");
    const sent = await partsOf(editRequests(first)[1]);
    const images = sent.getAll("image[]");
    assert.equal(images.length, 2);
    assert.ok((await bytesOf(images[0])).equals(PHOTO));
    assert.ok((await bytesOf(images[1])).equals(SECOND_PHOTO));
    assert.equal((images[1] as File).type, "image/jpeg");

    // The SDK's own list of images: `image[]` parts, as it encodes them.
    first.enqueue(EDITS, answer.step);
    await client.images.edit({
      model: "image-editor",
      prompt: "Both",
      image: [await toFile(PHOTO, "a.png"), await toFile(SECOND_PHOTO, "b.png")],
    });
    const listed = (await partsOf(editRequests(first)[2])).getAll("image[]");
    assert.equal(listed.length, 2);
    assert.ok((await bytesOf(listed[1])).equals(SECOND_PHOTO));
  });

  test("a 429 and a 404 fail over to the next provider with the same files; the record names the attempts and carries no image", async (t) => {
    const { first, second, gateway, client } = await twoProviders(t, "log:\n  content: true\n");
    first.enqueue(EDITS, {
      kind: "json",
      status: 429,
      body: { error: { message: "Rate limit reached", type: "rate_limit_error" } },
      headers: { "retry-after": "30" },
    });
    const image = randomBytes(3_000).toString("base64");
    second.enqueue(EDITS, editAnswer(image).step);
    const edited = await client.images
      .edit({ model: "image-editor", image: await toFile(PHOTO, "photo.png"), prompt: "Failover, please." })
      .withResponse();
    assert.equal(edited.data.data?.[0]?.b64_json, image);
    assert.equal(edited.response.headers.get("x-gateway-attempts"), "2");
    assert.equal(edited.response.headers.get("x-gateway-provider"), "second");
    const form = await partsOf(editRequests(second)[0]);
    assert.equal(form.get("model"), "flux-kontext-second");
    assert.ok((await bytesOf(form.get("image"))).equals(PHOTO));

    const { record, text } = await failedOverRecord(gateway, "image_edits", "openai-images");
    assert.equal(record.status, 200);
    // `log.content` keeps the prompt; neither the uploaded image nor the answer's is in any record.
    assert.equal(record.content?.request, "Failover, please.");
    assert.equal(record.content?.responseText, undefined);
    assert.ok(!text.includes(image.slice(100, 160)), "the request log carries the answer's image");
    assert.ok(
      !text.includes(PHOTO.subarray(0, 4_000).toString("base64").slice(100, 160)),
      "the log carries the upload",
    );
    assert.ok(!text.includes(PHOTO.subarray(8, 64).toString("latin1")), "the log carries the upload's bytes");

    // A model the first provider does not have (404) is the next candidate's, with the same file.
    const { first: other, second: next, client: otherClient } = await twoProviders(t);
    other.enqueue(EDITS, {
      kind: "json",
      status: 404,
      body: { error: { message: "The model `gpt-image-1-first` does not exist", type: "invalid_request_error" } },
    });
    next.enqueue(EDITS, editAnswer().step);
    const found = await otherClient.images
      .edit({ model: "image-editor", image: await toFile(PHOTO, "photo.png"), prompt: "Again." })
      .withResponse();
    assert.equal(found.response.headers.get("x-gateway-provider"), "second");
    assert.ok((await bytesOf((await partsOf(editRequests(next)[0])).get("image"))).equals(PHOTO));

    const metrics = parsePrometheusText((await send(gateway, "GET", "/metrics")).text);
    assert.equal(
      sumOf(metrics, "llm_gateway_requests_total", { endpoint: "image_edits", protocol: "openai-images" }),
      1,
    );
  });

  test("a 2xx without images is a bad_response and the next provider is tried", async (t) => {
    const { first, second, client } = await twoProviders(t);
    first.enqueue(EDITS, { kind: "json", body: { created: 1, data: [] } });
    second.enqueue(EDITS, editAnswer().step);
    const edited = await client.images
      .edit({ model: "image-editor", image: await toFile(PHOTO, "photo.png"), prompt: "Edit." })
      .withResponse();
    assert.equal(edited.response.headers.get("x-gateway-provider"), "second");
    assert.equal(edited.data.data?.[0]?.b64_json, PIXEL_PNG);
  });

  test("bad uploads get a 400 in OpenAI's shape naming the field, and reach no provider", async (t) => {
    const { first, second, gateway } = await twoProviders(t);
    const post = (form: FormData) => postForm(gateway, "/v1/images/edits", form);
    const photo = () => new Blob([PHOTO], { type: "image/png" });

    const noPrompt = new FormData();
    noPrompt.append("model", "image-editor");
    noPrompt.append("image", photo(), "a.png");
    const missingPrompt = await post(noPrompt);
    assert.equal(missingPrompt.status, 400);
    assert.equal(errorOf(missingPrompt).param, "prompt");
    assert.match(errorOf(missingPrompt).message, /`prompt` is required/);

    const noImage = new FormData();
    noImage.append("model", "image-editor");
    noImage.append("prompt", "Edit.");
    const missingImage = await post(noImage);
    assert.equal(missingImage.status, 400);
    assert.equal(errorOf(missingImage).param, "image");
    assert.match(errorOf(missingImage).message, /`image` is required/);

    const textImage = new FormData();
    textImage.append("model", "image-editor");
    textImage.append("prompt", "Edit.");
    textImage.append("image", "https://example.com/a.png");
    const notAFile = await post(textImage);
    assert.equal(notAFile.status, 400);
    assert.equal(errorOf(notAFile).param, "image");

    const twoMasks = new FormData();
    twoMasks.append("model", "image-editor");
    twoMasks.append("prompt", "Edit.");
    twoMasks.append("image", photo(), "a.png");
    twoMasks.append("mask", photo(), "m1.png");
    twoMasks.append("mask", photo(), "m2.png");
    const masks = await post(twoMasks);
    assert.equal(masks.status, 400);
    assert.equal(errorOf(masks).param, "mask");
    assert.match(errorOf(masks).message, /only `image` .* and `mask` \(only one\) take files/);

    const stray = new FormData();
    stray.append("model", "image-editor");
    stray.append("prompt", "Edit.");
    stray.append("image", photo(), "a.png");
    stray.append("file", photo(), "b.png");
    const strayFile = await post(stray);
    assert.equal(strayFile.status, 400);
    assert.equal(errorOf(strayFile).param, "file");

    const streamed = new FormData();
    streamed.append("model", "image-editor");
    streamed.append("prompt", "Edit.");
    streamed.append("image", photo(), "a.png");
    streamed.append("stream", "true");
    const stream = await post(streamed);
    assert.equal(stream.status, 400);
    assert.equal(errorOf(stream).param, "stream");
    assert.match(errorOf(stream).message, /`stream` is not supported for image edits/);

    // A chat model is not an image model.
    const chatModel = new FormData();
    chatModel.append("model", "chatty");
    chatModel.append("prompt", "Edit.");
    chatModel.append("image", photo(), "a.png");
    const asChat = await post(chatModel);
    assert.equal(asChat.status, 400);
    assert.equal(errorOf(asChat).code, "model_not_supported");

    const json = await send(gateway, "POST", "/v1/images/edits", {
      body: { model: "image-editor", prompt: "Edit.", image: "aGVsbG8=" },
    });
    assert.equal(json.status, 400);
    assert.equal(errorOf(json).code, "invalid_content_type");
    assert.match(errorOf(json).message, /multipart\/form-data.*the files in the `image` field/);

    const cut = await send(gateway, "POST", "/v1/images/edits", {
      body: '--zzz\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n\r\n\x89PNG',
      headers: { "content-type": "multipart/form-data; boundary=zzz" },
    });
    assert.equal(cut.status, 400);
    assert.equal(errorOf(cut).code, "invalid_body");

    assert.equal(editRequests(first).length + editRequests(second).length, 0);
  });

  test("a text part then a file part under one file field is one clear 400 at once, not a list of its characters", async (t) => {
    const { first, second, gateway } = await twoProviders(t);
    for (const [path, name] of [
      ["/v1/images/edits", "image[]"],
      ["/v1/images/edits", "image"],
      ["/v1/images/variations", "image"],
    ] as const) {
      const form = new FormData();
      form.append("model", "image-editor");
      form.append("prompt", "Edit.");
      // 1 MB of text: spread as a list it was a million elements, each a schema issue (9 s and 800 MB).
      form.append(name, "x".repeat(1_000_000));
      form.append(name, new Blob([PHOTO], { type: "image/png" }), "a.png");
      // This thread's CPU (the gateway runs in it), not the wall clock other processes' time counts in: the list of
      // characters cost seconds of it.
      const { value: refused, ms: tookMs } = await threadCpuMsWhile(() => postForm(gateway, path, form));
      assert.equal(refused.status, 400, `${path} ${name}`);
      assert.equal(errorOf(refused).param, name);
      assert.match(errorOf(refused).message, /came as a text part and as a file part/);
      assert.ok(tookMs < 3_000, `${path} ${name}: refused in ${Math.round(tookMs)} ms of CPU`);
    }
    assert.equal(first.requests.length + second.requests.length, 0);
  });

  test("an empty image, `image[]` or mask is a 400 naming its field, and reaches no provider", async (t) => {
    const { first, second, gateway } = await twoProviders(t);
    const photo = () => new Blob([PHOTO], { type: "image/png" });
    const empty = () => new Blob([], { type: "image/png" });
    const cases: [string, [string, Blob][]][] = [
      ["image", [["image", empty()]]],
      [
        "image[]",
        [
          ["image[]", photo()],
          ["image[]", empty()],
        ],
      ],
      [
        "mask",
        [
          ["image", photo()],
          ["mask", empty()],
        ],
      ],
    ];
    for (const [field, files] of cases) {
      const form = new FormData();
      form.append("model", "image-editor");
      form.append("prompt", "Edit.");
      for (const [name, file] of files) form.append(name, file, `${name.replace("[]", "")}.png`);
      const answer = await postForm(gateway, "/v1/images/edits", form);
      assert.equal(answer.status, 400, field);
      assert.equal(errorOf(answer).param, field);
      assert.match(errorOf(answer).message, /is an empty file/, field);
    }
    assert.equal(editRequests(first).length + editRequests(second).length, 0);
  });

  test("/v1/models lists the image model with the edit route; the route explanation plans it; never cached", async (t) => {
    const { first, gateway, client } = await twoProviders(t, "cache:\n  enabled: true\n");
    await assertServedAs(gateway, "image-editor", {
      kind: "image",
      endpoints: ["/v1/images/generations", "/v1/images/edits", "/v1/images/variations"],
      providers: ["first", "second"],
    });
    first.enqueue(EDITS, editAnswer().step, editAnswer("AAAA").step);
    const body = { model: "image-editor", prompt: "Same words." } as const;
    const once = await client.images.edit({ ...body, image: await toFile(PHOTO, "a.png") });
    const twice = await client.images.edit({ ...body, image: await toFile(PHOTO, "a.png") });
    assert.equal(once.data?.[0]?.b64_json, PIXEL_PNG);
    assert.equal(twice.data?.[0]?.b64_json, "AAAA", "the second answer came from a cache");
  });
});

describe("image variations", () => {
  const VARIATIONS = "POST /v1/images/variations";
  const variationRequests = (mock: MockUpstream) =>
    mock.requests.filter((recorded) => recorded.path === "/v1/images/variations");

  test("one uploaded image reaches the provider with its upstream model id and the same bytes; a 429 fails over", async (t) => {
    const { first, second, gateway, client } = await twoProviders(t);
    first.enqueue(VARIATIONS, {
      kind: "json",
      status: 429,
      body: { error: { message: "Rate limit reached", type: "rate_limit_error" } },
      headers: { "retry-after": "30" },
    });
    const answer = editAnswer();
    second.enqueue(VARIATIONS, answer.step);
    const varied = await client.images
      .createVariation({
        model: "image-editor",
        image: await toFile(PHOTO, "photo.png", { type: "image/png" }),
        n: 2,
        size: "512x512",
      })
      .withResponse();
    assert.equal(varied.data.data?.[0]?.b64_json, PIXEL_PNG);
    assert.equal(varied.response.headers.get("x-gateway-provider"), "second");
    assert.equal(varied.response.headers.get("x-gateway-attempts"), "2");
    const form = await partsOf(variationRequests(second)[0]);
    assert.equal(form.get("model"), "flux-kontext-second");
    assert.equal(form.get("n"), "2");
    assert.equal(form.get("size"), "512x512");
    assert.ok((await bytesOf(form.get("image"))).equals(PHOTO));
    assert.ok((await bytesOf((await partsOf(variationRequests(first)[0])).get("image"))).equals(PHOTO));
    const { records } = await recordsOf(gateway, "image_variations");
    assert.deepEqual(
      records[0]?.attempts.map((attempt) => [attempt.provider, attempt.outcome]),
      [
        ["first", "rate_limited"],
        ["second", "success"],
      ],
    );

    const noImage = new FormData();
    noImage.append("model", "image-editor");
    const missing = await postForm(gateway, "/v1/images/variations", noImage);
    assert.equal(missing.status, 400);
    assert.equal(errorOf(missing).param, "image");
    const two = new FormData();
    two.append("model", "image-editor");
    two.append("image", new Blob([PHOTO]), "a.png");
    two.append("image", new Blob([PHOTO]), "b.png");
    const twoImages = await postForm(gateway, "/v1/images/variations", two);
    assert.equal(twoImages.status, 400);
    assert.match(errorOf(twoImages).message, /only `image` takes a file, and only one/);
    const json = await send(gateway, "POST", "/images/variations", { body: { model: "image-editor" } });
    assert.equal(json.status, 400);
    assert.equal(errorOf(json).code, "invalid_content_type");
    assert.equal(variationRequests(first).length + variationRequests(second).length, 2);
  });
});
