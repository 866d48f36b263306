// Where traces go: the standard OpenTelemetry variables, else `traces.otlp_endpoint` from the config. Kept apart
// from the exporter so that reading the settings loads no tracing code.
import type { Env } from "../config/env.ts";

export interface OtlpSettings {
  /** Full URL spans are posted to (`<endpoint>/v1/traces`). */
  readonly tracesUrl: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly serviceName: string;
}

export const DEFAULT_SERVICE_NAME = "llm-gateway";

/** undefined: tracing is off (no endpoint anywhere). */
export function otlpSettings(configuredEndpoint: string | undefined, env: Env): OtlpSettings | undefined {
  const tracesUrl = nonEmpty(env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT);
  const base = nonEmpty(env.OTEL_EXPORTER_OTLP_ENDPOINT) ?? configuredEndpoint;
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
  };
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
