import assert from "node:assert/strict";
import { test } from "node:test";
import { allowedHostsFor, hostName, isHostAllowed } from "./allowed-hosts.ts";

test("bound to loopback, only loopback names are accepted by default", () => {
  const allowed = allowedHostsFor({ host: "127.0.0.1", allowedHosts: undefined });
  for (const header of ["localhost:12345", "127.0.0.1:8080", "[::1]:80", "LOCALHOST", "localhost."])
    assert.equal(isHostAllowed(allowed, header), true, header);
  for (const header of ["evil.example:12345", "127.0.0.1.nip.io", "localhost.evil.example", "0.0.0.0"])
    assert.equal(isHostAllowed(allowed, header), false, header);
  assert.equal(isHostAllowed(allowed, undefined), true);
});

test("bound to another address, any Host by default; a configured list wins; `*` accepts any", () => {
  assert.equal(allowedHostsFor({ host: "0.0.0.0", allowedHosts: undefined }), undefined);
  const listed = allowedHostsFor({ host: "0.0.0.0", allowedHosts: ["gateway.internal"] });
  assert.equal(isHostAllowed(listed, "gateway.internal:443"), true);
  assert.equal(isHostAllowed(listed, "localhost"), false);
  assert.equal(allowedHostsFor({ host: "127.0.0.1", allowedHosts: ["*"] }), undefined);
});

test("hostName strips the port, keeps IPv6 brackets", () => {
  assert.equal(hostName("[::1]:8080"), "[::1]");
  assert.equal(hostName("Example.COM:443"), "example.com");
});
