// Which upstream function each Responses tool became, and back. Chat providers take one flat list of functions
// whose names match ^[a-zA-Z0-9_-]{1,64}$ (OpenAI's rule, which most providers copy: a dot is refused), while a
// Responses request may group function and custom tools under a `namespace` tool (Codex groups an MCP server's
// tools so, under `mcp__<server>__`), and the model's call of one comes back as a `function_call` (or
// `custom_tool_call`) item naming the tool and, in `namespace`, its group.
//
// A member goes upstream as `<namespace>__<name>` (no second separator when the namespace already ends with one,
// so Codex's `mcp__github__` + `create_issue` is `mcp__github__create_issue`, the flat name Codex itself used before
// namespaces), other characters replaced by `_`. A name longer than 64, or one that would be another tool's name
// too, is cut and ends with `_` and 8 hex digits of a hash of the namespace and the name: deterministic, so the same
// tools give the same names on every request (the client sends its calls back namespaced, and they are flattened
// again with the request's own tools).
//
// A top-level function (or custom tool) whose name is longer than 64, or has characters other than letters, digits,
// `_` and `-`, goes upstream made valid, cut and hashed by the rule every
// door shares (../long-tool-names.ts: a function of the name alone, so a call in the history that the request no
// longer offers gets the same name), and its calls come back under its own name. One whose renamed form another
// top-level tool holds as its own name (a tool literally named `server_tool_<hash>` beside `server.tool`) is hashed
// again with an attempt number, as LongToolNames does on the other doors: the two went upstream under one name.
//
// A top-level function (or custom tool) named `tool_search` beside the client-run `tool_search` (a tool search loaded
// it: an MCP server's own search tool) would be the search's function name upstream too: it goes upstream as
// `tool_search_` and 8 hex digits of a hash, and its calls come back named `tool_search`. It does so on every
// request, the search offered or not: a continuation that stopped offering the search (Codex offers it to some model
// names only) sent it back under the plain name, so the history's calls of the search and of the function pointed
// at one function. (The request's own tools may not be so named beside the search: tool-mapping.ts refuses it, as
// the client can rename its own.)
import { createHash } from "node:crypto";
import { MAX_NAMESPACE_CHARS } from "../../responses-namespace.ts";
import { upstreamToolName } from "../long-tool-names.ts";
import { inputOfArguments } from "./custom-tools.ts";
import { isClientToolSearch, TOOL_SEARCH_FUNCTION } from "./tool-search.ts";

type JsonObject = Record<string, unknown>;

export interface ClientToolName {
  /** `tool_search`: the client-run tool search (tool-search.ts), one function upstream. */
  readonly type: "function" | "custom" | "tool_search";
  readonly name: string;
  /** The `namespace` tool it belongs to; undefined for a top-level tool. */
  readonly namespace: string | undefined;
}

const SEPARATOR = "__";
const MAX_NAME_LENGTH = 64;
const INVALID_CHARACTERS = /[^a-zA-Z0-9_-]/g;
const HASH_LENGTH = 8;

interface Member {
  readonly type: "function" | "custom";
  readonly name: string;
  readonly namespace: string;
}

export class ToolNames {
  readonly #byUpstream = new Map<string, ClientToolName>();
  readonly #byMember = new Map<string, string>();
  /**
   * Members by their qualified `<namespace>.<name>` (a `tool_choice` may name one so), the shortest namespace first
   * where two spell the same (`a.b` + `c`, `a` + `b.c`). Indexed once: trying every dot of a chosen name, each with
   * a lookup as long as the name, was quadratic, and a 160 KB name of dots held the event loop for minutes.
   */
  readonly #byQualified = new Map<string, { readonly upstream: string; readonly namespaceLength: number }>();
  readonly #topLevel = new Set<string>();
  /** Top-level tools that go upstream under another name (see the header): client name -> upstream name. */
  readonly #renamedTopLevel = new Map<string, string>();
  readonly #membersByNamespace = new Map<string, string[]>();
  /** Built at the first call not named exactly as a tool went upstream (#byFoldedName). */
  #foldedNames: Map<string, ClientToolName | null> | undefined;

  /**
   * Read leniently from a request's `tools` (validated elsewhere, tool-mapping.ts): what is not a function, custom
   * or namespace tool with the fields it needs is skipped (a kept response from an older version may have no
   * `tools`). The first of two tools of one name wins.
   */
  static of(tools: unknown): ToolNames {
    const names = new ToolNames();
    const members: Member[] = [];
    const list: readonly unknown[] = Array.isArray(tools) ? tools : [];
    const taken = namesGoingAsTheyCame(list);
    for (const tool of list) {
      if (isClientToolSearch(tool)) {
        names.#topLevel.add(TOOL_SEARCH_FUNCTION);
        if (!names.#byUpstream.has(TOOL_SEARCH_FUNCTION)) {
          const search = { type: "tool_search", name: TOOL_SEARCH_FUNCTION, namespace: undefined } as const;
          names.#byUpstream.set(TOOL_SEARCH_FUNCTION, search);
        }
        continue;
      }
      const named = asNamedTool(tool);
      if (named === undefined) continue;
      if (named.type === "function" || named.type === "custom") {
        names.#topLevel.add(named.name);
        // A second tool of one name: the first's name (and the first keeps the calls, as below).
        const upstream = names.#renamedTopLevel.get(named.name) ?? freeUpstreamName(named.name, taken);
        if (upstream !== named.name) names.#renamedTopLevel.set(named.name, upstream);
        if (!names.#byUpstream.has(upstream)) {
          names.#byUpstream.set(upstream, { type: named.type, name: named.name, namespace: undefined });
        }
      } else if (named.type === "namespace" && Array.isArray(named.tools) && named.name.length <= MAX_NAMESPACE_CHARS) {
        // A longer name is refused by the schema (request-schema.ts), which runs after this lenient read.
        for (const member of named.tools) {
          const inner = asNamedTool(member);
          if (inner?.type === "function" || inner?.type === "custom") {
            members.push({ type: inner.type, name: inner.name, namespace: named.name });
          }
        }
      }
    }
    names.#addMembers(members);
    return names;
  }

  #addMembers(members: readonly Member[]): void {
    const flatCounts = new Map<string, number>();
    for (const member of members) {
      const flat = flatName(member.namespace, member.name);
      flatCounts.set(flat, (flatCounts.get(flat) ?? 0) + 1);
    }
    for (const member of members) {
      const key = memberKey(member.namespace, member.name);
      if (this.#byMember.has(key)) continue;
      const flat = flatName(member.namespace, member.name);
      const isShared = this.#isTopLevelUpstream(flat) || (flatCounts.get(flat) ?? 0) > 1;
      const upstream = isShared ? hashedName(flat, member.namespace, member.name) : flat;
      this.#byMember.set(key, upstream);
      const qualified = `${member.namespace}.${member.name}`;
      const earlier = this.#byQualified.get(qualified);
      if (earlier === undefined || member.namespace.length < earlier.namespaceLength) {
        this.#byQualified.set(qualified, { upstream, namespaceLength: member.namespace.length });
      }
      if (!this.#byUpstream.has(upstream)) this.#byUpstream.set(upstream, member);
      const inNamespace = this.#membersByNamespace.get(member.namespace) ?? [];
      inNamespace.push(upstream);
      this.#membersByNamespace.set(member.namespace, inNamespace);
    }
  }

  /** Whether a top-level tool goes upstream by this name. */
  #isTopLevelUpstream(upstream: string): boolean {
    const client = this.#byUpstream.get(upstream);
    return client !== undefined && client.namespace === undefined;
  }

  /**
   * The upstream name of a tool the client names (a call it sends back, a tool_choice): a namespaced one by the
   * request's tools, or by the plain rule when the request no longer offers it (an older call in the history); a
   * top-level one by its own name, unless it is renamed (a function named `tool_search` beside the search) or too
   * long (shortened).
   */
  upstreamName(name: string, namespace: string | null | undefined): string {
    if (typeof namespace !== "string" || namespace === "") {
      return this.#renamedTopLevel.get(name) ?? topLevelUpstreamName(name);
    }
    return this.#byMember.get(memberKey(namespace, name)) ?? flatName(namespace, name);
  }

  /**
   * How the client knows the function the model called (a name the request did not offer: a plain function). A
   * renamed tool's upstream name answered in another letter case (some providers lower-case the names they answer
   * with) is that tool's, when no other tool's upstream name reads the same ignoring case.
   */
  clientName(upstream: string): ClientToolName {
    const client = this.#byUpstream.get(upstream) ?? this.#byFoldedName().get(upstream.toLowerCase()) ?? undefined;
    if (client !== undefined) return client;
    // A function named `tool_search` that the request no longer offers (a call of it in a kept conversation).
    const name = upstream === RENAMED_TOOL_SEARCH ? TOOL_SEARCH_FUNCTION : upstream;
    return { type: "function", name, namespace: undefined };
  }

  /** Upstream names lower-cased -> the renamed tool; `null` for a name sent as it came, or two that fold alike. */
  #byFoldedName(): Map<string, ClientToolName | null> {
    if (this.#foldedNames !== undefined) return this.#foldedNames;
    const folded = new Map<string, ClientToolName | null>();
    for (const [upstream, client] of this.#byUpstream) {
      const key = upstream.toLowerCase();
      const isRenamed = upstream !== client.name || client.namespace !== undefined;
      folded.set(key, folded.has(key) || !isRenamed ? null : client);
    }
    this.#foldedNames = folded;
    return folded;
  }

  /**
   * The upstream name a `tool_choice` means: `{name, namespace}`, a top-level tool's `name`, or a member's
   * qualified `<namespace>.<name>` (as the OpenAI Agents SDK names a namespaced function). Undefined: no such tool.
   */
  chosenName(name: string, namespace: string | null | undefined): string | undefined {
    if (typeof namespace === "string" && namespace !== "") return this.#byMember.get(memberKey(namespace, name));
    if (this.#topLevel.has(name)) return this.#renamedTopLevel.get(name) ?? name;
    return this.#byQualified.get(name)?.upstream;
  }

  /** The upstream names of a namespace's members (empty for a namespace the request does not have). */
  membersOf(namespace: string): readonly string[] {
    return this.#membersByNamespace.get(namespace) ?? [];
  }
}

/**
 * Function call items as chat messages kept them (upstream names) -> as the client sent them: a member's call
 * named with its `namespace`, a custom tool's call a `custom_tool_call` (its output a `custom_tool_call_output`).
 */
export function asClientCalls(items: readonly JsonObject[], names: ToolNames): JsonObject[] {
  const customCalls = new Set<unknown>();
  return items.map((item) => {
    if (item.type === "function_call" && typeof item.name === "string") {
      const client = names.clientName(item.name);
      const { arguments: args, ...rest } = item;
      const named = { ...rest, ...namedAs(client) };
      // A tool search's call stays a function call here: its output, the tools it loaded, is text by now.
      if (client.type !== "custom") return { ...named, arguments: args };
      customCalls.add(item.call_id);
      return { ...named, type: "custom_tool_call", input: inputOfArguments(String(args)) };
    }
    if (item.type === "function_call_output" && customCalls.has(item.call_id)) {
      return { ...item, type: "custom_tool_call_output" };
    }
    return item;
  });
}

/** A call item's `name`, and `namespace` when the tool is a namespace's member. */
export function namedAs(client: ClientToolName): { name: string; namespace?: string } {
  return client.namespace === undefined ? { name: client.name } : { name: client.name, namespace: client.namespace };
}

function asNamedTool(value: unknown): { type: unknown; name: string; tools?: unknown } | undefined {
  if (value === null || typeof value !== "object") return undefined;
  const { type, name, tools } = value as { type?: unknown; name?: unknown; tools?: unknown };
  return typeof name === "string" && name !== "" ? { type, name, tools } : undefined;
}

function memberKey(namespace: string, name: string): string {
  return JSON.stringify([namespace, name]);
}

/** `<namespace>__<name>` made valid as a function name (see the header). */
export function flatName(namespace: string, name: string): string {
  const joined = namespace.endsWith(SEPARATOR) ? `${namespace}${name}` : `${namespace}${SEPARATOR}${name}`;
  const valid = joined.replace(INVALID_CHARACTERS, "_");
  return valid.length <= MAX_NAME_LENGTH ? valid : hashedName(valid, namespace, name);
}

/**
 * A top-level tool's upstream name: a function named `tool_search` always gets a name of its own (see the header), a
 * long one is shortened, any other is its own. A function of the name alone: the same on every turn.
 */
function topLevelUpstreamName(name: string): string {
  return name === TOOL_SEARCH_FUNCTION ? RENAMED_TOOL_SEARCH : upstreamToolName(name);
}

/**
 * The top-level names that go upstream as they came (valid function names; not `tool_search`, always renamed), and
 * the client-run search's function: a renamed top-level tool never takes one of them (long-tool-names.ts `claim`).
 */
function namesGoingAsTheyCame(tools: readonly unknown[]): Set<string> {
  const taken = new Set<string>();
  for (const tool of tools) {
    if (isClientToolSearch(tool)) taken.add(TOOL_SEARCH_FUNCTION);
    const named = asNamedTool(tool);
    if (named === undefined || (named.type !== "function" && named.type !== "custom")) continue;
    if (topLevelUpstreamName(named.name) === named.name) taken.add(named.name);
  }
  return taken;
}

/**
 * A top-level tool's upstream name, hashed again (with an attempt number, as LongToolNames does) while its renamed form
 * is taken by a name that goes as it came or an earlier renamed one; the name is added to `taken`. Only a tool set
 * holding such a literal name gets another form: any other request names the tool by `topLevelUpstreamName` alone.
 */
function freeUpstreamName(name: string, taken: Set<string>): string {
  let upstream = topLevelUpstreamName(name);
  if (upstream === name) return upstream;
  for (let attempt = 1; taken.has(upstream); attempt++) upstream = upstreamToolName(name, attempt);
  taken.add(upstream);
  return upstream;
}

function hashedName(flat: string, namespace: string, name: string): string {
  const hash = createHash("sha256").update(memberKey(namespace, name)).digest("hex").slice(0, HASH_LENGTH);
  return `${flat.slice(0, MAX_NAME_LENGTH - HASH_LENGTH - 1)}_${hash}`;
}

/** The upstream name of a function (or custom tool) named `tool_search`: `tool_search_` and 8 hex digits. */
const RENAMED_TOOL_SEARCH = hashedName(TOOL_SEARCH_FUNCTION, "", TOOL_SEARCH_FUNCTION);
