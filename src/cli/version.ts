// The gateway's version, as `--version` prints it (server/gateway-version.ts, which /health and the metrics read).
export { GATEWAY_VERSION as VERSION } from "../server/gateway-version.ts";
