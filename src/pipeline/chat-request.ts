// A chat-kind door's entry to the pipeline (Responses, Messages, background runs, batch lines): handleRequest with
// its answer narrowed to JSON or a stream, since only speech's door is answered with relayed audio.
import { InternalError } from "../errors/gateway-error.ts";
import type { EndpointSpec } from "./endpoints.ts";
import type { GatewayRuntime } from "./gateway-runtime.ts";
import { handleRequest } from "./handle-request.ts";
import type { JsonAnswer, RequestContext, StreamAnswer } from "./pipeline-types.ts";

/** What a chat door's request (Responses, Messages) is answered with: JSON or events, never relayed audio. */
export type ChatPipelineResult = JsonAnswer | StreamAnswer;

/** handleRequest for a door whose endpoint is chat's: its answer is never audio (only speech's is). */
export async function handleChatRequest(
  runtime: GatewayRuntime,
  endpoint: EndpointSpec,
  rawBody: unknown,
  context: RequestContext,
): Promise<ChatPipelineResult> {
  const result = await handleRequest(runtime, endpoint, rawBody, context);
  if (result.kind !== "audio") return result;
  await result.cancel();
  throw new InternalError(`the ${endpoint.name} door got an audio answer`);
}
