import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { redactedRequestTarget, redactedUrl } from "./provider-secrets.ts";

describe("redactedRequestTarget", () => {
  it("redacts credential-named query parameters of a request target, as redactedUrl does for upstream URLs", () => {
    assert.equal(
      redactedRequestTarget("/v1/models?key=abc&api_key=def&access_token=g&limit=5"),
      "/v1/models?key=%5Bredacted%5D&api_key=%5Bredacted%5D&access_token=%5Bredacted%5D&limit=5",
    );
    // Percent-encoded names are credential names too once decoded.
    assert.equal(redactedRequestTarget("/x?api%5Fkey=abc"), "/x?api_key=%5Bredacted%5D");
    assert.equal(
      new URL(redactedUrl("https://example.com/v1?key=abc&limit=5")).search,
      new URL(`https://example.com${redactedRequestTarget("/v1?key=abc&limit=5")}`).search,
    );
  });

  it("leaves a target without credentials as it is, and a `//` target's path a path", () => {
    for (const target of ["/v1/models", "/v1/models?limit=5&note=a%20b", "/v1/models?key=", "/?"]) {
      assert.equal(redactedRequestTarget(target), target);
    }
    assert.equal(redactedRequestTarget("//evil.example/x?token=t"), "//evil.example/x?token=%5Bredacted%5D");
  });
});
