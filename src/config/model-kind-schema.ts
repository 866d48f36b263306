// What a model is (its `kind`: the endpoint family it serves) and, for a moderation model, how it is called
// (`moderation_api`): the keys a configured model, or a preset's known model, says them with (provider-schema.ts).
import { z } from "zod";
import { ZOD_CUSTOM_ISSUE } from "./scoring-schema.ts";

/**
 * How a moderation model is called (providers/moderation-api.ts): its own `/moderations`, or Llama Guard 3/4's verdict
 * through `/chat/completions`. Default: read from the id.
 */
export const moderationApiSchema = z.enum(["native", "llama_guard"]);

export const modelKindSchema = z.enum([
  "chat",
  "embedding",
  "transcription",
  "speech",
  "audio",
  "image",
  "video",
  "ocr",
  "rerank",
  "moderation",
]);

/** A `moderation_api` says the model is a moderation model: another `kind` beside it is a contradiction. */
export function moderationApiOfKind(
  model: { readonly kind?: string | undefined; readonly moderation_api?: string | undefined },
  context: z.RefinementCtx,
): void {
  if (model.moderation_api === undefined || model.kind === undefined || model.kind === "moderation") return;
  context.addIssue({
    code: ZOD_CUSTOM_ISSUE,
    path: ["moderation_api"],
    message: `is for moderation models only (this one is \`kind: ${model.kind}\`): leave \`kind\` out or set it to \`moderation\``,
  });
}
