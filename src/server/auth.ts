// Client key check. Constant-time comparison, so response timing does not reveal how much of a guessed key was
// right. A key may come as `Authorization: Bearer <key>` (OpenAI), `x-api-key` (Anthropic) or `api-key` (Azure).
import { hash, timingSafeEqual } from "node:crypto";

/** Accepted keys remembered per ring; a ring holding more starts over (clients hold a few keys each). */
const MAX_REMEMBERED_KEYS = 256;

export class KeyRing {
  readonly #digests: Buffer[];
  /**
   * Keys this ring accepted before: the next request with one skips the SHA-256 (~2-3 µs per request, the largest
   * item of the key check under load). A set lookup cannot leak how much of a wrong key was right: a miss, whatever
   * the key shares with a good one, goes to the constant-time comparison. A reload builds a new ring, so a revoked
   * key is never remembered past it.
   */
  readonly #accepted = new Set<string>();
  constructor(keys: readonly string[]) {
    this.#digests = keys.map(digest);
  }

  get isEmpty(): boolean {
    return this.#digests.length === 0;
  }

  /** Whether the Authorization header carries one of the keys. */
  accepts(authorization: string | undefined): boolean {
    if (authorization === undefined) return false;
    const match = /^Bearer\s+(.+)$/i.exec(authorization.trim());
    if (match === null) return false;
    return this.#isKnown(match[1] ?? "");
  }

  /** Whether any of the client key headers (`authorization`, `x-api-key`, `api-key`) carries one of the keys. */
  acceptsClient(headers: Readonly<Record<string, string | string[] | undefined>>): boolean {
    if (this.accepts(single(headers.authorization))) return true;
    for (const name of ["x-api-key", "api-key"]) {
      const value = single(headers[name])?.trim();
      if (value !== undefined && value !== "" && this.#isKnown(value)) return true;
    }
    return false;
  }

  #isKnown(key: string): boolean {
    if (this.#accepted.has(key)) return true;
    const candidate = digest(key);
    let isMatch = false;
    for (const known of this.#digests) if (timingSafeEqual(known, candidate)) isMatch = true;
    if (isMatch) {
      if (this.#accepted.size >= MAX_REMEMBERED_KEYS) this.#accepted.clear();
      this.#accepted.add(key);
    }
    return isMatch;
  }
}

/** Whether a request sends a client key in any of the accepted headers. */
export function hasClientKey(headers: Readonly<Record<string, string | string[] | undefined>>): boolean {
  return ["authorization", "x-api-key", "api-key"].some((name) => headers[name] !== undefined);
}

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/** One-shot hashing: a third of the cost of a createHash object per request. */
function digest(key: string): Buffer {
  return hash("sha256", key, "buffer");
}

/**
 * The key ring of the serving config, rebuilt when a reload swapped the config (keys added or revoked by a
 * reload apply to the next request).
 */
export function currentKeyRing<Config extends object>(
  currentConfig: () => Config,
  keysOf: (config: Config) => readonly string[],
): () => KeyRing {
  let cachedFor: Config | undefined;
  let cached = new KeyRing([]);
  return () => {
    const config = currentConfig();
    if (config !== cachedFor) {
      cached = new KeyRing(keysOf(config));
      cachedFor = config;
    }
    return cached;
  };
}
