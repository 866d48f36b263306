import assert from "node:assert/strict";
import { test } from "node:test";
import { GatewaySecrets } from "./logged-secrets.ts";
import type { GatewaySnapshot } from "./snapshot.ts";

/** The part of a snapshot the secrets are read from: one provider with this key, these client keys. */
function snapshotWith(providerKey: string, clientKeys: readonly string[] = []): GatewaySnapshot {
  const provider = {
    apiKeys: [providerKey],
    headers: {},
    baseUrl: "http://x/v1",
    modelUrl: "http://x/v1",
    bodySecrets: [],
  };
  return {
    config: { providers: [provider], server: { apiKeys: clientKeys, adminKeys: [] } },
  } as unknown as GatewaySnapshot;
}

/** A runtime's view: the serving snapshot, swapped as #swap does (serve, then retire the previous one). */
function servedSecrets(first: GatewaySnapshot): { secrets: GatewaySecrets; swap: (next: GatewaySnapshot) => void } {
  let serving = first;
  const secrets = new GatewaySecrets(() => serving);
  return {
    secrets,
    swap: (next) => {
      const previous = serving;
      serving = next;
      secrets.retire(previous);
    },
  };
}

test("keys replaced by reloads stay redacted, though nothing was redacted between the reloads", () => {
  const { secrets, swap } = servedSecrets(snapshotWith("ProviderKeyA-000000", ["ClientKeyA-0000000"]));
  swap(snapshotWith("ProviderKeyB-000000", ["ClientKeyB-0000000"]));
  swap(snapshotWith("ProviderKeyC-000000", ["ClientKeyC-0000000"]));
  assert.equal(
    secrets.redact("ProviderKeyA-000000 ClientKeyA-0000000 ProviderKeyB-000000 ClientKeyB-0000000 ProviderKeyC-000000"),
    "[redacted] [redacted] [redacted] [redacted] [redacted]",
  );
});

test("a key serving again after it was retired is listed once", () => {
  const a = snapshotWith("ProviderKeyA-000000");
  const { secrets, swap } = servedSecrets(a);
  swap(snapshotWith("ProviderKeyB-000000"));
  swap(snapshotWith("ProviderKeyA-000000"));
  assert.deepEqual([...secrets.list()].sort(), ["ProviderKeyA-000000", "ProviderKeyB-000000"]);
});

test("the retired secrets are bounded: the 1,000 most recently retired are kept, the oldest forgotten", () => {
  const key = (index: number) => `RotatedKey-${String(index).padStart(6, "0")}`;
  const { secrets, swap } = servedSecrets(snapshotWith(key(0)));
  for (let index = 1; index <= 1_100; index++) swap(snapshotWith(key(index)));
  const listed = new Set(secrets.list());
  assert.equal(listed.size, 1_001, "the serving key and 1,000 retired");
  assert.ok(listed.has(key(1_100)) && listed.has(key(1_099)) && listed.has(key(100)));
  assert.ok(!listed.has(key(99)) && !listed.has(key(0)), "the oldest retired are forgotten");
});
