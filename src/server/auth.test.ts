import assert from "node:assert/strict";
import { test } from "node:test";
import { currentKeyRing, KeyRing } from "./auth.ts";

test("a key is accepted in every header, again after it was remembered; others never", () => {
  const ring = new KeyRing(["client-key-1", "client-key-2"]);
  for (let round = 0; round < 2; round++) {
    assert.equal(ring.acceptsClient({ authorization: "Bearer client-key-1" }), true);
    assert.equal(ring.acceptsClient({ "x-api-key": "client-key-2" }), true);
    assert.equal(ring.acceptsClient({ "api-key": " client-key-1 " }), true);
    assert.equal(ring.acceptsClient({ authorization: "Bearer client-key-" }), false);
    assert.equal(ring.acceptsClient({ authorization: "Bearer client-key-10" }), false);
    assert.equal(ring.acceptsClient({ authorization: "client-key-1" }), false, "the Bearer scheme is required");
    assert.equal(ring.acceptsClient({}), false);
  }
});

test("clientOf names the client of a named key, null for an unnamed one, undefined for a wrong key", () => {
  const ring = new KeyRing(["key-a", "key-b", "key-c"], ["team-a", null, "team-a"]);
  for (let round = 0; round < 2; round++) {
    assert.equal(ring.clientOf({ authorization: "Bearer key-a" }), "team-a");
    assert.equal(ring.clientOf({ "x-api-key": "key-c" }), "team-a");
    assert.equal(ring.clientOf({ "api-key": "key-b" }), null);
    assert.equal(ring.clientOf({ authorization: "Bearer key-d" }), undefined);
    assert.equal(ring.clientOf({}), undefined);
  }
});

test("a key revoked by a reload is refused at once, though the previous ring had remembered it", () => {
  let config = { keys: ["old-key", "kept-key"] };
  const ring = currentKeyRing(
    () => config,
    (current) => current.keys,
  );
  assert.equal(ring().acceptsClient({ authorization: "Bearer old-key" }), true);
  assert.equal(ring().acceptsClient({ authorization: "Bearer old-key" }), true);
  config = { keys: ["kept-key"] };
  assert.equal(ring().acceptsClient({ authorization: "Bearer old-key" }), false);
  assert.equal(ring().acceptsClient({ authorization: "Bearer kept-key" }), true);
});

test("more distinct accepted keys than the ring remembers are all still accepted", () => {
  const keys = Array.from({ length: 600 }, (_, index) => `key-${index}`);
  const ring = new KeyRing(keys);
  for (const key of keys) assert.equal(ring.acceptsClient({ "x-api-key": key }), true);
  for (const key of keys) assert.equal(ring.acceptsClient({ "x-api-key": key }), true);
  assert.equal(ring.acceptsClient({ "x-api-key": "key-600" }), false);
});
