// Types for bin/start-entry.js (plain JavaScript: bin/llm-gateway.js loads it before anything else).
export interface PackageStamp {
  readonly version: string;
  readonly size: number;
  readonly mtimeMs: number;
}
export declare const DIST_DIR: string;
export declare const BUILD_MANIFEST: string;
export declare const MANIFEST_FORMAT: number;
export declare const LAZY_SOURCES: readonly string[];
export declare function packageStamp(root: string, packageDir: string): PackageStamp;
export declare function bundleState(
  root: string,
  env: Readonly<Record<string, string | undefined>>,
): { isFresh: boolean; reason: string; restamp: string[] };
export declare function restampBundle(root: string, packageDirs: readonly string[]): void;
export declare function bundleManifest(root: string): { lazyFiles: readonly string[] };
export declare const SNAPSHOT_BLOB: string;
export declare const SNAPSHOT_RECORD: string;
export declare const READ_AT_BUILD: readonly string[];
export declare function snapshotRecord(dir: string): { kind?: string; builtAtMs?: number; root?: string } | undefined;
