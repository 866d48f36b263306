// The process exit codes of every command (README, "Exit codes").
export const EXIT_OK = 0;
/** Something does not work: a provider probe failed, no route. */
export const EXIT_NOT_OK = 1;
/** A config or usage error (also an invalid config at `serve`). */
export const EXIT_USAGE = 2;
