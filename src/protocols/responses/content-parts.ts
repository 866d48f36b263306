// Responses input messages and content parts -> chat messages and content parts (request-mapping.ts applies them
// to each input item).
import { ASSISTANT_PART_TYPES, INSTRUCTION_PART_TYPES } from "../../responses-items.ts";
import type { ChatContentPart, ChatMessage } from "../chat-completions.ts";
import { unsupportedAt, validateAt } from "../validate.ts";
import {
  inputFileSchema,
  inputImageSchema,
  inputTextSchema,
  messageItemSchema,
  outputTextSchema,
  refusalSchema,
} from "./request-schema.ts";

type Path = readonly PropertyKey[];

export function toChatMessage(item: Record<string, unknown>, path: Path): ChatMessage {
  const message = validateAt(messageItemSchema, item, path);
  const contentPath = [...path, "content"];
  if (message.role === "assistant") {
    return {
      role: "assistant",
      content: contentText(message.content, contentPath, ASSISTANT_PART_TYPES),
    };
  }
  if (message.role === "system" || message.role === "developer") {
    // `developer` is OpenAI's newer name for `system`: kept as the client sent it, sent upstream as `system`
    // (request-mapping.ts withSentRoles).
    return { role: message.role, content: contentText(message.content, contentPath, INSTRUCTION_PART_TYPES) };
  }
  if (typeof message.content === "string") return { role: "user", content: message.content };
  const parts = message.content.map((part, index) => toChatPart(part, [...contentPath, index]));
  const isTextOnly = parts.every((part) => part.type === "text");
  // Plain text goes as a string: some chat providers accept content arrays only with images.
  return isTextOnly
    ? { role: "user", content: parts.map((part) => (part.type === "text" ? part.text : "")).join("") }
    : { role: "user", content: parts };
}

/** Text of a message that chat only takes as text (assistant, system); other part types are refused. */
function contentText(content: string | { type: string }[], path: Path, allowed: readonly string[]): string {
  if (typeof content === "string") return content;
  return content
    .map((part, index) => {
      const partPath = [...path, index];
      if (!allowed.includes(part.type)) {
        throw unsupportedAt(
          `\`${String(part.type).slice(0, 64)}\` content is not supported here; use ${allowed.map((t) => `\`${t}\``).join(" or ")}.`,
          [...partPath, "type"],
        );
      }
      if (part.type === "refusal") return validateAt(refusalSchema, part, partPath).refusal;
      if (part.type === "output_text") return validateAt(outputTextSchema, part, partPath).text;
      return validateAt(inputTextSchema, part, partPath).text;
    })
    .join("");
}

function toChatPart(part: { type: string }, path: Path): ChatContentPart {
  switch (part.type) {
    case "input_text":
    case "output_text":
      return {
        type: "text",
        text: validateAt(part.type === "input_text" ? inputTextSchema : outputTextSchema, part, path).text,
      };
    case "input_image": {
      const image = validateAt(inputImageSchema, part, path);
      if (typeof image.image_url !== "string" || image.image_url === "") {
        throw unsupportedAt(
          "`input_image` needs `image_url` (a URL or a data URL): the gateway keeps no uploaded files, so `file_id` cannot be used.",
          [...path, "image_url"],
        );
      }
      const detail =
        image.detail === "low" || image.detail === "high" || image.detail === "auto" ? { detail: image.detail } : {};
      return { type: "image_url", image_url: { url: image.image_url, ...detail } };
    }
    case "input_file": {
      const file = validateAt(inputFileSchema, part, path);
      if (typeof file.file_data !== "string" || file.file_data === "") {
        throw unsupportedAt(
          "`input_file` needs `file_data`: the gateway keeps no uploaded files and fetches no `file_url`.",
          [...path, "file_data"],
        );
      }
      return {
        type: "file",
        file: { file_data: file.file_data, ...(typeof file.filename === "string" ? { filename: file.filename } : {}) },
      };
    }
    default:
      throw unsupportedAt(
        `Content parts of type \`${String(part.type).slice(0, 64)}\` are not supported; use \`input_text\`, \`input_image\` or \`input_file\`.`,
        [...path, "type"],
      );
  }
}

export function splitOutput(parts: { type: string }[], path: Path): { text: string; images: ChatContentPart[] } {
  let text = "";
  const images: ChatContentPart[] = [];
  for (const [index, part] of parts.entries()) {
    const converted = toChatPart(part, [...path, index]);
    if (converted.type === "text") text += converted.text;
    else images.push(converted);
  }
  return { text, images };
}
