import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseConfigText } from "./load.ts";
import { providerSecretsOf, redactedRequestTarget, redactedUrl } from "./provider-secrets.ts";

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

describe("body rule secrets", () => {
  const yaml = `providers:
  - name: alpha
    base_url: http://127.0.0.1:9/v1
    api_key: sk-alpha-000000
    body:
      override: { user: "\${TENANT_TOKEN}", service_tier: "\${TIER}", seed: "\${SEED}", top_k: "\${TOP_K}" }
      defaults: { metadata: { note: "\${UNSET:-Written1nTheFile}" } }
    known_models:
      known-m: { body: { defaults: { metadata: { project: "p-\${PROJECT_ID}" } } } }
    models:
      m: { body: { override: { safety_identifier: "\${USER_HASH}" } } }
      plain:
`;
  const env = {
    TENANT_TOKEN: "tenant-7Hq2Zp9Lr4VxK3",
    TIER: "priority",
    TOP_K: "20",
    SEED: "1234567890",
    PROJECT_ID: "proj-55aa66bb",
    USER_HASH: "u-0c1d2e3f4a5b",
  };

  it("lists what the environment put into a provider's, its known models' and its models' rules", () => {
    const [alpha] = parseConfigText(yaml, "test.yaml", { env }).config.providers;
    assert.ok(alpha !== undefined);
    assert.deepEqual([...alpha.bodySecrets].sort(), ["proj-55aa66bb", "tenant-7Hq2Zp9Lr4VxK3", "u-0c1d2e3f4a5b"]);
    const secrets = providerSecretsOf(alpha);
    for (const secret of alpha.bodySecrets) assert.ok(secrets.includes(secret), secret);
  });

  it("leaves out settings (short values, lower-case words, numbers) and what the file wrote (a default, a literal)", () => {
    const [alpha] = parseConfigText(yaml, "test.yaml", { env }).config.providers;
    for (const kept of ["priority", "20", "1234567890", "Written1nTheFile", "p-", "sk-alpha-000000"]) {
      assert.ok(!alpha?.bodySecrets.includes(kept), kept);
    }
  });

  it("has none for rules written without a variable", () => {
    const [alpha] = parseConfigText(yaml.replaceAll("${", "literal-"), "test.yaml", { env }).config.providers;
    assert.deepEqual(alpha?.bodySecrets, []);
  });
});
