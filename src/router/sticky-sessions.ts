// Sticky routing (`routing.sticky_ttl_ms`, off by default): requests of one session (the body's `user`, or an
// `x-session-id` header) keep going to the deployment that last served them, for a while, unless it fails or is
// unavailable. Useful for prompt caches and for consistent behaviour within a conversation. Pure; bounded.
import type { Clock } from "../clock.ts";
import { MAX_SESSION_KEY_CHARS } from "../config/request-bounds.ts";

/**
 * The key a session is remembered under: per front door (`scope`, the endpoint's name), per client and per session.
 * A named client's sessions are its own: another named client sending the same `x-session-id` (or `user`) must
 * neither steer its routing nor learn, from where its own requests land, which deployment it used. Unnamed keys
 * share one space, as every client did before names existed. Client names have no `:` (config/schema.ts), and an
 * unnamed key's session starts `session:` or `user:`, never `client:`, so no two of these keys can be equal.
 */
export function stickySessionKey(
  scope: string,
  client: string | undefined,
  session: { readonly kind: "session" | "user"; readonly id: string },
): string {
  const own = client === undefined ? "" : `client:${client}:`;
  return `${scope}:${own}${session.kind}:${session.id}`;
}

/** Sessions remembered at once; the oldest is forgotten first. */
const MAX_SESSIONS = 10_000;

export class StickySessions {
  readonly #clock: Clock;
  readonly #entries = new Map<string, { deploymentKey: string; expiresAtMs: number }>();

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  get(sessionKey: string): string | undefined {
    const entry = this.#entries.get(sessionKey);
    if (entry === undefined) return undefined;
    if (entry.expiresAtMs <= this.#clock.now()) {
      this.#entries.delete(sessionKey);
      return undefined;
    }
    return entry.deploymentKey;
  }

  remember(sessionKey: string, deploymentKey: string, ttlMs: number): void {
    // A client chooses the key (`user`, `x-session-id`): a huge one is not kept, or 10,000 of them could hold GBs.
    if (sessionKey.length > MAX_SESSION_KEY_CHARS) return;
    this.#entries.delete(sessionKey);
    this.#entries.set(sessionKey, { deploymentKey, expiresAtMs: this.#clock.now() + ttlMs });
    if (this.#entries.size > MAX_SESSIONS) {
      const oldest = this.#entries.keys().next();
      if (oldest.done !== true) this.#entries.delete(oldest.value);
    }
  }

  forget(sessionKey: string): void {
    this.#entries.delete(sessionKey);
  }
}
