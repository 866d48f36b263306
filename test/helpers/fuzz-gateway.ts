// The structural fuzzers' scene (test/e2e/fuzz-front-doors.test.ts and test/e2e/fuzz-new-doors.test.ts): a mock
// upstream, a gateway logging at debug level into memory (every line is checked for keys), an undici agent whose
// timeouts turn a hang into a thrown error, and the process's unhandled rejections and uncaught exceptions
// collected. `useFuzzGateway` registers the `before` and `after` hooks itself; call it at the top level of a file.
import { Writable } from "node:stream";
import { after, before } from "node:test";
import { Agent, request } from "undici";
import { stringify } from "yaml";
import { startTestGateway, type TestGateway } from "./gateway.ts";
import { type MockUpstream, startMockUpstream } from "./mock-upstream.ts";

export type Headers = Record<string, string | string[]>;

export interface Sent {
  readonly method: "GET" | "POST" | "DELETE";
  readonly path: string;
  readonly headers: Headers;
  readonly body?: string | Buffer;
}

export interface Answer {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly text: string;
}

export interface FuzzGatewayOptions {
  /** What the mock lists at /v1/models. */
  readonly upstreamModels: readonly { id: string }[];
  /** Scripts the mock before the gateway starts. */
  readonly scriptUpstream?: (upstream: MockUpstream) => void;
  /** The gateway's config (written as YAML), given the mock's base URL. */
  readonly config: (upstreamBaseUrl: string) => unknown;
  /** The agent's connections: how many cases may be in flight at once. */
  readonly connections: number;
  /** Longest one answer may take before undici throws (headers and body timeouts). */
  readonly answerTimeoutMs: number;
  /** Headers every request carries unless it names them itself (e.g. the client key). */
  readonly defaultHeaders?: Headers;
}

export interface FuzzGateway {
  readonly gateway: TestGateway;
  readonly upstream: MockUpstream;
  /** Every line the gateway logged (debug level). */
  readonly logLines: readonly string[];
  /** Unhandled rejections and uncaught exceptions while the file ran. */
  readonly unhandled: readonly unknown[];
  /** Sends one request; a hang shows as undici's headers or body timeout, thrown. */
  send(sent: Sent): Promise<Answer>;
}

export function useFuzzGateway(options: FuzzGatewayOptions): FuzzGateway {
  let gateway: TestGateway | undefined;
  let upstream: MockUpstream | undefined;
  const logLines: string[] = [];
  const unhandled: unknown[] = [];
  const agent = new Agent({
    connections: options.connections,
    headersTimeout: options.answerTimeoutMs,
    bodyTimeout: options.answerTimeoutMs,
  });
  const onUnhandled = (reason: unknown): void => {
    unhandled.push(reason);
  };

  before(async () => {
    process.on("unhandledRejection", onUnhandled);
    process.on("uncaughtException", onUnhandled);
    upstream = await startMockUpstream({ models: [...options.upstreamModels] });
    options.scriptUpstream?.(upstream);
    gateway = await startTestGateway(stringify(options.config(upstream.baseUrl)), {
      // Debug: the most the gateway ever logs, every line of it checked for keys.
      logLevel: "debug",
      logStream: new Writable({
        write(chunk: Buffer, _encoding, done) {
          logLines.push(chunk.toString("utf8"));
          done();
        },
      }),
    });
  });

  after(async () => {
    await agent.close();
    await gateway?.close();
    await upstream?.close();
    process.off("unhandledRejection", onUnhandled);
    process.off("uncaughtException", onUnhandled);
  });

  const started = <T>(value: T | undefined, name: string): T => {
    if (value === undefined) throw new Error(`the fuzz ${name} is not started (used outside the file's tests)`);
    return value;
  };
  return {
    get gateway() {
      return started(gateway, "gateway");
    },
    get upstream() {
      return started(upstream, "upstream");
    },
    logLines,
    unhandled,
    async send(sent) {
      const response = await request(`${started(gateway, "gateway").url}${sent.path}`, {
        method: sent.method,
        headers: options.defaultHeaders === undefined ? sent.headers : { ...options.defaultHeaders, ...sent.headers },
        dispatcher: agent,
        ...(sent.body === undefined ? {} : { body: sent.body }),
      });
      const text = await response.body.text();
      const headers: Record<string, string> = {};
      for (const [name, value] of Object.entries(response.headers)) {
        if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(", ") : value;
      }
      return { status: response.statusCode, headers, text };
    },
  };
}

/** The text as JSON, or undefined when it does not parse. */
export function parsed(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/** A key in the answer's body or headers, or a stack trace in its body: what no answer may carry. */
export function leakProblems(answer: Answer, secrets: readonly string[]): string[] {
  const problems: string[] = [];
  for (const secret of secrets) {
    if (answer.text.includes(secret)) problems.push(`a key in the body (${secret.slice(0, 12)}…)`);
    for (const [name, value] of Object.entries(answer.headers)) {
      if (value.includes(secret)) problems.push(`a key in header ${name}`);
    }
  }
  if (/\n\s+at |node:internal|\.ts:\d+:\d+/.test(answer.text)) problems.push("a stack trace in the body");
  return problems;
}
