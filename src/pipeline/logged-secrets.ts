// What every log line and every stored request record is redacted of: the provider secrets, and the client and admin
// keys too. No line is meant to carry a client's key, but one could (a debug line quoting a request, a client pasting
// its key into a prompt kept with `log.content: true`), and a client key opens the gateway as surely as a provider
// key opens the provider.
import { redactSecrets } from "../errors/redact.ts";
import type { GatewayRuntime, GatewaySnapshot } from "./gateway-runtime.ts";
import { providerSecrets } from "./pipeline-types.ts";

/**
 * Keys of configs replaced by a reload, still redacted: a revoked client key may still be sent (and quoted), and a
 * rotated provider key may still be echoed by a request in flight. Bounded for a process reloaded without end; the
 * oldest go first.
 */
const MAX_RETIRED_SECRETS = 1_000;

/**
 * Client and admin keys shorter than this are not searched for. Unlike provider keys, they are chosen by hand and
 * may be short (`1234`, `test`): such a key would be found inside the numbers of every line and record (a record's
 * `"startedAtMs":1796501234…` redacted is no longer JSON, and the request log could not read it back) and in
 * ordinary words. A key that short is guessed sooner than it is read from a log.
 */
const MIN_CLIENT_SECRET_CHARS = 8;

const secretsBySnapshot = new WeakMap<GatewaySnapshot, readonly string[]>();

/** A snapshot's secrets: its providers' (pipeline-types.ts) and its client and admin keys, also JSON-escaped. */
export function snapshotSecrets(snapshot: GatewaySnapshot): readonly string[] {
  let secrets = secretsBySnapshot.get(snapshot);
  if (secrets === undefined) {
    const { apiKeys, adminKeys } = snapshot.config.server;
    const found = new Set(providerSecrets(snapshot));
    for (const key of [...apiKeys, ...adminKeys]) {
      if (key.length < MIN_CLIENT_SECRET_CHARS) continue;
      found.add(key);
      found.add(JSON.stringify(key).slice(1, -1));
    }
    secrets = [...found];
    secretsBySnapshot.set(snapshot, secrets);
  }
  return secrets;
}

/** Per runtime: the snapshot last seen, and the secrets of the ones before it. */
class SecretsTracker {
  #snapshot: GatewaySnapshot | undefined;
  #secrets: readonly string[] = [];
  readonly #retired = new Set<string>();

  /**
   * The serving snapshot's secrets and the retired ones. Read at every line and record, so a snapshot is seen
   * unless it was replaced before any line or record was written under it (then no request of its own reached one).
   */
  secretsOf(snapshot: GatewaySnapshot): readonly string[] {
    if (snapshot === this.#snapshot) return this.#secrets;
    const current = snapshotSecrets(snapshot);
    if (this.#snapshot !== undefined) {
      for (const secret of snapshotSecrets(this.#snapshot)) this.#retired.add(secret);
      for (const secret of current) this.#retired.delete(secret);
      for (const secret of this.#retired) {
        if (this.#retired.size <= MAX_RETIRED_SECRETS) break;
        this.#retired.delete(secret);
      }
    }
    this.#snapshot = snapshot;
    this.#secrets = this.#retired.size === 0 ? current : [...current, ...this.#retired];
    return this.#secrets;
  }
}

const trackers = new WeakMap<GatewayRuntime, SecretsTracker>();

/** What a log line or a stored record of this runtime is redacted of, now. */
export function loggedSecrets(runtime: GatewayRuntime): readonly string[] {
  let tracker = trackers.get(runtime);
  if (tracker === undefined) {
    tracker = new SecretsTracker();
    trackers.set(runtime, tracker);
  }
  return tracker.secretsOf(runtime.snapshot);
}

/** A log line as written: every secret of loggedSecrets and anything key-shaped redacted. */
export function redactLogLine(runtime: GatewayRuntime, line: string): string {
  return redactSecrets(line, loggedSecrets(runtime));
}
