// The benchmark's lifeline to the processes it starts (bench/gateway.ts), as a process of its own: it reads
// `+<pid>` (watch) and `-<pid>` (that one exited) lines on stdin, and when stdin closes (the benchmark finished or
// died, even by SIGKILL) or after BENCH_MAX_LIFETIME_MS, it sends every pid still watched SIGTERM, then SIGKILL a
// few seconds later. So no run leaves a server behind, and the processes under test run nothing of the benchmark's:
// a module preloaded into the gateway (`--import`, as bench/exit-with-parent.ts was) made Node's own start hot enough
// for V8's Maglev compiler before the gateway could hold it, ~2 MB of idle RSS that no user's start has.
const maxLifetimeMs = Number(process.env.BENCH_MAX_LIFETIME_MS ?? "1800000");
const watched = new Set<number>();
let buffered = "";

function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch {
    // Already gone.
  }
}

function stopAll(): void {
  if (watched.size === 0) process.exit(0);
  for (const pid of watched) signal(pid, "SIGTERM");
  setTimeout(() => {
    for (const pid of watched) signal(pid, "SIGKILL");
    process.exit(0);
  }, 3_000);
}

process.stdin.setEncoding("utf8");
process.stdin.on("data", (text: string) => {
  buffered += text;
  const lines = buffered.split("\n");
  buffered = lines.pop() ?? "";
  for (const line of lines) {
    const pid = Number(line.slice(1));
    if (!Number.isInteger(pid) || pid <= 0) continue;
    if (line.startsWith("+")) watched.add(pid);
    else if (line.startsWith("-")) watched.delete(pid);
  }
});
process.stdin.on("close", stopAll);
setTimeout(stopAll, maxLifetimeMs).unref();
