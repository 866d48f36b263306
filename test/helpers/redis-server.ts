// A real redis-server for tests: started as a child process on a free loopback port, in memory only (no RDB, no
// AOF), killed when the test ends. Tests that need it skip with a clear message when redis-server is not
// installed (CI installs it: .ci/run).
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { connect, createServer } from "node:net";
import type { TestContext } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import type { Redis } from "ioredis";
import type { StateSettings } from "../../src/config/types.ts";
import { COMMAND_TIMEOUT_MS } from "../../src/state/redis-client.ts";
import { closeWhenTestEnds } from "./late-start.ts";

const READY_TIMEOUT_MS = 10_000;

export const REDIS_MISSING =
  "redis-server is not installed (apt-get install -y redis-server); skipping the shared-state tests";

let installed: boolean | undefined;

export function isRedisInstalled(): boolean {
  installed ??= spawnSync("redis-server", ["--version"], { stdio: "ignore" }).status === 0;
  return installed;
}

export interface RedisServer {
  readonly port: number;
  /** `redis://127.0.0.1:PORT` */
  readonly url: string;
  readonly isRunning: boolean;
  /** SIGKILL, as a crash would: no clean shutdown. */
  kill(): Promise<void>;
  /** SIGSTOP / SIGCONT: a hung Redis that keeps its connections open. */
  pause(): void;
  resume(): void;
  /** Starts redis-server again on the same port (empty: nothing is persisted). */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

/** A free loopback port (listen on 0, read it, close). */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const address = server.address();
  const port = typeof address === "object" && address !== null ? address.port : 0;
  server.close();
  await once(server, "close");
  return port;
}

export async function startRedisServer(): Promise<RedisServer> {
  let port = await freePort();
  let child: ChildProcess | undefined = await spawnRedisOnPort(port);
  // The port is free when read, but any outgoing connection or another test can take it before redis-server binds
  // it (it comes from the ephemeral range): then redis-server exits at once, and another port is tried.
  for (let attempt = 1; child === undefined && attempt < 5; attempt += 1) {
    port = await freePort();
    child = await spawnRedisOnPort(port);
  }
  if (child === undefined) throw new Error("redis-server found its port taken five times in a row");
  const killOnExit = (): void => {
    child?.kill("SIGKILL");
  };
  process.on("exit", killOnExit);
  const killChild = async (signal: NodeJS.Signals): Promise<void> => {
    const running = child;
    child = undefined;
    if (running === undefined || running.exitCode !== null || running.signalCode !== null) return;
    const exited = once(running, "exit");
    running.kill(signal);
    await exited;
  };
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    get isRunning() {
      return child !== undefined;
    },
    kill: () => killChild("SIGKILL"),
    pause: () => {
      child?.kill("SIGSTOP");
    },
    resume: () => {
      child?.kill("SIGCONT");
    },
    restart: async () => {
      await killChild("SIGKILL");
      child = await spawnRedisOnPort(port);
      if (child === undefined) throw new Error(`redis-server could not listen on port ${port} again: it was taken`);
    },
    stop: async () => {
      process.off("exit", killOnExit);
      await killChild("SIGKILL");
    },
  };
}

/** A Redis for this test, stopped after it. Callers skip their suite first when `isRedisInstalled()` is false. */
export async function useRedisServer(t: TestContext): Promise<RedisServer> {
  const server = await startRedisServer();
  await closeWhenTestEnds(t, () => server.stop());
  return server;
}

/**
 * redis-server on `port`, in memory only (no RDB, no AOF), with `extraArgs`, once it answers; undefined when it
 * exited at once because the port was taken (the caller picks another).
 */
export async function spawnRedisOnPort(
  port: number,
  extraArgs: readonly string[] = [],
): Promise<ChildProcess | undefined> {
  const child = spawn(
    "redis-server",
    [
      "--port",
      String(port),
      "--bind",
      "127.0.0.1",
      "--save",
      "",
      "--appendonly",
      "no",
      "--loglevel",
      "warning",
      ...extraArgs,
    ],
    // redis-server logs to stdout, its bind errors included.
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  let output = "";
  const append = (chunk: Buffer): void => {
    output += chunk.toString();
  };
  child.stdout?.on("data", append);
  child.stderr?.on("data", append);
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) {
      if (/address already in use/i.test(output)) return undefined;
      throw new Error(`redis-server exited with ${child.exitCode}: ${output}`);
    }
    if (await isServedBy(port, child.pid)) return child;
    await sleep(20);
  }
  child.kill("SIGKILL");
  throw new Error(`redis-server on port ${port} did not answer PING within ${READY_TIMEOUT_MS} ms: ${output}`);
}

/** Raw RESP PING, so readiness checks need no client library. */
export function answersPing(port: number): Promise<boolean> {
  return ask(port, "PING", (reply) => (reply.includes("\r\n") ? reply.startsWith("+PONG") : undefined));
}

/**
 * Whether the redis-server answering on the port is the process `pid`: a PING alone can be answered by another
 * test's server that took the port first, while ours is still about to exit on its bind error.
 */
export function isServedBy(port: number, pid: number | undefined): Promise<boolean> {
  return ask(port, "INFO server", (reply) => {
    const match = /process_id:(\d+)\r\n/.exec(reply);
    if (match !== null) return Number(match[1]) === pid;
    return reply.startsWith("-") && reply.includes("\r\n") ? false : undefined;
  });
}

/** Sends one inline command; `verdict` reads the reply so far (undefined: not enough of it yet). */
function ask(port: number, command: string, verdict: (reply: string) => boolean | undefined): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port });
    let reply = "";
    const done = (isReady: boolean): void => {
      socket.destroy();
      resolve(isReady);
    };
    socket.setTimeout(500, () => done(false));
    socket.on("error", () => done(false));
    socket.on("connect", () => socket.write(`${command}\r\n`));
    socket.on("data", (chunk) => {
      reply += chunk.toString();
      const isReady = verdict(reply);
      if (isReady !== undefined) done(isReady);
    });
  });
}

/** `state:` settings for a Redis state backend on `url` under `prefix`, as the config schema resolves them. */
export function redisStateSettings(url: string, prefix: string): StateSettings {
  return {
    path: "",
    redisUrl: url,
    redisKeyPrefix: prefix,
    redisCluster: false,
    flushIntervalMs: 1_000,
    redisCommandTimeoutMs: COMMAND_TIMEOUT_MS,
  };
}

/**
 * Drops every subscription and keeps them from coming back (Redis takes no new connection: `maxclients` is the number
 * of those left) until the returned function lets them in again. The command connections stay: what a replica writes
 * and publishes meanwhile reaches Redis, and no process hears it.
 */
export async function cutSubscribers(admin: Redis): Promise<() => Promise<void>> {
  const connected = String(await admin.call("CLIENT", "LIST", "TYPE", "normal"))
    .trim()
    .split("\n").length;
  const maxClients = (await admin.config("GET", "maxclients"))[1] ?? "10000";
  await admin.config("SET", "maxclients", String(connected));
  await admin.call("CLIENT", "KILL", "TYPE", "pubsub");
  return async () => {
    await admin.config("SET", "maxclients", maxClients);
  };
}
