// Client key check. Constant-time comparison, so response timing does not reveal how much of a guessed key was
// right. A key may come as `Authorization: Bearer <key>` (OpenAI), `x-api-key` (Anthropic) or `api-key` (Azure).
import { hash, timingSafeEqual } from "node:crypto";
import { AuthenticationError } from "../errors/gateway-error.ts";

/** Accepted keys remembered per ring; a ring holding more starts over (clients hold a few keys each). */
const MAX_REMEMBERED_KEYS = 256;

export class KeyRing {
  readonly #digests: Buffer[];
  /** Per key, its client's name (`server.api_keys` entries written `{ key, name }`); null: unnamed. */
  readonly #names: readonly (string | null)[];
  /**
   * Keys this ring accepted before: the next request with one skips the SHA-256 (~2-3 µs per request, the largest
   * item of the key check under load). A set lookup cannot leak how much of a wrong key was right: a miss, whatever
   * the key shares with a good one, goes to the constant-time comparison. A reload builds a new ring, so a revoked
   * key is never remembered past it.
   */
  readonly #accepted = new Map<string, string | null>();
  constructor(keys: readonly string[], names: readonly (string | null)[] = []) {
    this.#digests = keys.map(digest);
    this.#names = names;
  }

  get isEmpty(): boolean {
    return this.#digests.length === 0;
  }

  /** Whether the Authorization header carries one of the keys. */
  accepts(authorization: string | undefined): boolean {
    return this.#bearerClient(authorization) !== undefined;
  }

  /** Whether any of the client key headers (`authorization`, `x-api-key`, `api-key`) carries one of the keys. */
  acceptsClient(headers: Readonly<Record<string, string | string[] | undefined>>): boolean {
    return this.clientOf(headers) !== undefined;
  }

  /**
   * The client a request's key belongs to: its name, null for an unnamed key, undefined when no client key header
   * carries one of the keys.
   */
  clientOf(headers: Readonly<Record<string, string | string[] | undefined>>): string | null | undefined {
    const bearer = this.#bearerClient(single(headers.authorization));
    if (bearer !== undefined) return bearer;
    for (const name of ["x-api-key", "api-key"]) {
      const value = single(headers[name])?.trim();
      if (value === undefined || value === "") continue;
      const client = this.#clientOfKey(value);
      if (client !== undefined) return client;
    }
    return undefined;
  }

  #bearerClient(authorization: string | undefined): string | null | undefined {
    if (authorization === undefined) return undefined;
    const match = /^Bearer\s+(.+)$/i.exec(authorization.trim());
    if (match === null) return undefined;
    return this.#clientOfKey(match[1] ?? "");
  }

  #clientOfKey(key: string): string | null | undefined {
    const remembered = this.#accepted.get(key);
    if (remembered !== undefined) return remembered;
    const candidate = digest(key);
    let matched = -1;
    // Every digest is compared, a match or not: the time taken does not say which key (or whether one) matched.
    for (let index = 0; index < this.#digests.length; index++) {
      if (timingSafeEqual(this.#digests[index] as Buffer, candidate) && matched < 0) matched = index;
    }
    if (matched < 0) return undefined;
    const client = this.#names[matched] ?? null;
    if (this.#accepted.size >= MAX_REMEMBERED_KEYS) this.#accepted.clear();
    this.#accepted.set(key, client);
    return client;
  }
}

/** The 401 for a request whose client key headers carry no accepted key: a wrong key, or none at all. */
export function clientKeyRefused(
  headers: Readonly<Record<string, string | string[] | undefined>>,
): AuthenticationError {
  return new AuthenticationError(
    hasClientKey(headers)
      ? "Invalid API key."
      : "Missing API key: send `Authorization: Bearer <key>` (or `x-api-key: <key>`).",
  );
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
  namesOf?: (config: Config) => readonly (string | null)[],
): () => KeyRing {
  let cachedFor: Config | undefined;
  let cached = new KeyRing([]);
  return () => {
    const config = currentConfig();
    if (config !== cachedFor) {
      cached = new KeyRing(keysOf(config), namesOf?.(config));
      cachedFor = config;
    }
    return cached;
  };
}
