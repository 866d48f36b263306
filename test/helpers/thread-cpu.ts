// CPU time of this thread, for tests that bound how long a synchronous computation takes (hostile input must not
// blow up). A wall clock counts the time other processes hold the core: on a loaded 2-core CI machine a 50 ms
// walk read 200+ ms and such bounds failed for the machine, not the code. This thread's CPU time does not count
// them (only cache and frequency effects remain), so a bound on it still fails a quadratic blow-up.

/** Milliseconds of this thread's CPU (user + system) that `compute` took, and what it returned. */
export function threadCpuMs<T>(compute: () => T): { readonly value: T; readonly ms: number } {
  const before = process.threadCpuUsage();
  const value = compute();
  const used = process.threadCpuUsage(before);
  return { value, ms: (used.user + used.system) / 1_000 };
}

/**
 * Milliseconds of this thread's CPU spent while `run` was under way, and what it resolved to: for a request to a
 * gateway running in this process (its client and the mock upstream share the thread and count too), so a bound
 * on hostile input's cost does not count the time other processes held the core.
 */
export async function threadCpuMsWhile<T>(run: () => Promise<T>): Promise<{ readonly value: T; readonly ms: number }> {
  const before = process.threadCpuUsage();
  const value = await run();
  const used = process.threadCpuUsage(before);
  return { value, ms: (used.user + used.system) / 1_000 };
}

/**
 * Watches this thread's event loop with a 1 ms ticker until `stop()`, which returns the most CPU time between two
 * ticks: the longest synchronous step that held the loop (a gateway in this process parsing a hostile body). The wall
 * time between ticks would also count the time other processes held the core; the CPU time does not.
 */
export function longestCpuHold(): { stop(): number } {
  let longestMs = 0;
  let last = process.threadCpuUsage();
  const measure = (): void => {
    const used = process.threadCpuUsage(last);
    longestMs = Math.max(longestMs, (used.user + used.system) / 1_000);
    last = process.threadCpuUsage();
  };
  const ticker = setInterval(measure, 1);
  return {
    stop: () => {
      clearInterval(ticker);
      measure();
      return longestMs;
    },
  };
}
