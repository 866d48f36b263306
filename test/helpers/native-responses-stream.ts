// Native Responses streams as OpenAI sends them (`event:` lines, sequence numbers), for tests whose mock upstream is a
// provider marked `responses_api: native`: a text answer, or any output items, each added and done in turn.

export const RESPONSES_ROUTE = "POST /v1/responses";

type Json = Record<string, unknown>;

export function textMessage(id: string, text: string): Json {
  return {
    id,
    type: "message",
    status: "completed",
    role: "assistant",
    content: [{ type: "output_text", text, annotations: [] }],
  };
}

/** A Responses object as OpenAI answers it (`store: false`, as the gateway asks). */
export function nativeResponse(output: readonly object[], status = "completed"): Json {
  return {
    id: "resp_upstream_1",
    object: "response",
    created_at: 1767225600,
    status,
    error: null,
    incomplete_details: null,
    model: "native-model",
    output,
    usage: status === "completed" ? { input_tokens: 11, output_tokens: 4, total_tokens: 15 } : null,
    store: false,
    previous_response_id: null,
    metadata: {},
  };
}

/** The events that open a stream: `response.created`, `response.in_progress`. */
export function streamStart(): Json[] {
  const response = nativeResponse([], "in_progress");
  return [
    { type: "response.created", response },
    { type: "response.in_progress", response },
  ];
}

/** One text message's events: added, its part, `deltas`, then done (at `outputIndex`). */
export function messageEvents(id: string, deltas: string[], outputIndex = 0): Json[] {
  const text = deltas.join("");
  const at = { item_id: id, output_index: outputIndex, content_index: 0 };
  return [
    { type: "response.output_item.added", output_index: outputIndex, item: { ...textMessage(id, ""), content: [] } },
    { type: "response.content_part.added", ...at, part: { type: "output_text", text: "", annotations: [] } },
    ...deltas.map((delta) => ({ type: "response.output_text.delta", ...at, delta, logprobs: [] })),
    { type: "response.output_text.done", ...at, text, logprobs: [] },
    { type: "response.content_part.done", ...at, part: { type: "output_text", text, annotations: [] } },
    { type: "response.output_item.done", output_index: outputIndex, item: textMessage(id, text) },
  ];
}

/** An item that comes whole (a hosted tool's call): added, then done. */
export function itemEvents(item: Json, outputIndex: number): Json[] {
  return [
    { type: "response.output_item.added", output_index: outputIndex, item: { ...item, status: "in_progress" } },
    { type: "response.output_item.done", output_index: outputIndex, item },
  ];
}

/** A whole answer of these output items: start, each item's events, `response.completed`. */
export function answerEvents(output: readonly object[]): Json[] {
  const items = (output as readonly Json[]).flatMap((item, index) =>
    item.type === "message" && Array.isArray(item.content)
      ? messageEvents(String(item.id), [String((item.content[0] as Json | undefined)?.text ?? "")], index)
      : itemEvents(item, index),
  );
  return [...streamStart(), ...items, { type: "response.completed", response: nativeResponse(output) }];
}

/** Events as SSE text, with `event:` lines and sequence numbers from `firstSequence`. */
export function sseText(events: Json[], firstSequence = 0): string {
  return events
    .map(
      (event, index) =>
        `event: ${String(event.type)}\ndata: ${JSON.stringify({ ...event, sequence_number: firstSequence + index })}\n\n`,
    )
    .join("");
}
