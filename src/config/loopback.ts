// Whether a listen address is this machine's loopback: what the keyless default is safe on
// (open-gateway-warnings.ts warns on any other), and the names the Host check accepts by default
// (server/allowed-hosts.ts).

export function isLoopbackAddress(host: string): boolean {
  const name = host.toLowerCase();
  return name === "localhost" || name === "::1" || name === "[::1]" || /^127\.\d+\.\d+\.\d+$/.test(name);
}
