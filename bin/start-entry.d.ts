// Types for bin/start-entry.js (plain JavaScript: bin/llm-gateway.js loads it before anything else).
export declare const DIST_DIR: string;
export declare const BUILD_MANIFEST: string;
export declare function bundleState(
  root: string,
  env: Readonly<Record<string, string | undefined>>,
): { isFresh: boolean; reason: string };
