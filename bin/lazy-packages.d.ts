// Types for bin/lazy-packages.js (plain JavaScript: bin/build.js runs without TypeScript).
export declare function standInPath(
  file: string,
  name: string,
  nodeModules: string,
  dist: string,
): { fromDist: string; packageDir: string };
export declare function standInPackageDirs(
  standIns: Map<string, string>,
  root: string,
): { found: string[]; missing: string[] };
