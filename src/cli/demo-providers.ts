// Two local fake OpenAI-compatible providers for `npm run demo`: enough to see routing, failover and
// streaming without any key. Not used by the gateway itself.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface FakeProvider {
  readonly name: string;
  readonly baseUrl: string;
  close(): Promise<void>;
}

export interface FakeProviderBehaviour {
  /** Every n-th chat request is answered 429 (retry-after 3 s), to show failover. 0 = never. */
  readonly rateLimitEvery: number;
  /** ms between streamed words. */
  readonly wordDelayMs: number;
}

// Kept whole: one small scripted HTTP server whose routes (models, transcriptions, speech, images, image uploads,
// rerank, moderations, a Llama Guard verdict, chat JSON, chat stream, 429 every n-th) read best side by side; it is demo scaffolding, not the request path.
export async function startFakeProvider(name: string, behaviour: FakeProviderBehaviour): Promise<FakeProvider> {
  let chatRequests = 0;
  const server: Server = createServer((request, response) => {
    void handle(request, response).catch(() => response.destroy());
  });
  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString("utf8");
    const uploaded = chunks.reduce((bytes, chunk) => bytes + chunk.length, 0);
    if (request.method === "GET" && request.url?.endsWith("/models")) {
      return json(response, 200, {
        object: "list",
        data: [
          { id: "demo-large" },
          { id: "demo-small" },
          { id: "demo-whisper" },
          { id: "demo-tts" },
          { id: "demo-image" },
          { id: "demo-rerank" },
          { id: "demo-moderation" },
          { id: "demo-llama-guard-3" },
        ],
      });
    }
    if (request.method !== "POST") return json(response, 404, { error: { message: "not found" } });
    if (request.url?.endsWith("/audio/transcriptions") || request.url?.endsWith("/audio/translations")) {
      // The upload as it came (multipart): the demo only says how much audio it got.
      return json(response, 200, { text: `A demo transcript from ${name}: ${uploaded} bytes uploaded.` });
    }
    if (request.url?.endsWith("/images/edits") || request.url?.endsWith("/images/variations")) {
      // The upload as it came (multipart): one pixel back, whatever the images and the prompt.
      return json(response, 200, {
        created: Math.floor(Date.now() / 1000),
        data: [{ b64_json: ONE_PIXEL_PNG, revised_prompt: `A demo image from ${name}, from ${uploaded} bytes` }],
      });
    }
    const body = (text === "" ? {} : JSON.parse(text)) as {
      model?: string;
      stream?: boolean;
      messages?: { content?: unknown }[];
      input?: unknown;
      query?: unknown;
      documents?: unknown;
      top_n?: unknown;
      return_documents?: unknown;
    };
    const model = body.model ?? "demo";
    if (request.url?.endsWith("/audio/speech")) {
      // A real WAV file the length of the text (a tenth of a second a character, up to ten seconds): of silence.
      const audio = silentWav(Math.min(10, String(body.input ?? "").length / 10));
      response.writeHead(200, { "content-type": "audio/wav", "content-length": audio.length });
      return void response.end(audio);
    }
    if (request.url?.endsWith("/images/generations")) {
      // One pixel per image asked for (`n`, up to four), whatever the prompt: a real PNG, as base64.
      const count = Math.min(4, Math.max(1, Number((body as { n?: unknown }).n) || 1));
      return json(response, 200, {
        created: Math.floor(Date.now() / 1000),
        data: Array.from({ length: count }, () => ({
          b64_json: ONE_PIXEL_PNG,
          revised_prompt: `A demo pixel from ${name}`,
        })),
      });
    }
    if (request.url?.endsWith("/rerank")) return json(response, 200, { model, ...rankBySharedWords(body) });
    if (request.url?.endsWith("/moderations")) return json(response, 200, { model, ...moderate(body.input) });
    if (model.includes("llama-guard")) {
      // Llama Guard's verdict on the user's message (the gateway's /v1/moderations sends one per input).
      const codes = hazardsOf(body.messages?.[0]?.content);
      const verdict = codes.length === 0 ? "safe" : `unsafe\n${codes.join(",")}`;
      return json(response, 200, {
        id: `chatcmpl-guard-${Date.now()}`,
        object: "chat.completion",
        model,
        choices: [{ index: 0, message: { role: "assistant", content: verdict }, finish_reason: "stop" }],
      });
    }
    if (request.url?.endsWith("/embeddings")) {
      return json(response, 200, {
        object: "list",
        data: [{ object: "embedding", index: 0, embedding: [0.1, 0.2, 0.3] }],
        model,
      });
    }
    chatRequests++;
    if (behaviour.rateLimitEvery > 0 && chatRequests % behaviour.rateLimitEvery === 0) {
      response.setHeader("retry-after", "3");
      return json(response, 429, {
        error: {
          message: `${name}: demo rate limit (every ${behaviour.rateLimitEvery}th request)`,
          type: "rate_limit_error",
        },
      });
    }
    const lastMessage = body.messages?.[body.messages.length - 1]?.content;
    const said = typeof lastMessage === "string" ? lastMessage.slice(0, 200) : "something";
    const answer = `Hello from the ${name} demo provider (${model}). You said: ${said}`;
    const id = `chatcmpl-demo-${chatRequests}`;
    const created = Math.floor(Date.now() / 1000);
    const usage = {
      prompt_tokens: said.split(/\s+/).length,
      completion_tokens: answer.split(/\s+/).length,
      total_tokens: 0,
    };
    usage.total_tokens = usage.prompt_tokens + usage.completion_tokens;
    if (body.stream !== true) {
      return json(response, 200, {
        id,
        object: "chat.completion",
        created,
        model,
        choices: [{ index: 0, message: { role: "assistant", content: answer }, finish_reason: "stop" }],
        usage,
      });
    }
    response.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
    const chunk = (delta: object, finishReason: string | null) =>
      `data: ${JSON.stringify({ id, object: "chat.completion.chunk", created, model, choices: [{ index: 0, delta, finish_reason: finishReason }] })}\n\n`;
    response.write(chunk({ role: "assistant", content: "" }, null));
    const words = answer.split(" ");
    for (const [index, word] of words.entries()) {
      await new Promise((resolve) => setTimeout(resolve, behaviour.wordDelayMs));
      if (response.destroyed) return;
      response.write(chunk({ content: index === 0 ? word : ` ${word}` }, null));
    }
    response.write(chunk({}, "stop"));
    response.end("data: [DONE]\n\n");
  }
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    name,
    baseUrl: `http://127.0.0.1:${port}/v1`,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function json(response: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  response.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
  response.end(text);
}

/** A 1x1 PNG (one transparent pixel), base64: the demo's every image. */
const ONE_PIXEL_PNG =
  "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==";

/**
 * The demo's reranker: a document's score is the share of the query's words it holds (Cohere's answer shape, best
 * first, `top_n` of them, the documents when asked).
 */
function rankBySharedWords(body: {
  query?: unknown;
  documents?: unknown;
  top_n?: unknown;
  return_documents?: unknown;
}): object {
  const wordsOf = (text: string) => new Set(text.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? []);
  const query = wordsOf(String(body.query ?? ""));
  const documents = Array.isArray(body.documents) ? (body.documents as unknown[]) : [];
  const texts = documents.map((document) =>
    typeof document === "string" ? document : String((document as { text?: unknown } | null)?.text ?? ""),
  );
  const results = texts
    .map((text, index) => {
      const words = wordsOf(text);
      const shared = [...query].filter((word) => words.has(word)).length;
      return {
        index,
        relevance_score: query.size === 0 ? 0 : shared / query.size,
        ...(body.return_documents === true ? { document: { text } } : {}),
      };
    })
    .sort((a, b) => b.relevance_score - a.relevance_score || a.index - b.index)
    .slice(0, typeof body.top_n === "number" ? body.top_n : texts.length);
  const tokens = [String(body.query ?? ""), ...texts].join(" ").split(/\s+/).length;
  return { results, usage: { total_tokens: tokens } };
}

/** The demo's idea of harm: a few words, each a Llama Guard hazard code and the OpenAI category it maps to. */
const DEMO_HAZARDS: Readonly<Record<string, { code: string; category: string }>> = {
  kill: { code: "S1", category: "violence" },
  hurt: { code: "S1", category: "violence" },
  steal: { code: "S2", category: "illicit" },
  hate: { code: "S10", category: "hate" },
};

/** The hazard codes of a text (or of a list of parts' texts), in the order of DEMO_HAZARDS. */
function hazardsOf(content: unknown): string[] {
  const text = typeof content === "string" ? content : JSON.stringify(content ?? "");
  const words = new Set(text.toLowerCase().match(/\p{L}+/gu) ?? []);
  return [...new Set(Object.entries(DEMO_HAZARDS).flatMap(([word, hazard]) => (words.has(word) ? [hazard.code] : [])))];
}

/** A native moderation answer (OpenAI's shape): one result per text, flagged for the demo's words. */
function moderate(input: unknown): object {
  const inputs = Array.isArray(input) && typeof input[0] === "string" ? (input as unknown[]) : [input];
  const categories = [...new Set(Object.values(DEMO_HAZARDS).map((hazard) => hazard.category))];
  const results = inputs.map((each) => {
    const found = new Set(
      hazardsOf(each).flatMap((code) =>
        Object.values(DEMO_HAZARDS)
          .filter((hazard) => hazard.code === code)
          .map((hazard) => hazard.category),
      ),
    );
    return {
      flagged: found.size > 0,
      categories: Object.fromEntries(categories.map((category) => [category, found.has(category)])),
      category_scores: Object.fromEntries(categories.map((category) => [category, found.has(category) ? 0.9 : 0.01])),
    };
  });
  return { id: `modr-demo-${Date.now()}`, results };
}

/** `seconds` of silence as a WAV file: 8 kHz, 8-bit mono PCM (128 is silence at 8 bits). */
function silentWav(seconds: number): Buffer {
  const rate = 8_000;
  const samples = Math.round(seconds * rate);
  const header = Buffer.alloc(44);
  header.write("RIFF", 0, "ascii");
  header.writeUInt32LE(36 + samples, 4);
  header.write("WAVEfmt ", 8, "ascii");
  header.writeUInt32LE(16, 16); // the fmt chunk's size
  header.writeUInt16LE(1, 20); // PCM
  header.writeUInt16LE(1, 22); // one channel
  header.writeUInt32LE(rate, 24);
  header.writeUInt32LE(rate, 28); // bytes per second
  header.writeUInt16LE(1, 32); // bytes per sample frame
  header.writeUInt16LE(8, 34); // bits per sample
  header.write("data", 36, "ascii");
  header.writeUInt32LE(samples, 40);
  return Buffer.concat([header, Buffer.alloc(samples, 128)]);
}
