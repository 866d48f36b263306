// A loopback OTLP/HTTP collector for the trace tests: every export's path, content type and body as they came, and
// answers scripted per export (a status with headers, or "hang": left unanswered, a collector that is stuck).
import { once } from "node:events";
import { createServer, type ServerResponse } from "node:http";
import type { TestContext } from "node:test";
import type { OtlpSpan } from "../../src/observability/otlp-spans.ts";

export type CollectorAnswer = { status: number; headers?: Record<string, string> } | "hang";

export interface OtlpExportSeen {
  readonly path: string;
  readonly contentType: string | undefined;
  readonly body: string;
}

export interface OtlpCollector {
  /** The collector's base URL (`OTEL_EXPORTER_OTLP_ENDPOINT`, `traces.otlp_endpoint`). */
  readonly url: string;
  /** Its traces URL (`<url>/v1/traces`: an exporter's own `url`). */
  readonly tracesUrl: string;
  /** Every export's body, in arrival order. */
  readonly bodies: string[];
  readonly exports: OtlpExportSeen[];
  /** Every span of every export so far. */
  spans(): OtlpSpan[];
  /** The spans of one export's body (none for undefined). */
  spansIn(body: string | undefined): OtlpSpan[];
  /** Stops it (also done after the test when `t` was given); hanging exports are cut. */
  close(): Promise<void>;
}

/** `answers` are used in turn, one per export, then 200 `{}`; `hang: true` leaves every export unanswered. */
export async function otlpCollector(
  t: TestContext | undefined,
  options: { answers?: CollectorAnswer[]; hang?: boolean } = {},
): Promise<OtlpCollector> {
  const answers = [...(options.answers ?? [])];
  const bodies: string[] = [];
  const exports: OtlpExportSeen[] = [];
  const hanging: ServerResponse[] = [];
  const server = createServer((request, response) => {
    let text = "";
    request.on("data", (chunk: Buffer) => {
      text += chunk.toString();
    });
    request.on("end", () => {
      bodies.push(text);
      exports.push({ path: request.url ?? "", contentType: request.headers["content-type"], body: text });
      const answer = options.hang === true ? "hang" : (answers.shift() ?? { status: 200 });
      if (answer === "hang") hanging.push(response);
      else response.writeHead(answer.status, { "content-type": "application/json", ...answer.headers }).end("{}");
    });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  let closed: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closed ??= new Promise<void>((resolveClose) => {
      for (const response of hanging) response.destroy();
      server.closeAllConnections();
      server.close(() => resolveClose());
    });
    return closed;
  };
  t?.after(close);
  const address = server.address();
  const port = typeof address === "object" && address !== null ? address.port : 0;
  const spansIn = (body: string | undefined): OtlpSpan[] =>
    body === undefined
      ? []
      : (JSON.parse(body) as { resourceSpans: { scopeSpans: { spans: OtlpSpan[] }[] }[] }).resourceSpans.flatMap(
          (resource) => resource.scopeSpans.flatMap((scope) => scope.spans),
        );
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    tracesUrl: `${url}/v1/traces`,
    bodies,
    exports,
    spans: () => bodies.flatMap(spansIn),
    spansIn,
    close,
  };
}
