// Preloaded (`--import`) into a gateway under test: on SIGUSR2, writes the built-in modules the process has loaded
// (Node's `process.moduleLoadList`) to $LOADED_BUILTINS_PATH, one per line. JavaScript, not TypeScript: a .ts
// preload would load Node's TypeScript stripper into a process whose loading is what the test looks at.
// Not an ES import of node:fs, which would load fs/promises (bin/build.js): the test checks it is not loaded.
const { renameSync, writeFileSync } = process.getBuiltinModule("node:fs");

process.on("SIGUSR2", () => {
  const loaded = process.moduleLoadList
    .filter((entry) => entry.startsWith("NativeModule "))
    .map((entry) => entry.slice(13));
  // Written aside, then renamed: the test reads the file as soon as it exists, and must never find it empty (a
  // read between writeFileSync's create and its write once failed CI).
  const path = process.env.LOADED_BUILTINS_PATH ?? "loaded-builtins.txt";
  writeFileSync(`${path}.partial`, `${loaded.join("\n")}\n`);
  renameSync(`${path}.partial`, path);
});
