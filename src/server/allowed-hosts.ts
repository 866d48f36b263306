// `server.allowed_hosts`: which Host headers the gateway answers. A web page on another origin can make a
// browser send requests to a name that resolves to 127.0.0.1 (DNS rebinding); with the keyless default on
// loopback that page could use every provider key. Checking the Host header stops it: the browser sends the
// attacker's name, not `localhost`.
import { isLoopbackAddress } from "../config/loopback.ts";
import type { ServerSettings } from "../config/types.ts";

/** The accepted names (lower case, no port), or undefined when any Host is accepted. */
export function allowedHostsFor(
  settings: Pick<ServerSettings, "host" | "allowedHosts">,
): ReadonlySet<string> | undefined {
  const configured = settings.allowedHosts ?? (isLoopbackAddress(settings.host) ? LOOPBACK_HOST_NAMES : undefined);
  if (configured === undefined || configured.includes("*")) return undefined;
  return new Set(configured.map((name) => name.toLowerCase()));
}

/** The host name of a Host header: port and a trailing dot removed, lower case; `[::1]` keeps its brackets. */
export function hostName(header: string): string {
  let name = header.trim().toLowerCase();
  if (name.startsWith("[")) {
    const end = name.indexOf("]");
    name = end < 0 ? name : name.slice(0, end + 1);
  } else {
    const colon = name.indexOf(":");
    if (colon >= 0) name = name.slice(0, colon);
  }
  return name.endsWith(".") ? name.slice(0, -1) : name;
}

/** Whether a request's Host header is accepted. A request without one (HTTP/1.0) cannot come from a browser. */
export function isHostAllowed(allowed: ReadonlySet<string> | undefined, header: string | undefined): boolean {
  if (allowed === undefined || header === undefined) return true;
  return allowed.has(hostName(header));
}

/** Host header names accepted by default when the gateway listens on a loopback address (DNS rebinding). */
const LOOPBACK_HOST_NAMES: readonly string[] = ["localhost", "127.0.0.1", "::1", "[::1]"];
