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
