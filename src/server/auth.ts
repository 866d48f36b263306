// Bearer-token check for clients. Constant-time comparison, so response timing does not reveal how much of a
// guessed key was right.
import { createHash, timingSafeEqual } from "node:crypto";

export class KeyRing {
  readonly #digests: Buffer[];
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
    const candidate = digest(match[1] ?? "");
    let isMatch = false;
    for (const known of this.#digests) if (timingSafeEqual(known, candidate)) isMatch = true;
    return isMatch;
  }
}

function digest(key: string): Buffer {
  return createHash("sha256").update(key).digest();
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
