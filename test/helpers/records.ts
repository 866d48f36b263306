// Synthetic request records and live state for observability unit tests, shaped like the pipeline's.
import type { LiveDeployment } from "../../src/observability/live-state.ts";
import type { RecordedAttempt, RequestRecord } from "../../src/observability/request-record.ts";

let counter = 0;

export function attempt(overrides: Partial<RecordedAttempt> & Pick<RecordedAttempt, "provider">): RecordedAttempt {
  const model = overrides.model ?? "model-a";
  return {
    model,
    deploymentKey: `${overrides.provider}/${model}`,
    role: "primary",
    status: 200,
    outcome: "success",
    reason: "ok",
    startedAtMs: 1_000,
    headersMs: 40,
    durationMs: 50,
    ...overrides,
  };
}

/** A successful JSON chat request answered by alpha/model-a, unless overridden. */
export function record(overrides: Partial<RequestRecord> = {}): RequestRecord {
  counter += 1;
  const attempts = overrides.attempts ?? [attempt({ provider: "alpha" })];
  const last = attempts.at(-1);
  const isSuccess = last?.outcome === "success";
  return {
    id: `req-${counter}`,
    startedAtMs: 1_000 + counter,
    endpoint: "chat",
    clientProtocol: "openai-chat",
    requestedModel: "m",
    isStream: false,
    candidates: [],
    skips: [],
    attempts,
    continuations: [],
    queueWaitMs: 0,
    ...(isSuccess && last !== undefined
      ? { servedBy: { deploymentKey: last.deploymentKey, provider: last.provider, model: last.model } }
      : {}),
    tokensIn: 10,
    tokensOut: 5,
    status: isSuccess ? 200 : 502,
    outcome: last?.outcome ?? "server_error",
    timeToHeadersMs: 60,
    durationMs: 60,
    ...overrides,
  };
}

export function deployment(provider: string, model: string, overrides: Partial<LiveDeployment> = {}): LiveDeployment {
  return {
    deploymentKey: `${provider}/${model}`,
    provider,
    model,
    publicName: "m",
    kind: "chat",
    score: 1,
    circuit: "closed",
    isKeyInvalid: false,
    budgets: [],
    inFlight: 0,
    ...overrides,
  };
}
