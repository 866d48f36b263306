// Whether the process was started with a flag of some kind, on its command line or in NODE_OPTIONS: the start-up
// holds (young-generation.ts, optimizing-compilers.ts) leave V8 alone for someone who set such flags themselves.
export function startedWithFlag(
  execArgv: readonly string[],
  nodeOptions: string | undefined,
  pattern: RegExp,
): boolean {
  return [...execArgv, ...(nodeOptions ?? "").split(/\s+/)].some((flag) => pattern.test(flag));
}
