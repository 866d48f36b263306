// One guard for every helper that starts a process, a server or a connection for a test: what it started is
// closed when the test ends, also when the test already ended (timed out) while it was starting.
import type { TestContext } from "node:test";

/**
 * Closes what a helper started when the test `t` ends (`t.after`). A test that timed out while something of its was
 * starting has run its cleanup already: a `t.after` added now never runs, and what was left open (a child process,
 * a listening server, a Redis client reconnecting for ever) kept the test file from exiting, so the whole run
 * waited to its limit. Closed at once then, and the helper's caller stops here: this throws.
 */
export async function closeWhenTestEnds(t: TestContext, close: () => Promise<unknown> | unknown): Promise<void> {
  if (t.signal.aborted) {
    await close();
    throw new Error("the test ended while this was starting: closed");
  }
  t.after(async () => {
    await close();
  });
}
