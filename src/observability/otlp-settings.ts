// Where traces go: the standard OpenTelemetry variables, else `traces.otlp_endpoint` from the config. Kept apart
// from the exporter so that reading the settings loads no tracing code.
import { ConfigError } from "../config/config-error.ts";
import type { Env } from "../config/env.ts";
import type { TraceSampler } from "../trace-context.ts";

export interface OtlpSettings {
  /** Full URL spans are posted to (`<endpoint>/v1/traces`). */
  readonly tracesUrl: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly serviceName: string;
  /** Whether a trace is exported (OTEL_TRACES_SAMPLER / _ARG, else parent-based with `traces.sample_ratio`). */
  readonly sampler: TraceSampler;
}

export const DEFAULT_SERVICE_NAME = "llm-gateway";

/**
 * undefined: tracing is off (no endpoint anywhere). Throws a ConfigError (a start's exit 2) for an endpoint variable
 * that is not an http(s) URL: `collector:4318` parses as a URL of scheme `collector:`, and undici's Pool threw on it
 * at start with a stack that named no variable (the config's `traces.otlp_endpoint` is checked by its schema).
 */
export function otlpSettings(
  configuredEndpoint: string | undefined,
  env: Env,
  /** `traces.sample_ratio`: the share of the traces the gateway starts that are exported. */
  sampleRatio = 1,
): OtlpSettings | undefined {
  const tracesUrl = httpUrlOf(env, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
  const base = httpUrlOf(env, "OTEL_EXPORTER_OTLP_ENDPOINT") ?? configuredEndpoint;
  if (tracesUrl === undefined && base === undefined) return undefined;
  const headers: Record<string, string> = {};
  for (const pair of (env.OTEL_EXPORTER_OTLP_HEADERS ?? "").split(",")) {
    const equals = pair.indexOf("=");
    if (equals <= 0) continue;
    headers[decodedOrRaw(pair.slice(0, equals).trim())] = decodedOrRaw(pair.slice(equals + 1).trim());
  }
  return {
    tracesUrl: tracesUrl ?? `${(base as string).replace(/\/+$/, "")}/v1/traces`,
    headers,
    serviceName: nonEmpty(env.OTEL_SERVICE_NAME) ?? DEFAULT_SERVICE_NAME,
    sampler: samplerOf(env, sampleRatio),
  };
}

/**
 * The OpenTelemetry samplers by their OTEL_TRACES_SAMPLER names: `always_on`, `always_off`, `traceidratio` and their
 * `parentbased_` forms (a caller's sampled flag decides when there is one). Unset, or a name this gateway does not
 * know (`jaeger_remote`, `xray`): the spec's default, `parentbased_always_on`, with `traces.sample_ratio` for traces
 * the gateway starts. OTEL_TRACES_SAMPLER_ARG is the ratio of the `traceidratio` ones (missing or not a number in
 * [0, 1]: 1, as the spec says).
 */
export function samplerOf(env: Env, configuredRatio: number): TraceSampler {
  const name = nonEmpty(env.OTEL_TRACES_SAMPLER)?.trim().toLowerCase();
  // Trimmed first: Number(" ") is 0, and a blank argument is a missing one (1), not "export nothing".
  const argument = Number(nonEmpty(env.OTEL_TRACES_SAMPLER_ARG?.trim()) ?? Number.NaN);
  const givenRatio = Number.isFinite(argument) && argument >= 0 && argument <= 1 ? argument : 1;
  switch (name) {
    case "always_on":
      return () => true;
    case "always_off":
      return () => false;
    case "traceidratio":
      return (traceId) => isInRatio(traceId, givenRatio);
    case "parentbased_always_on":
      return (_traceId, parent) => parent ?? true;
    case "parentbased_always_off":
      return (_traceId, parent) => parent ?? false;
    case "parentbased_traceidratio":
      return (traceId, parent) => parent ?? isInRatio(traceId, givenRatio);
    default:
      return (traceId, parent) => parent ?? isInRatio(traceId, configuredRatio);
  }
}

/** 2^28: the trace id's last 56 bits (its random part: W3C Trace Context Level 2) read as two halves of 28 bits. */
const HALF_RANGE = 2 ** 28;

/**
 * Deterministic by trace id, as OpenTelemetry's probability sampling decides (tracestate-probability-sampling.md: the
 * randomness rv, the last 56 bits, is kept when rv >= th, th = (1 - ratio) * 2^56), so that a service or collector
 * sampling by it at the same ratio keeps the same traces. Read in two halves: 56 bits do not fit a double exactly.
 */
export function isInRatio(traceId: string, ratio: number): boolean {
  if (ratio >= 1) return true;
  if (ratio <= 0) return false;
  const threshold = (1 - ratio) * HALF_RANGE * HALF_RANGE;
  const thresholdHigh = Math.floor(threshold / HALF_RANGE);
  const high = Number.parseInt(traceId.slice(-14, -7), 16);
  if (high !== thresholdHigh) return high > thresholdHigh;
  return Number.parseInt(traceId.slice(-7), 16) >= threshold - thresholdHigh * HALF_RANGE;
}

function httpUrlOf(
  env: Env,
  name: "OTEL_EXPORTER_OTLP_ENDPOINT" | "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
): string | undefined {
  const value = nonEmpty(env[name]);
  if (value === undefined || /^https?:$/.test(URL.parse(value)?.protocol ?? "")) return value;
  // The value is not echoed: an endpoint may carry a token.
  throw new ConfigError([
    {
      location: "environment",
      path: name,
      message: "not an http:// or https:// URL (the collector's OTLP/HTTP endpoint, e.g. http://127.0.0.1:4318)",
    },
  ]);
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === "" ? undefined : value;
}

/**
 * The spec percent-encodes header values, but a token with a literal `%` (not followed by two hex digits) is
 * common enough: it is meant as written, and must not stop the start with a URIError.
 */
function decodedOrRaw(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/**
 * The endpoint as it may be logged: scheme://host:port/path. Userinfo and the query string may hold a token, so a
 * warning never carries them.
 */
export function loggableUrl(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.protocol}//${parsed.host}${parsed.pathname}`;
  } catch {
    return "(unparsable URL)";
  }
}
