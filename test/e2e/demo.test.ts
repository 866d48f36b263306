// `npm run demo` (`llm-gateway demo`): the README's no-key first run. Started as users start it, on a free port; what
// its banner promises must answer: a chat request through the "best" meta model with failover on the fake 429, a
// stream, an audio upload, speech, an image, a rerank, a moderation, the model list; Ctrl-C ends it.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { request } from "undici";
import { MAIN } from "../helpers/cli-process.ts";

async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as { port: number };
  server.close();
  await once(server, "close");
  return port;
}

test("the demo answers what its banner shows, with failover, and stops on SIGINT", async (t) => {
  const cwd = mkdtempSync(join(tmpdir(), "llm-gateway-demo-"));
  t.after(() => rmSync(cwd, { recursive: true, force: true }));
  const port = await freePort();
  const child = spawn(process.execPath, [MAIN, "demo"], {
    cwd,
    env: { PATH: process.env.PATH ?? "", NODE_NO_WARNINGS: "1", PORT: String(port), HOST: "127.0.0.1" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  t.after(() => child.kill("SIGKILL"));
  let stdout = "";
  child.stdout.on("data", (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  const deadline = Date.now() + 30_000;
  while (!stdout.includes("Ctrl-C stops")) {
    assert.ok(Date.now() < deadline, `the demo did not start:\n${stdout}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const base = `http://127.0.0.1:${port}/v1`;
  assert.ok(stdout.includes(`${base}/audio/transcriptions`), "the banner shows the audio upload");

  const providers: string[] = [];
  for (let index = 0; index < 4; index++) {
    const response = await request(`${base}/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "best", messages: [{ role: "user", content: "Hi" }] }),
    });
    const answer = (await response.body.json()) as { choices: { message: { content: string } }[] };
    assert.equal(response.statusCode, 200);
    assert.match(answer.choices[0]?.message.content ?? "", /You said: Hi/);
    providers.push(String(response.headers["x-gateway-provider"]));
  }
  // swift answers 429 to its every 3rd request: that request was served by steady, and swift then cools down.
  assert.ok(providers.includes("swift") && providers.includes("steady"), providers.join(","));

  const stream = await request(`${base}/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: "best", stream: true, messages: [{ role: "user", content: "Stream" }] }),
  });
  const streamed = await stream.body.text();
  assert.equal(stream.statusCode, 200);
  assert.match(streamed, /data: \[DONE\]\n\n$/);

  const form = new FormData();
  form.append("model", "demo-whisper");
  form.append("file", new Blob([Buffer.alloc(1234)]), "clip.wav");
  const upload = new Request("http://localhost/", { method: "POST", body: form });
  const transcribed = await request(`${base}/audio/transcriptions`, {
    method: "POST",
    headers: { "content-type": upload.headers.get("content-type") ?? "" },
    body: Buffer.from(await upload.arrayBuffer()),
  });
  const transcript = (await transcribed.body.json()) as { text: string };
  assert.equal(transcribed.statusCode, 200);
  assert.match(transcript.text, /demo transcript/);

  assert.ok(stdout.includes(`${base}/audio/speech`), "the banner shows the speech request");
  const spoken = await request(`${base}/audio/speech`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: "demo-tts", input: "Hello there", voice: "alloy" }),
  });
  const wav = Buffer.from(await spoken.body.arrayBuffer());
  assert.equal(spoken.statusCode, 200);
  assert.equal(spoken.headers["content-type"], "audio/wav");
  assert.equal(wav.subarray(0, 4).toString("ascii"), "RIFF");
  assert.equal(wav.readUInt32LE(4), wav.length - 8, "the WAV's own length matches the bytes received");

  assert.ok(stdout.includes(`${base}/images/generations`), "the banner shows the image request");
  const drawn = await request(`${base}/images/generations`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: "demo-image", prompt: "A lighthouse at dusk", response_format: "b64_json" }),
  });
  const images = (await drawn.body.json()) as { data: { b64_json: string }[] };
  assert.equal(drawn.statusCode, 200);
  const png = Buffer.from(images.data[0]?.b64_json ?? "", "base64");
  assert.equal(png.subarray(1, 4).toString("ascii"), "PNG");
  assert.equal(png.readUInt32BE(16), 1, "a 1 pixel wide image");

  assert.ok(stdout.includes(`${base}/images/edits`), "the banner shows the image edit");
  const editForm = new FormData();
  editForm.append("model", "demo-image");
  editForm.append("prompt", "Add a lighthouse");
  editForm.append("image", new Blob([Buffer.from("not really a png")], { type: "image/png" }), "photo.png");
  const encoder = new Request("http://localhost/", { method: "POST", body: editForm });
  const edited = await request(`${base}/images/edits`, {
    method: "POST",
    headers: { "content-type": encoder.headers.get("content-type") ?? "" },
    body: Buffer.from(await encoder.arrayBuffer()),
  });
  const edits = (await edited.body.json()) as { data: { b64_json: string }[] };
  assert.equal(edited.statusCode, 200, JSON.stringify(edits));
  assert.equal(
    Buffer.from(edits.data[0]?.b64_json ?? "", "base64")
      .subarray(1, 4)
      .toString("ascii"),
    "PNG",
  );

  assert.ok(stdout.includes(`${base}/rerank`), "the banner shows the rerank request");
  const reranked = await request(`${base}/rerank`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      model: "demo-rerank",
      query: "fast cheap models",
      documents: ["Weather today", "Cheap and fast models", "Slow big models"],
      top_n: 2,
    }),
  });
  assert.equal(reranked.statusCode, 200);
  const ranking = (await reranked.body.json()) as {
    model: string;
    results: { index: number; relevance_score: number }[];
  };
  assert.equal(ranking.model, "demo-rerank");
  // The document sharing every word of the query first, then the one sharing `models`; the weather is cut by top_n.
  assert.deepEqual(
    ranking.results.map((result) => [result.index, Number(result.relevance_score.toFixed(3))]),
    [
      [1, 1],
      [2, 0.333],
    ],
  );

  assert.ok(stdout.includes(`${base}/moderations`), "the banner shows the moderations request");
  // Both providers' moderation models (swift's native one, steady's Llama Guard) flag the same words the same way.
  for (const model of ["swift/demo-moderation", "steady/demo-moderation"]) {
    const moderated = await request(`${base}/moderations`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model, input: ["Have a nice day", "I will hurt you"] }),
    });
    assert.equal(moderated.statusCode, 200);
    const verdicts = (await moderated.body.json()) as {
      model: string;
      results: { flagged: boolean; categories: Record<string, boolean> }[];
    };
    assert.equal(verdicts.model, model.startsWith("swift") ? "demo-moderation" : "demo-llama-guard-3");
    assert.deepEqual(
      verdicts.results.map((result) => [result.flagged, result.categories.violence]),
      [
        [false, false],
        [true, true],
      ],
    );
  }

  const models = (await (await request(`${base}/models`)).body.json()) as {
    data: { id: string; endpoints: string[] }[];
  };
  assert.ok(models.data.some((model) => model.id === "demo-whisper"));
  assert.ok(models.data.some((model) => model.id === "demo-tts"));
  assert.deepEqual(models.data.find((model) => model.id === "demo-image")?.endpoints, [
    "/v1/images/generations",
    "/v1/images/edits",
    "/v1/images/variations",
  ]);
  assert.deepEqual(models.data.find((model) => model.id === "demo-rerank")?.endpoints, ["/v1/rerank"]);
  assert.deepEqual(models.data.find((model) => model.id === "demo-moderation")?.endpoints, ["/v1/moderations"]);

  child.kill("SIGINT");
  const [code] = (await once(child, "exit")) as [number | null];
  assert.equal(code, 0);
});
