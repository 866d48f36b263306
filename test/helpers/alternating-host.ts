// A mock host whose chat template takes only alternating user/assistant turns: vLLM's 400 for any other order, word
// for word (what the gateway learns a role order `alternate` from, providers/message-order.ts).
import { CHAT_ROUTE } from "./e2e.ts";
import { chatCompletion, type MockUpstream, type RecordedRequest } from "./mock-upstream.ts";

/** vLLM's refusal of a chat template that alternates, as its OpenAI-compatible server words it. */
export const ALTERNATION_REFUSAL =
  "After the optional system message, conversation roles must alternate user/assistant/user/assistant/user...";

/** Every chat request of `mock` answered "Served." when its roles (system aside) alternate, refused with vLLM's 400 otherwise. */
export function playAlternatingHost(mock: MockUpstream): void {
  mock.setDefault(CHAT_ROUTE, (request: RecordedRequest) => {
    const body = request.body as { model: string; messages: { role: string }[] };
    const roles = body.messages.map((message) => message.role).filter((role) => role !== "system");
    return roles.every((role, index) => role === (index % 2 === 0 ? "user" : "assistant"))
      ? { kind: "json", body: chatCompletion("Served.", body.model) }
      : {
          kind: "json",
          status: 400,
          body: { object: "error", message: ALTERNATION_REFUSAL, type: "BadRequestError", param: null, code: 400 },
        };
  });
}
