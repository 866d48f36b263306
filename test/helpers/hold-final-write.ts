// Preloaded into a gateway process by a test (`--import`): a background run's final write (background-final-write.ts
// writeFinal) never settles, so the process stays between adding its answer's items to the conversation and writing
// its final state until the test kills it (SIGKILL): the window a crash or an OOM kill can land in, held open without
// timing luck and without a test hook in src/. A module resolve hook (held-import.ts swapImport) gives
// background-responses.ts a module re-exporting the real one but for writeFinal.
import { swapImport } from "./held-import.ts";

swapImport("/src/server/background-responses.ts", "./background-final-write.ts", (realUrl) =>
  [`export * from ${JSON.stringify(realUrl)};`, "export function writeFinal() { return new Promise(() => {}); }"].join(
    "\n",
  ),
);
