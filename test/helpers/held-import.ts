// Holds one of the gateway's own dynamic imports (a lazily loaded door's modules, server/lazy-routes.ts) until the
// test lets it through, so what happens during a first import is tested without timing luck and without a test hook
// in src/. A module resolve hook (node:module registerHooks) sends `specifier`, imported from the module whose URL
// ends with `parentSuffix`, to a small module that first waits at the gate (a top-level await: the import does not
// settle before it), then re-exports the real module by its own URL (so it is the one instance every importer has).
import { registerHooks } from "node:module";

export interface HeldImport {
  /** Resolves once the gateway asked for the module (its import is now held). */
  readonly reached: Promise<void>;
  /** Lets the import through. */
  release(): void;
  /** Removes the hook (the import already let through stays as it is). */
  deregister(): void;
}

const gates = new Map<string, { arrive(): void; opened: Promise<void> }>();

/** Called by the held module (by this file's URL): notes the arrival, then waits for `release`. */
export function waitAtGate(id: string): Promise<void> {
  const gate = gates.get(id);
  if (gate === undefined) return Promise.resolve();
  gate.arrive();
  return gate.opened;
}

let nextId = 0;

export function holdImport(parentSuffix: string, specifier: string): HeldImport {
  const id = `held-${nextId++}`;
  let arrive = (): void => {};
  let release = (): void => {};
  const reached = new Promise<void>((resolve) => {
    arrive = resolve;
  });
  const opened = new Promise<void>((resolve) => {
    release = resolve;
  });
  gates.set(id, { arrive, opened });
  const deregister = swapImport(parentSuffix, specifier, (realUrl) =>
    [
      `import { waitAtGate } from ${JSON.stringify(import.meta.url)};`,
      `await waitAtGate(${JSON.stringify(id)});`,
      `export * from ${JSON.stringify(realUrl)};`,
    ].join("\n"),
  );
  return { reached, release, deregister };
}

/**
 * `specifier`, imported from the module whose URL ends with `parentSuffix`, becomes the module `source` returns (given
 * the real module's URL, to re-export or wrap it): a module resolve hook, as `holdImport` uses. Returns its removal.
 */
export function swapImport(parentSuffix: string, specifier: string, source: (realUrl: string) => string): () => void {
  const hooks = registerHooks({
    resolve(requested, context, nextResolve) {
      const resolved = nextResolve(requested, context);
      if (requested !== specifier || context.parentURL?.endsWith(parentSuffix) !== true) return resolved;
      return { url: `data:text/javascript,${encodeURIComponent(source(resolved.url))}`, shortCircuit: true };
    },
  });
  return () => hooks.deregister();
}
