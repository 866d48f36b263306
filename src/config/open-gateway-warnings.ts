// Configs that leave the gateway open to more than its owner meant, said at start and by `check`: without client
// keys, whoever reaches the port, or whatever web page the browser is allowed to let read it, uses every provider key
// and reads the request log.
import { isLoopbackAddress } from "./loopback.ts";

interface OpenSettings {
  readonly host: string;
  readonly port: number;
  readonly apiKeys: readonly string[];
  readonly adminKeys?: readonly string[] | undefined;
  readonly corsOrigins: readonly string[];
}

export function openGatewayWarnings(server: OpenSettings): string[] {
  const warnings: string[] = [];
  const open = openServerWarning(server);
  if (open !== undefined) warnings.push(open);
  if (server.apiKeys.length === 0 && server.corsOrigins.includes("*")) {
    warnings.push(
      'server.cors_origins allows "*" and server.api_keys is empty: any web page open in a browser that can reach the ' +
        "gateway may call it and read its answers, the request log and the dashboard's data. Set server.api_keys, or " +
        "list the origins that may call it (SECURITY.md)",
    );
  }
  // A key in both lists is an admin key: whoever it is handed to as a client key may reload the config, reset every
  // limit and read every client's records. Said by position only: the warning must not print the key.
  const adminKeys = new Set(server.adminKeys ?? []);
  const shared = server.apiKeys.flatMap((key, index) => (adminKeys.has(key) ? [index] : []));
  if (shared.length > 0) {
    warnings.push(
      `server.api_keys ${shared.map((index) => `#${index}`).join(", ")} ${shared.length === 1 ? "is" : "are"} also in server.admin_keys: ` +
        "a client given that key may use the admin routes (reload, resets, every client's records). Give clients " +
        "keys of their own (SECURITY.md)",
    );
  }
  return warnings;
}

/**
 * The warning for a gateway that answers anyone who reaches it on the network: no client key, and an address
 * other than loopback (`0.0.0.0` in a container whose port is published on every interface of the host).
 */
function openServerWarning(server: OpenSettings): string | undefined {
  if (server.apiKeys.length > 0 || isLoopbackAddress(server.host)) return undefined;
  return (
    `server.host is ${server.host} (not loopback) and server.api_keys is empty: anyone who can reach port ` +
    `${server.port} may spend every provider key and read the request log and the dashboard. Set server.api_keys ` +
    "(or ALLOWED_BEARER_TOKENS), or listen on 127.0.0.1 (SECURITY.md)"
  );
}
