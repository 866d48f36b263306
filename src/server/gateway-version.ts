// The gateway's version, as `--version`, /health and the metrics' build_info show it (kept equal to package.json's by
// test/e2e/first-minutes.test.ts). A file of its own so that `--version`, `--help` and a usage error, which load
// main.ts's static imports only, do not load /health's modules (and through them zod, yaml and the request path).
export const GATEWAY_VERSION = "0.1.0";
