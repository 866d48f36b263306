// A user turn's and a tool result's content blocks (text, image, document) -> chat content parts.

import { isRecord } from "../../is-record.ts";
import type { ChatContentPart } from "../chat-completions.ts";
import {
  anthropicPath,
  type Block,
  blockAt,
  check,
  TOOL_RESULT_BLOCKS,
  unsupported,
  unsupportedBlock,
} from "./content-blocks.ts";
import { documentBlockSchema, imageBlockSchema, searchResultBlockSchema, textBlockSchema } from "./request-schema.ts";

type Path = readonly PropertyKey[];

/** The blocks a document's `content` source holds. */
const DOCUMENT_CONTENT_BLOCKS = ["text", "image"] as const;

/**
 * Document sources that point elsewhere: a chat provider takes a PDF only as data (a `file` part's `file_data`), and
 * the gateway fetches no URLs and keeps no uploaded files. Said plainly, rather than as a source type it does not know.
 */
const REMOTE_DOCUMENT_SOURCES: Readonly<Record<string, string>> = {
  url: "the gateway does not fetch documents, and chat providers take a PDF only as its data",
  file: "the gateway keeps no uploaded files",
};

/**
 * A user turn's or a tool result's block as chat content parts (none for thinking). `accepted`: the types taken
 * where the block is, as a refusal lists them.
 */
export function toChatParts(block: Block, path: Path, accepted: readonly string[]): ChatContentPart[] {
  switch (block.type) {
    case "text":
      return [{ type: "text", text: check(textBlockSchema, block, path).text }];
    case "image": {
      const { source } = check(imageBlockSchema, block, path);
      const url = source.type === "base64" ? `data:${source.media_type};base64,${source.data}` : source.url;
      return [{ type: "image_url", image_url: { url } }];
    }
    case "document":
      return documentParts(block, path);
    case "search_result":
      return [{ type: "text", text: searchResultText(block, path) }];
    case "thinking":
    case "redacted_thinking":
      return [];
    default:
      throw unsupportedBlock(block, path, accepted);
  }
}

/**
 * A `search_result` block as text the model reads. Anthropic shows the model the result's title and source so it can
 * cite them; dropped, a RAG tool's result would reach the model as nothing (refused before 2026-12-08, failing every
 * turn of a client that returns search results from a tool). Chat has no citations, so `citations` is not sent.
 */
function searchResultText(block: Block, path: Path): string {
  const result = check(searchResultBlockSchema, block, path);
  const text = result.content.map((inner) => inner.text).join("\n");
  return `Search result: ${result.title}\nSource: ${result.source}\n\n${text}`;
}

function documentParts(block: Block, path: Path): ChatContentPart[] {
  const sourceType = isRecord(block.source) ? block.source.type : undefined;
  const remote = typeof sourceType === "string" ? REMOTE_DOCUMENT_SOURCES[sourceType] : undefined;
  if (remote !== undefined) {
    const sourcePath = [...path, "source", "type"];
    throw unsupported(
      `${anthropicPath(sourcePath)}: Document sources of type \`${sourceType}\` are not supported: ${remote}. Send the document as a \`base64\` source (a PDF) or a \`text\` source.`,
      sourcePath,
    );
  }
  const document = check(documentBlockSchema, block, path);
  const { source } = document;
  if (source.type === "text") return [{ type: "text", text: source.data }];
  if (source.type === "content") {
    if (typeof source.content === "string") return [{ type: "text", text: source.content }];
    const contentPath = [...path, "source", "content"];
    return source.content.flatMap((value, index) => {
      const blockPath = [...contentPath, index];
      const inner = blockAt(value, blockPath, DOCUMENT_CONTENT_BLOCKS);
      if (inner.type !== "text" && inner.type !== "image") {
        throw unsupportedBlock(inner, blockPath, DOCUMENT_CONTENT_BLOCKS, "Document content blocks");
      }
      return toChatParts(inner, blockPath, DOCUMENT_CONTENT_BLOCKS);
    });
  }
  const filename = typeof document.title === "string" ? { filename: document.title } : {};
  return [{ type: "file", file: { file_data: `data:${source.media_type};base64,${source.data}`, ...filename } }];
}

export function toolResultContent(
  content: string | readonly unknown[] | undefined,
  path: Path,
): { text: string; images: ChatContentPart[] } {
  if (content === undefined) return { text: "", images: [] };
  if (typeof content === "string") return { text: content, images: [] };
  const texts: string[] = [];
  const images: ChatContentPart[] = [];
  for (const [index, value] of content.entries()) {
    const blockPath = [...path, index];
    for (const part of toChatParts(blockAt(value, blockPath, TOOL_RESULT_BLOCKS), blockPath, TOOL_RESULT_BLOCKS)) {
      if (part.type === "text") texts.push(part.text);
      else images.push(part);
    }
  }
  return { text: texts.join("\n"), images };
}
