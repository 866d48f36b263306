// Preloaded (`node --import`) into every process the benchmark starts, the gateway included: the process exits
// when its stdin closes (the benchmark finished or died) and after BENCH_MAX_LIFETIME_MS in any case, so no run
// can leave a server behind. The gateway itself is unchanged; this only adds the exit path.
const maxLifetimeMs = Number(process.env.BENCH_MAX_LIFETIME_MS ?? "1800000");

const exit = (): void => process.exit(0);
process.stdin.on("close", exit);
process.stdin.on("end", exit);
process.stdin.resume();
setTimeout(exit, maxLifetimeMs).unref();
