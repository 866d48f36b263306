// The longest Responses `namespace` name the gateway takes: one rule for protocols/ (the door's input schema, the tool
// names made from it) and upstream/ (a native provider's answer kept for the next turn, which that schema reads back),
// which may not import each other.

/**
 * Every member's upstream name, lookups and description are made from a namespace's name, so its length counts once
 * per member: a 200 KB name over 2,000 members (a 270 KB body) held the event loop for 90 s and took 1 GB. Real ones
 * are short (Codex's `mcp__<server>__`; a chat function name is 64 at most).
 */
export const MAX_NAMESPACE_CHARS = 256;
