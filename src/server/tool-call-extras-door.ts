// A door whose protocol has no place for a tool call's `extra_content` (Messages' `tool_use`, Responses'
// `function_call`) keeps it in the gateway: read from each chat answer it translates (JSON, stream, background run),
// given back to the assistant tool call of the same id when a later request is translated, before it is served
// (protocols/tool-call-extras.ts says why: Gemini 3's thought signatures). The same for an assistant message's
// `reasoning_details`, kept under its first call's id and given back to OpenRouter and Vercel AI
// Gateway candidates only (protocols/reasoning-details.ts says why: OpenRouter's Gemini signatures).
import type { GatewayError } from "../errors/gateway-error.ts";
import type { ChatMessage } from "../protocols/chat-completions.ts";
import {
  reasoningKeysToRecall,
  reasoningOfCompletion,
  StreamedReasoning,
  withRecalledReasoning,
} from "../protocols/reasoning-details.ts";
import {
  extrasOfCompletion,
  StreamedExtras,
  type ToolCallExtra,
  unsignedCallIds,
  withRecalledExtras,
} from "../protocols/tool-call-extras.ts";
import { clientScope, MAX_EXTRA_BYTES, type ToolCallExtrasStore } from "../state/tool-call-extras.ts";
import type { RecallToolCallExtras, UpstreamApi } from "../upstream/forward-types.ts";
import type { BackgroundExchange } from "./background-responses.ts";
import type { Exchange, ProtocolAdapter } from "./protocol-adapters.ts";

/** The adapter, keeping and giving back its tool calls' `extra_content` in `store`. */
export function keepingToolCallExtras(adapter: ProtocolAdapter, store: ToolCallExtrasStore): ProtocolAdapter {
  return {
    endpoint: adapter.endpoint,
    async begin(body, client) {
      const exchange = await adapter.begin(body, client);
      const own = scopedTo(store, client);
      const { chatBody, recallRest } = await recalledHere(exchange.chatBody, own);
      const kept = withExtras(exchange, chatBody, own);
      return recallRest === undefined ? kept : { ...kept, recallToolCallExtras: recallRest };
    },
  };
}

/**
 * The store as one client sees it: its call ids under its own name. Call ids come back from the client (a Messages
 * `tool_use` id, a Responses `call_id`), so without a scope a client that sends another's id (seen in a shared log,
 * or one an upstream repeats) would have that client's signature sent with its own history: the other session's
 * encrypted reasoning restored into its turn, or a 400 when Gemini finds it does not match. Requests without a
 * client name (no `server.api_keys`, an unnamed key) share one scope, as they share everything else.
 */
function scopedTo(store: ToolCallExtrasStore, client: string | null): ToolCallExtrasStore {
  const scope = clientScope(client);
  const unscoped = (found: ReadonlyMap<string, Readonly<Record<string, unknown>>>) => {
    const own = new Map<string, Readonly<Record<string, unknown>>>();
    for (const [key, extra] of found) own.set(key.slice(scope.length), extra);
    return own;
  };
  return {
    isShared: store.isShared,
    remember: (extras) => store.remember(extras.map(({ id, extra }) => ({ id: scope + id, extra }))),
    recall: async (ids) => unscoped(await store.recall(ids.map((id) => scope + id))),
    recallHere: async (ids) => unscoped(await store.recallHere(ids.map((id) => scope + id))),
  };
}

type Recalled = ReadonlyMap<string, Readonly<Record<string, unknown>>>;

/**
 * The request's history with what this process holds for its unsigned calls (no round trip: every request may
 * have them), and the look-ups for the pipeline to make for a candidate that reads them only
 * (ForwardRequest.recallToolCallExtras): a Gemini candidate, the calls still unsigned when a shared store may know
 * them (a Claude Code session routed to another provider used to cost an MGET per turn for nothing); an OpenRouter or
 * Vercel AI Gateway candidate, the assistant messages' `reasoning_details` (memory first, then the shared store),
 * which no other deployment is sent. Each made once, whichever attempts ask.
 */
async function recalledHere(
  chatBody: Exchange["chatBody"],
  store: ToolCallExtrasStore,
): Promise<{ readonly chatBody: Exchange["chatBody"]; readonly recallRest?: RecallToolCallExtras }> {
  const ids = unsignedCallIds(chatBody.messages);
  const here: Recalled = ids.length === 0 ? new Map() : await store.recallHere(ids);
  const messages = withRecalledExtras(chatBody.messages, here);
  // Copies of the translated messages with one field more: still chat messages.
  const body = messages === chatBody.messages ? chatBody : { ...chatBody, messages: messages as ChatMessage[] };
  const missing = store.isShared ? ids.filter((id) => !here.has(id)) : [];
  const reasoningKeys = reasoningKeysToRecall(chatBody.messages);
  if (missing.length === 0 && reasoningKeys.length === 0) return { chatBody: body };
  let signatures: Promise<Recalled> | undefined;
  let reasoning: Promise<Recalled> | undefined;
  const recallRest: RecallToolCallExtras = async (history, family) => {
    if (family === "reasoning_details") {
      if (reasoningKeys.length === 0) return history;
      reasoning ??= store.recall(reasoningKeys).catch(() => new Map());
      return withRecalledReasoning(history, await reasoning);
    }
    if (missing.length === 0) return history;
    signatures ??= store.recall(missing).catch(() => new Map());
    return withRecalledExtras(history, await signatures);
  };
  return { chatBody: body, recallRest };
}

/**
 * ms an answer waits, at most, for its calls' `extra_content` to be kept before the client gets it (the JSON answer;
 * a stream's last events: `[DONE]`, `message_stop`, `response.completed`; a background run's final state). With
 * Redis the write is one script per client (its values and its budget: redis-tool-call-extras.ts): without the wait
 * a next turn sent at once to another replica (an agent runs a quick tool in milliseconds) looked before the write
 * landed and got the fallback. A Redis that is down fails the
 * write at once (no offline queue) and a slow one at its command timeout (200 ms, redis-client.ts); this bound is
 * the backstop above it, so a store in trouble costs an answer at most this much, and the real signature only.
 */
export const KEEP_WAIT_MS = 250;

function withExtras(exchange: Exchange, chatBody: Exchange["chatBody"], store: ToolCallExtrasStore): Exchange {
  const writes: Promise<void>[] = [];
  // A native provider's answer (`api` not `chat`) is the protocol's own: nothing of chat's to keep.
  const remember = (extras: readonly ToolCallExtra[]): void => {
    // A failure to keep costs the real signature only (the fallback is sent), never the answer.
    if (extras.length > 0) writes.push(store.remember(extras).catch(() => {}));
  };
  const kept = (): Promise<void> =>
    writes.length === 0 ? Promise.resolve() : within(Promise.all(writes), KEEP_WAIT_MS);
  const answer: Exchange["answer"] = (completion, servedModel, api) => {
    if (api === "chat") remember(keptOfCompletion(completion));
    return exchange.answer(completion, servedModel, api);
  };
  const stream: Exchange["stream"] = (servedModel, api, promptTokensEstimate) => {
    const translator = exchange.stream(servedModel, api, promptTokensEstimate);
    return api === "chat" ? tapped(translator, remember) : translator;
  };
  const { background, answered: innerAnswered, streamEnded: innerStreamEnded } = exchange;
  return {
    ...exchange,
    chatBody,
    answer,
    stream,
    // Kept before the answer is sent (protocol-adapters.ts calls these before the reply and the stream's last events).
    answered: async (made) => {
      await kept();
      return innerAnswered?.(made);
    },
    streamEnded: async (isSuccess) => {
      await kept();
      return (await innerStreamEnded?.(isSuccess)) ?? "";
    },
    background: background === undefined ? undefined : backgroundWithExtras(background, remember, kept),
  };
}

/** Settles when `promise` does or after `ms`, whichever comes first; never rejects. */
function within(promise: Promise<unknown>, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    promise.then(
      () => {
        clearTimeout(timer);
        resolve();
      },
      () => {
        clearTimeout(timer);
        resolve();
      },
    );
  });
}

interface Translator {
  push(chunk: unknown): string;
  finish(): string;
  fail(error: GatewayError): string;
  /** Read through (protocol-adapters.ts StreamTranslator): dropped, the relay took a stop-sequence end for a failure. */
  readonly hasEndedAnswer: boolean;
}

/** What a chat answer gives to keep: its calls' `extra_content` and its tool-calling messages' `reasoning_details`. */
function keptOfCompletion(completion: unknown): ToolCallExtra[] {
  return [...extrasOfCompletion(completion), ...reasoningOfCompletion(completion)];
}

/**
 * The translator, its chunks read for `extra_content` and `reasoning_details` too; what was found is kept when the
 * stream ends.
 */
function tapped(translator: Translator, remember: (extras: readonly ToolCallExtra[]) => void): Translator {
  const extras = new StreamedExtras();
  const reasoning = new StreamedReasoning(MAX_EXTRA_BYTES);
  const keep = (): void => remember([...extras.all, ...reasoning.all]);
  return {
    push(chunk) {
      extras.push(chunk);
      reasoning.push(chunk);
      return translator.push(chunk);
    },
    finish() {
      keep();
      return translator.finish();
    },
    // A failed stream may still have answered calls the client runs (Claude Code keeps a cut turn's tool uses).
    fail(error) {
      keep();
      return translator.fail(error);
    },
    get hasEndedAnswer() {
      return translator.hasEndedAnswer;
    },
  };
}

type BackgroundTranslator = ReturnType<BackgroundExchange["stream"]>;

/** The same for a background run's translator, its `cancel` and `result` read through. */
function tappedBackground(
  translator: BackgroundTranslator,
  remember: (extras: readonly ToolCallExtra[]) => void,
): BackgroundTranslator {
  const tap = tapped(translator, remember);
  return {
    push: tap.push,
    finish: tap.finish,
    fail: tap.fail,
    cancel: () => translator.cancel(),
    get result() {
      return translator.result;
    },
    get hasEndedAnswer() {
      return translator.hasEndedAnswer;
    },
  };
}

function backgroundWithExtras(
  background: BackgroundExchange,
  remember: (extras: readonly ToolCallExtra[]) => void,
  kept: () => Promise<void>,
): BackgroundExchange {
  return {
    ...background,
    // The final state is what a poll reads as done: the calls it names are kept before it.
    keep: async (response, events, isFinal, expected, notAfterMs) => {
      if (isFinal) await kept();
      return background.keep(response, events, isFinal, expected, notAfterMs);
    },
    read: background.read.bind(background),
    answer: (completion, servedModel, api: UpstreamApi) => {
      if (api === "chat") remember(keptOfCompletion(completion));
      return background.answer(completion, servedModel, api);
    },
    stream: (servedModel, api) => {
      const translator = background.stream(servedModel, api);
      return api === "chat" ? tappedBackground(translator, remember) : translator;
    },
  };
}
