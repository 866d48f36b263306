// The gateway's version, as `--version`, /health and the metrics' build_info show it (kept equal to
// package.json's by test/e2e/first-minutes.test.ts).
export { GATEWAY_VERSION as VERSION } from "../server/info-routes.ts";
