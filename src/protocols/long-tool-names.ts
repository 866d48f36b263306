// Anthropic takes tool names of up to 128 characters (`^[a-zA-Z0-9_-]{1,128}$`), chat providers and OpenAI's
// Responses API 64 (OpenAI's rule, "a-z, A-Z, 0-9, underscores and dashes, with a maximum length of 64", which most
// copy). Claude Code names an MCP server's tools `mcp__<server>__<tool>`, and Codex, Cursor and the agent SDKs name
// them alike, which passes 64 with a long server or tool name; MCP tools may also be named with dots, slashes or
// spaces (`server.tool/name`: the MCP spec allows dots), which OpenAI refuses too. Sent as it came, every request of
// the session (each carries all its tools) was refused. Such a name goes upstream with every other character made
// `_`, cut to 55 characters, and `_` and 8 hex digits of a hash of the whole name added: a function of the name
// alone, so a call in the history maps to the same function on every turn, whatever `tools` holds then, and two
// names that read alike once made valid (`a.b`, `a/b`, `a_b`) stay apart. The model's calls come back named as the
// client named the tool. One rule for every door: the Messages and Chat Completions doors (LongToolNames), the
// Responses door's top-level tools (responses/tool-names.ts) and native Responses bodies
// (responses/native-tool-names.ts).
import { createHash } from "node:crypto";

/** The longest function name chat providers take. */
export const MAX_UPSTREAM_NAME_LENGTH = 64;
const HASH_LENGTH = 8;
const UPSTREAM_NAME = /^[a-zA-Z0-9_-]{1,64}$/;
const INVALID_CHARACTERS = /[^a-zA-Z0-9_-]/g;

/** Whether chat providers (and OpenAI's Responses API) take `name` as a function name as it is. */
export function isUpstreamToolName(name: string): boolean {
  return UPSTREAM_NAME.test(name);
}

/**
 * The function name `name` goes upstream as: itself when chat providers take it, else made valid, cut and hashed.
 * `attempt` > 0: another hash of the name (of the name and the attempt), for a renamed form another name has taken.
 */
export function upstreamToolName(name: string, attempt = 0): string {
  if (attempt === 0 && isUpstreamToolName(name)) return name;
  const hashed = attempt === 0 ? name : `${name}\u0000${attempt}`;
  const hash = createHash("sha256").update(hashed).digest("hex").slice(0, HASH_LENGTH);
  const valid = name.replace(INVALID_CHARACTERS, "_");
  return `${valid.slice(0, MAX_UPSTREAM_NAME_LENGTH - HASH_LENGTH - 1)}_${hash}`;
}

/**
 * The client's tool names as they go upstream, and back; one per request. A model's call of a shortened name in
 * another letter case (some providers lower-case the names they answer with: `mcp__Acme__...` came back
 * `mcp__acme__...`) maps back too, when no other name the request offered reads the same ignoring case.
 */
export class LongToolNames {
  /** Upstream name -> the client's, for the names that had to change. */
  readonly #clientNames = new Map<string, string>();
  /** Client name -> its upstream name, every name given so far (the same one each time it is asked). */
  readonly #upstreamOf = new Map<string, string>();
  /**
   * Every upstream name, lower-cased -> the client's name when it was shortened and no other name folds alike;
   * `null` when the name went as it came, or two names fold alike (then a call in another case is left as it came).
   */
  readonly #byFoldedName = new Map<string, string | null>();
  readonly #upstreamNames = new Set<string>();

  /**
   * Names that go as they came, claimed before any is renamed: a client may name a tool exactly as another's renamed
   * form (`server_tool_1a2b3c4d`, a tool copied from an upstream's answer or a log), and that one keeps its name
   * while the renamed one is hashed again. Without the claim the first asked keeps it.
   */
  claim(names: Iterable<unknown>): void {
    for (const name of names) if (typeof name === "string" && isUpstreamToolName(name)) this.upstream(name);
  }

  /**
   * The function name `name` goes upstream as (itself when chat providers take it and no other name has taken it).
   * Never one another client name goes as: two tools offered under one name, the model's call of it mapped back to
   * one of them, ran the other.
   */
  upstream(name: string): string {
    const known = this.#upstreamOf.get(name);
    if (known !== undefined) return known;
    let upstream = upstreamToolName(name);
    for (let attempt = 1; this.#upstreamNames.has(upstream); attempt++) upstream = upstreamToolName(name, attempt);
    this.#upstreamOf.set(name, upstream);
    if (upstream !== name) this.#clientNames.set(upstream, name);
    if (!this.#upstreamNames.has(upstream)) {
      this.#upstreamNames.add(upstream);
      const folded = upstream.toLowerCase();
      this.#byFoldedName.set(folded, this.#byFoldedName.has(folded) || upstream === name ? null : name);
    }
    return upstream;
  }

  /** The client's name of the function the model called (an unknown one as it came). */
  client(upstream: string): string {
    const exact = this.#clientNames.get(upstream);
    if (exact !== undefined || this.#upstreamNames.has(upstream)) return exact ?? upstream;
    return this.#byFoldedName.get(upstream.toLowerCase()) ?? upstream;
  }

  /** Whether any name had to change (else answers need no mapping back). */
  get hasRenamed(): boolean {
    return this.#clientNames.size > 0;
  }
}
