import assert from "node:assert/strict";
import { test } from "node:test";
import { encodeMultipart, multipartBody, UploadedFile } from "./multipart-payload.ts";

const AUDIO = Buffer.from([...Array(256).keys(), 13, 10, 45, 45]);

async function joined(body: ReturnType<typeof multipartBody>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

test("every encoding of an upload sends the file's own Buffer, not a copy, and parses back to the same fields", async () => {
  const file = new UploadedFile("a.wav", "audio/wav", AUDIO);
  const first = encodeMultipart({
    model: "one",
    file,
    language: "en",
    "timestamp_granularities[]": ["word", "segment"],
  });
  const second = encodeMultipart({ model: "two", file });
  for (const payload of [first, second]) {
    // The same memory for every attempt: a failover over three providers holds the file once, not four times.
    assert.ok(
      payload.parts.some((part) => part === AUDIO),
      "the file part is a copy",
    );
    const bytes = await joined(multipartBody(payload));
    assert.equal(bytes.length, payload.byteLength);
    const form = await new Response(bytes, { headers: { "content-type": payload.contentType } }).formData();
    const sent = form.get("file");
    assert.ok(sent instanceof Blob);
    assert.ok(Buffer.from(await sent.arrayBuffer()).equals(AUDIO));
  }
  const form = await new Response(await joined(multipartBody(first)), {
    headers: { "content-type": first.contentType },
  }).formData();
  assert.equal(form.get("model"), "one");
  assert.equal(form.get("language"), "en");
  assert.deepEqual(form.getAll("timestamp_granularities[]"), ["word", "segment"]);
  // The text parts are few Buffers, not one per field.
  assert.equal(first.parts.length, 3);
});
