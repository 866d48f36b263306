// Whether a listen address is this machine's loopback: what the keyless default is safe on (config warns on any
// other), and the names the Host check accepts by default (server/allowed-hosts.ts).

export function isLoopbackAddress(host: string): boolean {
  const name = host.toLowerCase();
  return name === "localhost" || name === "::1" || name === "[::1]" || /^127\.\d+\.\d+\.\d+$/.test(name);
}

/**
 * The warning for a gateway that answers anyone who reaches it on the network: no client key, and an address
 * other than loopback (`0.0.0.0` in a container whose port is published on every interface of the host).
 */
export function openServerWarning(server: {
  readonly host: string;
  readonly port: number;
  readonly apiKeys: readonly string[];
}): string | undefined {
  if (server.apiKeys.length > 0 || isLoopbackAddress(server.host)) return undefined;
  return (
    `server.host is ${server.host} (not loopback) and server.api_keys is empty: anyone who can reach port ` +
    `${server.port} may spend every provider key and read the request log and the dashboard. Set server.api_keys ` +
    "(or ALLOWED_BEARER_TOKENS), or listen on 127.0.0.1 (SECURITY.md)"
  );
}
