// Types for what the tests import from bin/bundle-plugins.js (plain JavaScript: bin/build.js runs without TypeScript).
export declare function nonAsciiOutputs(metafile: { outputs: Record<string, unknown> }, root: string): string[];
