// An upload's form field named `__proto__` or `constructor` (a text or a file part), on every multipart door: refused
// as the JSON door refuses such a key (protocols/prototype-keys.ts), a 400 naming it, nothing sent upstream. Accepted,
// the field became a key of the body the pipeline copies (its rules, the door's schema), where `__proto__` changes the
// copy's prototype.
import assert from "node:assert/strict";
import { test } from "node:test";
import { errorOf, send, useGateway, useMock } from "../helpers/e2e.ts";

/** The form as the bytes Node's own `Request` encodes (ASCII only here, so sent as a string unchanged). */
async function formBody(fields: [string, string | Blob][]): Promise<{ body: string; headers: Record<string, string> }> {
  const form = new FormData();
  for (const [name, value] of fields) {
    if (typeof value === "string") form.append(name, value);
    else form.append(name, value, "upload.bin");
  }
  const encoder = new Request("http://localhost/", { method: "POST", body: form });
  return {
    body: Buffer.from(await encoder.arrayBuffer()).toString("latin1"),
    headers: { "content-type": encoder.headers.get("content-type") ?? "" },
  };
}

const FILE = new Blob(["not really audio or an image"]);

const DOORS: [string, [string, string | Blob][]][] = [
  [
    "/v1/audio/transcriptions",
    [
      ["model", "whisper"],
      ["file", FILE],
    ],
  ],
  [
    "/v1/audio/translations",
    [
      ["model", "whisper"],
      ["file", FILE],
    ],
  ],
  [
    "/v1/images/edits",
    [
      ["model", "painter"],
      ["prompt", "a hat"],
      ["image", FILE],
    ],
  ],
  [
    "/v1/files",
    [
      ["purpose", "batch"],
      ["file", FILE],
    ],
  ],
];

test("a form field named __proto__ or constructor: a 400 naming it on every upload door, nothing sent", async (t) => {
  const mock = await useMock(t);
  const gateway = await useGateway(
    t,
    `providers:
  - name: alpha
    base_url: ${mock.baseUrl}
    api_key: sk-alpha
    models:
      whisper: { id: whisper-1, kind: transcription }
      painter: { id: gpt-image-1, kind: image }
`,
  );
  for (const [path, fields] of DOORS) {
    for (const name of ["__proto__", "constructor"]) {
      for (const value of ['{"model":"other"}', FILE]) {
        const what = `${path} ${name} ${typeof value === "string" ? "text" : "file"}`;
        const response = await send(gateway, "POST", path, await formBody([...fields, [name, value]]));
        assert.equal(response.status, 400, `${what}: ${response.text}`);
        const error = errorOf(response);
        assert.deepEqual([error.type, error.code, error.param], ["invalid_request_error", "invalid_value", name], what);
        assert.match(error.message, new RegExp(`\`${name}\` field`), what);
      }
    }
  }
  assert.deepEqual(
    mock.requests.filter((recorded) => recorded.method !== "GET").map((recorded) => recorded.path),
    [],
  );
  // The same upload without the field goes upstream: only the name was refused.
  await send(gateway, "POST", "/v1/audio/transcriptions", await formBody(DOORS[0]?.[1] ?? []));
  assert.deepEqual(
    mock.requests.filter((recorded) => recorded.method !== "GET").map((recorded) => recorded.path),
    ["/v1/audio/transcriptions"],
  );
});
