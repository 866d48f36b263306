// The gateway's one redaction of what it shows, logs, records, exports or stores: every configured secret (provider
// keys and credential headers, body-rule `${VAR}` values, client and admin keys, and those of configs a reload
// retired) and anything shaped like a key. Upstream-derived text passes through `GatewaySecrets.redact` where it
// enters the gateway (an attempt's reason and lessons, a rejected request's error, a stream's error event), and every
// output that serialises whole records or lines (log lines, the request log, the dashboard's memory, OTLP spans)
// passes through it again: an upstream echoes what it was sent (the request, the Authorization header), and a client
// key opens the gateway as surely as a provider key opens the provider.
import { providerSecretsOf } from "../config/provider-secrets.ts";
import type { GatewayConfig } from "../config/types.ts";
import { redactSecrets } from "../errors/redact.ts";
import type { GatewaySnapshot } from "./snapshot.ts";

/**
 * Secrets of configs replaced by a reload, still redacted: a revoked client key may still be sent (and quoted), and a
 * rotated provider key may still be echoed by a request in flight or a late upstream error. Bounded by count, not by
 * time (a revoked key may be sent again at any time), for a process reloaded without end: the 1,000 most recently
 * retired strings (a key counts once, twice when its JSON-escaped form differs); the longest retired go first.
 */
const MAX_RETIRED_SECRETS = 1_000;

/**
 * Client and admin keys shorter than this are not searched for. Unlike provider keys, they are chosen by hand and
 * may be short (`1234`, `test`): such a key would be found inside the numbers of every line and record (a record's
 * `"startedAtMs":1796501234…` redacted is no longer JSON, and the request log could not read it back) and in
 * ordinary words. A key that short is guessed sooner than it is read from a log.
 */
const MIN_CLIENT_SECRET_CHARS = 8;

const providerSecretsBySnapshot = new WeakMap<GatewaySnapshot, readonly string[]>();

/**
 * Every provider secret of a snapshot (provider-secrets.ts: keys, credential headers and query parameters, body-rule
 * variables), also as it appears inside a JSON string (escaped). Computed once per snapshot.
 */
export function providerSecrets(snapshot: GatewaySnapshot): readonly string[] {
  let secrets = providerSecretsBySnapshot.get(snapshot);
  if (secrets === undefined) {
    secrets = [...providerSecretsOfConfig(snapshot.config)];
    providerSecretsBySnapshot.set(snapshot, secrets);
  }
  return secrets;
}

function providerSecretsOfConfig(config: GatewayConfig): Set<string> {
  const found = new Set<string>();
  for (const provider of config.providers) {
    for (const key of providerSecretsOf(provider)) {
      found.add(key);
      found.add(JSON.stringify(key).slice(1, -1));
    }
  }
  return found;
}

const secretsBySnapshot = new WeakMap<GatewaySnapshot, readonly string[]>();

/** A snapshot's secrets: its providers' and its client and admin keys, also JSON-escaped. */
export function snapshotSecrets(snapshot: GatewaySnapshot): readonly string[] {
  let secrets = secretsBySnapshot.get(snapshot);
  if (secrets === undefined) {
    secrets = configSecrets(snapshot.config, providerSecrets(snapshot));
    secretsBySnapshot.set(snapshot, secrets);
  }
  return secrets;
}

/**
 * A config's secrets, as `snapshotSecrets` gives them: for what must be redacted before a runtime exists (a fault
 * while the gateway starts). `providers`: its providers' secrets, when already known.
 */
export function configSecrets(
  config: GatewayConfig,
  providers: Iterable<string> = providerSecretsOfConfig(config),
): readonly string[] {
  const { apiKeys, adminKeys } = config.server;
  const found = new Set(providers);
  for (const key of [...apiKeys, ...adminKeys]) {
    if (key.length < MIN_CLIENT_SECRET_CHARS) continue;
    found.add(key);
    found.add(JSON.stringify(key).slice(1, -1));
  }
  return [...found];
}

/**
 * Per runtime: the serving snapshot's secrets, and those of every snapshot a reload replaced (`retire`, told by the
 * runtime at each swap: a snapshot replaced before anything was redacted under it still retires its keys).
 */
export class GatewaySecrets {
  readonly #snapshotOf: () => GatewaySnapshot;
  /** The snapshot `#secrets` was built for. */
  #snapshot: GatewaySnapshot | undefined;
  #secrets: readonly string[] = [];
  /** Oldest retired first (a secret retired again moves to the end). */
  readonly #retired = new Set<string>();

  /** `snapshotOf`: the serving snapshot, read at every use. */
  constructor(snapshotOf: () => GatewaySnapshot) {
    this.#snapshotOf = snapshotOf;
  }

  /** A reload replaced `previous`: its secrets stay redacted (the MAX_RETIRED_SECRETS most recently retired). */
  retire(previous: GatewaySnapshot): void {
    for (const secret of snapshotSecrets(previous)) {
      this.#retired.delete(secret);
      this.#retired.add(secret);
    }
    for (const secret of this.#retired) {
      if (this.#retired.size <= MAX_RETIRED_SECRETS) break;
      this.#retired.delete(secret);
    }
    this.#snapshot = undefined;
  }

  /** The serving snapshot's secrets and the retired ones. */
  list(): readonly string[] {
    const snapshot = this.#snapshotOf();
    if (snapshot === this.#snapshot) return this.#secrets;
    const current = snapshotSecrets(snapshot);
    const serving = new Set(current);
    const retired = [...this.#retired].filter((secret) => !serving.has(secret));
    this.#snapshot = snapshot;
    this.#secrets = retired.length === 0 ? current : [...current, ...retired];
    return this.#secrets;
  }

  /** The one redaction of anything shown, logged, recorded, exported or stored: `list()` and anything key-shaped. */
  redact(text: string): string {
    return redactSecrets(text, this.list());
  }

  /** `redact`, bound: for options that take a function. */
  readonly redactor = (text: string): string => this.redact(text);
}
