// Preloaded (`--import`, through NODE_OPTIONS) into a CLI run: at exit, writes the URL of every module other than
// Node's built-ins that the process loaded to $LOADED_MODULES_PATH, one per line. JavaScript, not TypeScript: a .ts
// preload would load Node's TypeScript stripper itself.
const { registerHooks } = process.getBuiltinModule("node:module");
const { writeFileSync } = process.getBuiltinModule("node:fs");

const loaded = [];
registerHooks({
  load(url, context, nextLoad) {
    if (!url.startsWith("node:")) loaded.push(url);
    return nextLoad(url, context);
  },
});
process.on("exit", () => {
  writeFileSync(process.env.LOADED_MODULES_PATH ?? "loaded-modules.txt", `${loaded.join("\n")}\n`);
});
