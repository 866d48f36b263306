// The messages of the shared cooldowns' channel and the cooldowns stored in Redis (redis-cooldowns.ts), read back
// from text another process (perhaps another version) wrote: anything malformed is dropped, never trusted.
import { isRecord, parseJsonRecord } from "../is-record.ts";
import { COOLDOWN_CAUSES, type Cooldown, type CooldownCause, type CooldownChange } from "../limits/availability.ts";

// `learned`: a learned fact (redis-learned-facts.ts) on the same channel, so that one subscription, with its
// resubscribe and reload rules, serves both; a process that does not know the type skips it.
export type SharedMessage =
  | { readonly origin: string; readonly type: "cooldown"; readonly change: CooldownChange }
  | { readonly origin: string; readonly type: "reset"; readonly resetId?: string; readonly unmarked?: true }
  | { readonly origin: string; readonly type: "learned"; readonly fact: unknown };

const CAUSES: ReadonlySet<string> = new Set<CooldownCause>(COOLDOWN_CAUSES);

export function parseMessage(text: string): SharedMessage | undefined {
  const value = parseJsonRecord(text);
  if (value === undefined || typeof value.origin !== "string") return undefined;
  if (value.type === "reset") {
    const { resetId } = value;
    if (typeof resetId !== "string" || resetId === "") return { origin: value.origin, type: "reset" };
    return { origin: value.origin, type: "reset", resetId, ...(value.unmarked === true ? { unmarked: true } : {}) };
  }
  if (value.type === "learned") return { origin: value.origin, type: "learned", fact: value.fact };
  if (value.type !== "cooldown" || !isRecord(value.change)) return undefined;
  const { scope, key } = value.change;
  const cooldown = toCooldown(value.change.cooldown);
  if ((scope !== "deployment" && scope !== "provider") || typeof key !== "string" || cooldown === undefined) {
    return undefined;
  }
  return { origin: value.origin, type: "cooldown", change: { scope, key, cooldown } };
}

export function parseCooldown(text: string | null | undefined): Cooldown | undefined {
  if (text === null || text === undefined) return undefined;
  try {
    return toCooldown(JSON.parse(text));
  } catch {
    return undefined;
  }
}

function toCooldown(value: unknown): Cooldown | undefined {
  if (!isRecord(value)) return undefined;
  const { untilMs, cause, source, reason, keyFingerprint } = value;
  if (typeof untilMs !== "number" || !Number.isFinite(untilMs)) return undefined;
  if (typeof cause !== "string" || !CAUSES.has(cause)) return undefined;
  if (source !== "provider" && source !== "guessed") return undefined;
  if (typeof reason !== "string") return undefined;
  const cooldown: Cooldown = { untilMs, cause: cause as CooldownCause, source, reason };
  if (keyFingerprint === undefined) return cooldown;
  // A park whose key cannot be read would park whatever key the provider has: dropped instead.
  if (typeof keyFingerprint !== "string" || !/^[0-9a-f]{12}$/.test(keyFingerprint)) return undefined;
  return { ...cooldown, keyFingerprint };
}
