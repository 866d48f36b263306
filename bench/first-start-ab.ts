// A/B of a first start after bin/warm-caches.js (bench/README.md section 46): per round and checkout, its data/cache/
// removed (a fresh clone's state), `bin/warm-caches.js --config <the bench's provider and model>` (as a deployment
// names its config at build time; a checkout from before 2026-12-07 ignores it and writes no memo), then one start as
// `npm start` (ab-helpers.ts startGateway: ready = first /health 200, idle = VmRSS 1 s later), interleaved pairs.
// BETWEEN=1: before the measured start, the bench's config started once and then another config (a test run's): the
// measured start is the bench config's first after another config's.
// usage: node bench/first-start-ab.ts ROUNDS dirA dirB   (each checkout built: bin/build.js; removes their data/cache/)
import { spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { COMPILE_CACHE, cpuMs, median, npmStartNodeArgs, startGateway, startMock, statusKb } from "./ab-helpers.ts";

const [rounds = "6", ...dirs] = process.argv.slice(2);
const work = mkdtempSync(join(tmpdir(), "first-start-"));
const { port: mockPort, process: mock } = await startMock(dirs[0] as string);
const benchConfig = join(work, "bench.yaml");
const otherConfig = join(work, "other.yaml");
writeFileSync(
  otherConfig,
  `server:\n  port: 0\n  host: 127.0.0.1\n  log_level: info\nproviders:\n  - name: other\n    base_url: http://127.0.0.1:9/v1\n    api_key: sk-other\n    models:\n      llama-3.3-70b-versatile: {}\n      acme-chat-8b: {}\nstate:\n  path: ":memory:"\n`,
);
writeFileSync(
  benchConfig,
  `server:\n  host: 127.0.0.1\n  port: 0\n  api_keys: [bench-client-key]\nproviders:\n  - name: mock\n    base_url: http://127.0.0.1:${mockPort}/v1\n    api_key: bench-upstream-key\n    models:\n      bench-model: {}\nstate:\n  path: ":memory:"\n`,
);
const args = new Map(dirs.map((dir) => [dir, npmStartNodeArgs(dir)]));
const rows = new Map<string, { ready: number; cpu: number; idle: number; memo: boolean }[]>();
for (let round = 0; round < Number(rounds); round += 1) {
  const order = round % 2 === 0 ? dirs : [...dirs].reverse();
  for (const dir of order) {
    rmSync(join(dir, "data", "cache"), { recursive: true, force: true });
    const warm = spawnSync(process.execPath, [join(dir, "bin", "warm-caches.js"), "--config", benchConfig], {
      cwd: dir,
      env: { PATH: process.env.PATH, HOME: process.env.HOME, NODE_COMPILE_CACHE: COMPILE_CACHE },
      encoding: "utf8",
    });
    if (warm.status !== 0) throw new Error(warm.stderr);
    if (process.env.BETWEEN === "1") {
      // The bench's config started once (its memo entries written), then another config (a test run's), as before
      // section 43's bench: the measured start is the bench config's first after another config's.
      for (const config of [benchConfig, otherConfig]) {
        const child = spawn(
          process.execPath,
          [...(args.get(dir) ?? []), join(dir, "bin", "llm-gateway.js"), "serve", "--config", config],
          {
            cwd: dir,
            env: { PATH: process.env.PATH, NODE_COMPILE_CACHE: COMPILE_CACHE },
            stdio: ["ignore", "pipe", "ignore"],
          },
        );
        let out = "";
        const exited = once(child, "exit");
        await new Promise<void>((resolve, reject) => {
          child.stdout.on("data", (chunk: Buffer) => {
            out += chunk;
            if (out.includes("listening")) resolve();
          });
          // A start that fails ends the run rather than waiting for ever (a no-op once listening).
          void exited.then(() => reject(new Error(`${dir}: serve --config ${config} exited before listening`)));
        });
        child.kill("SIGKILL");
        await exited;
      }
    }
    const memo = spawnSync("test", ["-f", join(dir, "data", "cache", "scoring-memo.json")]).status === 0;
    const started = await startGateway({
      dir,
      variantDir: join(work, `${round}-${dirs.indexOf(dir)}`),
      mockPort,
      nodeArgs: args.get(dir) ?? [],
    });
    const cpu = cpuMs(started.pid);
    await sleep(1000);
    const row = { ready: started.readyMs, cpu, idle: statusKb(started.pid, "VmRSS"), memo };
    started.child.kill("SIGKILL");
    await new Promise((resolve) => started.child.once("exit", resolve));
    const list = rows.get(dir) ?? [];
    list.push(row);
    rows.set(dir, list);
    console.log(round, dir, JSON.stringify({ ...row, ready: Math.round(row.ready), cpu: Math.round(row.cpu) }));
  }
}
mock.kill("SIGKILL");
for (const [dir, list] of rows) {
  console.log(
    dir,
    "ready",
    median(list.map((r) => r.ready)).toFixed(0),
    "cpu",
    median(list.map((r) => r.cpu)).toFixed(0),
    "idle",
    median(list.map((r) => r.idle)),
    "range idle",
    Math.min(...list.map((r) => r.idle)),
    Math.max(...list.map((r) => r.idle)),
  );
}
const [a, b] = dirs.map((dir) => rows.get(dir) ?? []);
const paired = (key: "ready" | "cpu" | "idle") => (a ?? []).map((row, i) => ((b ?? [])[i]?.[key] ?? 0) - row[key]);
for (const key of ["ready", "cpu", "idle"] as const) {
  const d = paired(key);
  console.log(
    `paired ${key} (second - first): median ${median(d).toFixed(1)} range ${Math.min(...d).toFixed(1)}..${Math.max(...d).toFixed(1)}; lower in ${d.filter((x) => x < 0).length} of ${d.length}`,
  );
}
