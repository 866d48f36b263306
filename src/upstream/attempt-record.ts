// Routing decisions as data: every attempt of a request, for error messages, logs, stats and (later) the
// request log and dashboard.

export type AttemptOutcome =
  | "success"
  | "rate_limited"
  | "invalid_key"
  | "context_length"
  | "rejected"
  | "server_error"
  | "network_error"
  | "timeout"
  | "first_token_timeout"
  | "bad_response"
  | "client_aborted";

export interface AttemptRecord {
  readonly provider: string;
  /** Upstream model id. */
  readonly model: string;
  readonly deploymentKey: string;
  readonly status: number | undefined;
  readonly outcome: AttemptOutcome;
  /** Human-readable, never containing a key. */
  readonly reason: string;
  readonly startedAtMs: number;
  readonly durationMs: number;
}

/** A candidate passed over at attempt time (cooling down since the plan was made, or too small a context). */
export interface AttemptSkip {
  readonly deploymentKey: string;
  readonly reason: string;
  /** When the candidate frees up, if known (cooldown end, budget retry time). */
  readonly untilMs?: number;
}

/** Replaces every occurrence of a secret in a text that might be shown or logged (upstreams echo keys). */
export function redactSecrets(text: string, secrets: readonly string[]): string {
  let result = text;
  for (const secret of secrets) {
    if (secret.length >= 4 && result.includes(secret)) result = result.replaceAll(secret, "[redacted]");
  }
  return result;
}
