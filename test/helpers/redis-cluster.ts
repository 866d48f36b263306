// A real Redis Cluster for tests: three masters (no replicas) started as child processes on loopback ports, joined
// with `redis-cli --cluster create`, killed when the test ends. `cluster-require-full-coverage no`, so the slots of
// the masters still running keep answering when a test kills one, and a killed one can be started again on its port
// (it rejoins with its slots, empty), or paused (SIGSTOP: a hung master) and resumed. Callers skip when redis-server is
// missing.
import { type ChildProcess, spawnSync } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestContext } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { closeWhenTestEnds } from "./late-start.ts";
import { spawnRedisOnPort } from "./redis-server.ts";

const READY_TIMEOUT_MS = 15_000;
/**
 * ms one `redis-cli` question may take: spawnSync blocks the event loop, so a redis-cli that never answers (a node
 * stopped, not killed) would hold the test's own timeout and the whole file with it.
 */
const REDIS_CLI_TIMEOUT_MS = 5_000;

export const REDIS_CLUSTER_MISSING =
  "redis-server or redis-cli is not installed (apt-get install -y redis-server); skipping the Redis Cluster tests";

export function isRedisClusterAvailable(): boolean {
  const ok = (command: string) => spawnSync(command, ["--version"], { stdio: "ignore" }).status === 0;
  return ok("redis-server") && ok("redis-cli");
}

export interface RedisClusterNode {
  readonly port: number;
  readonly url: string;
  kill(): Promise<void>;
  /**
   * Starts a killed node again on its port with its cluster config file: it rejoins with the slots it held (and none
   * of their keys unless `save` wrote them), and resolves once every running node reports cluster_state:ok.
   */
  restart(): Promise<void>;
  /**
   * SIGSTOP: a hung master. Its connections stay open and its port still accepts them, but nothing answers: every
   * command to it waits for the client's timeout (a killed one's connections close at once). The other nodes mark
   * it failed after `cluster-node-timeout` (1 s) and keep serving their own slots.
   */
  pause(): void;
  /**
   * SIGCONT; resolves once every node not paused reports cluster_state:ok again (the others clear its failure within
   * ~2 s). A node still paused is not asked: its redis-cli would wait for REDIS_CLI_TIMEOUT_MS every round.
   */
  resume(): Promise<void>;
  /**
   * SAVE: writes the node's keys to its own RDB file, which `restart` loads: a master that dies and comes back with
   * its data (persistence), rather than empty.
   */
  save(): void;
}

export interface RedisCluster {
  /** A seed URL (the first node). */
  readonly url: string;
  readonly nodes: readonly RedisClusterNode[];
  /** The node serving a hash slot, from `CLUSTER SLOTS`. */
  nodeOfSlot(slot: number): RedisClusterNode;
  /**
   * Starts a replica of `master` (stopped with the cluster) and resolves once it is in sync: a master that dies or
   * hangs then fails over to it after `cluster-node-timeout`. Resolves with its port.
   */
  addReplica(master: RedisClusterNode): Promise<number>;
}

/** Starts a 3-master cluster for this test; stopped after it. */
export async function useRedisCluster(t: TestContext): Promise<RedisCluster> {
  const directory = mkdtempSync(join(tmpdir(), "redis-cluster-"));
  const children: ChildProcess[] = [];
  const killAll = (): void => {
    for (const child of children) child.kill("SIGKILL");
  };
  process.on("exit", killAll);
  const stop = async (): Promise<void> => {
    process.off("exit", killAll);
    await Promise.all(children.map((child) => killChild(child)));
    rmSync(directory, { recursive: true, force: true });
  };
  const ports: number[] = [];
  // Registered once every node runs (a node started after the test's cleanup would outlive it): a start that fails
  // half-way stops the nodes it started itself.
  try {
    await startNodes(directory, children, ports);
  } catch (error) {
    await stop();
    throw error;
  }
  await closeWhenTestEnds(t, stop);
  const slots = clusterSlots(ports[0] as number);
  const paused = new Set<number>();
  const running = (): number[] => ports.filter((port) => !paused.has(port));
  const nodes = ports.map((port, index) => ({
    port,
    url: `redis://127.0.0.1:${port}`,
    kill: () => killChild(children[index] as ChildProcess),
    restart: async () => {
      const child = await spawnNode(port, directory);
      if (child === undefined) throw new Error(`redis-server could not start again on port ${port}`);
      children[index] = child;
      await waitForClusterOk(ports);
    },
    pause: () => {
      paused.add(port);
      children[index]?.kill("SIGSTOP");
    },
    resume: async () => {
      paused.delete(port);
      children[index]?.kill("SIGCONT");
      await waitForClusterOk(running());
    },
    save: () => {
      const saved = spawnSync("redis-cli", ["-p", String(port), "save"], {
        encoding: "utf8",
        timeout: REDIS_CLI_TIMEOUT_MS,
      });
      if (!saved.stdout.includes("OK")) throw new Error(`SAVE on port ${port} failed: ${saved.stdout}${saved.stderr}`);
    },
  }));
  return {
    url: `redis://127.0.0.1:${ports[0]}`,
    nodes,
    addReplica: async (master) => {
      let port = 0;
      while (port === 0) {
        const candidate = await clusterPort([...ports]);
        const child = await spawnNode(candidate, directory);
        if (child === undefined) continue;
        children.push(child);
        port = candidate;
      }
      const cli = (...args: string[]) =>
        spawnSync("redis-cli", args, { encoding: "utf8", timeout: READY_TIMEOUT_MS }).stdout.trim();
      const masterId = cli("-p", String(master.port), "cluster", "myid");
      const add = spawnSync(
        "redis-cli",
        ["--cluster", "add-node", `127.0.0.1:${port}`, `127.0.0.1:${master.port}`, "--cluster-slave"].concat([
          "--cluster-master-id",
          masterId,
        ]),
        { encoding: "utf8", timeout: READY_TIMEOUT_MS },
      );
      if (add.status !== 0) throw new Error(`redis-cli --cluster add-node failed: ${add.stdout}${add.stderr}`);
      const deadline = Date.now() + READY_TIMEOUT_MS;
      while (!cli("-p", String(port), "info", "replication").includes("master_link_status:up")) {
        if (Date.now() > deadline) throw new Error(`the replica on port ${port} did not sync with ${master.port}`);
        await sleep(100);
      }
      await waitForClusterOk([...ports, port]);
      return port;
    },
    nodeOfSlot(slot) {
      const range = slots.find(([start, end]) => slot >= start && slot <= end);
      const node = nodes.find((candidate) => candidate.port === range?.[2]);
      if (node === undefined) throw new Error(`no node serves slot ${slot}`);
      return node;
    },
  };
}

/** Three nodes joined as a cluster, pushed to `children` and `ports` as they start (for the caller to stop them). */
async function startNodes(directory: string, children: ChildProcess[], ports: number[]): Promise<void> {
  while (ports.length < 3) {
    const port = await clusterPort(ports);
    const child = await spawnNode(port, directory);
    // Another test's server can take a port between the check and the bind: pick another one.
    if (child === undefined) continue;
    children.push(child);
    ports.push(port);
  }
  const create = spawnSync(
    "redis-cli",
    ["--cluster", "create", ...ports.map((port) => `127.0.0.1:${port}`), "--cluster-replicas", "0", "--cluster-yes"],
    { encoding: "utf8", timeout: READY_TIMEOUT_MS },
  );
  if (create.status !== 0) throw new Error(`redis-cli --cluster create failed: ${create.stdout}${create.stderr}`);
  await waitForClusterOk(ports);
}

/**
 * A port whose cluster bus port (+10 000) is free too. Both stay below 32 768, where Linux's ephemeral range starts:
 * every outgoing connection and every other test's `freePort()` takes its port from that range, and one of them
 * taking a node's port between this check and redis-server's bind made a CI run fail ("redis-server exited with 1").
 */
async function clusterPort(taken: readonly number[]): Promise<number> {
  for (;;) {
    const port = 10_000 + Math.floor(Math.random() * 12_700);
    if (taken.includes(port)) continue;
    if ((await isFree(port)) && (await isFree(port + 10_000))) return port;
  }
}

async function isFree(port: number): Promise<boolean> {
  const server = createServer();
  return new Promise((resolve) => {
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}

/** The running node, or undefined when redis-server exited at once because its port was taken. */
function spawnNode(port: number, directory: string): Promise<ChildProcess | undefined> {
  return spawnRedisOnPort(port, [
    "--cluster-enabled",
    "yes",
    "--cluster-config-file",
    join(directory, `nodes-${port}.conf`),
    "--cluster-node-timeout",
    "1000",
    "--cluster-require-full-coverage",
    "no",
    "--dir",
    directory,
    // Nothing is saved unless a test asks (`save`); each node its own file in the shared directory.
    "--dbfilename",
    `dump-${port}.rdb`,
  ]);
}

async function waitForClusterOk(ports: readonly number[]): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    const isOk = ports.every((port) => {
      const info = spawnSync("redis-cli", ["-p", String(port), "cluster", "info"], {
        encoding: "utf8",
        timeout: REDIS_CLI_TIMEOUT_MS,
      });
      return info.stdout.includes("cluster_state:ok");
    });
    if (isOk) return;
    await sleep(100);
  }
  throw new Error(`the cluster on ports ${ports.join(", ")} did not reach cluster_state:ok`);
}

/** [start, end, port] per slot range, from `CLUSTER NODES` ("<id> <host:port@bus> <flags> ... <start-end>..."). */
function clusterSlots(port: number): [number, number, number][] {
  const reply = spawnSync("redis-cli", ["-p", String(port), "cluster", "nodes"], {
    encoding: "utf8",
    timeout: REDIS_CLI_TIMEOUT_MS,
  });
  const ranges: [number, number, number][] = [];
  for (const line of reply.stdout.split("\n")) {
    const fields = line.trim().split(" ");
    const nodePort = Number(fields[1]?.split("@")[0]?.split(":")[1]);
    for (const range of fields.slice(8)) {
      const [start, end] = range.split("-").map(Number);
      if (start !== undefined && Number.isInteger(start)) ranges.push([start, end ?? start, nodePort]);
    }
  }
  return ranges;
}

async function killChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, "exit");
  child.kill("SIGKILL");
  await exited;
}
