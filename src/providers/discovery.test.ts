import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { ProviderSettings } from "../config/types.ts";
import { discoveryFilter, modelListUrl, parseModelList } from "./discovery.ts";

function provider(fields: Partial<ProviderSettings>): ProviderSettings {
  return {
    discoveryInclude: [],
    discoveryExclude: [],
    discoveryIdField: undefined,
    discoveryIdStripPrefix: undefined,
    ...fields,
  } as ProviderSettings;
}

describe("modelListUrl", () => {
  it("appends /models to a base URL", () => {
    assert.equal(modelListUrl("https://api.groq.com/openai/v1").href, "https://api.groq.com/openai/v1/models");
    assert.equal(modelListUrl("https://models.github.ai/catalog").href, "https://models.github.ai/catalog/models");
  });

  it("takes a URL that already names the list as it is (Cohere's native list, Cloudflare's search)", () => {
    const cohere = "https://api.cohere.com/v1/models?endpoint=chat&page_size=1000";
    assert.equal(modelListUrl(cohere).href, cohere);
    const cloudflare = "https://api.cloudflare.com/client/v4/accounts/a/ai/models/search?task=Text%20Generation";
    assert.equal(modelListUrl(cloudflare).href, cloudflare);
    assert.equal(modelListUrl("http://127.0.0.1:9/x/models").href, "http://127.0.0.1:9/x/models");
  });
});

describe("parseModelList", () => {
  it("reads Cloudflare's {result:[...]} with the model id in `name` when asked to", () => {
    const body = {
      success: true,
      result: [
        { id: "f5c7e5c0-uuid", name: "@cf/meta/llama-3.1-8b-instruct" },
        { id: "0b8e-uuid", name: "@cf/openai/gpt-oss-120b" },
      ],
    };
    assert.deepEqual(
      parseModelList(body, "name").map((model) => model.id),
      ["@cf/meta/llama-3.1-8b-instruct", "@cf/openai/gpt-oss-120b"],
    );
    assert.deepEqual(
      parseModelList(body).map((model) => model.id),
      ["f5c7e5c0-uuid", "0b8e-uuid"],
    );
  });

  it("reads Cohere's native list: `models`, id in `name`, context in `context_length`", () => {
    const body = { models: [{ name: "command-a-03-2025", endpoints: ["chat"], context_length: 256000 }] };
    assert.deepEqual(parseModelList(body), [{ id: "command-a-03-2025", contextTokens: 256000 }]);
  });
});

describe("parseModelList with a hostile list", () => {
  it("leaves out ids holding control characters (terminal escapes, line breaks); odd but printable ids stay", () => {
    const body = {
      data: [
        { id: "good-model" },
        { id: "\u001b]0;pwned\u0007\u001b[2Jevil" },
        { id: "two\nlines" },
        { id: "c1\u009bcsi" },
        { id: "sep\u2028arated" },
        "\u001b[31mred",
        { id: "模型-unicode <b>x</b>" },
      ],
    };
    assert.deepEqual(
      parseModelList(body).map((model) => model.id),
      ["good-model", "模型-unicode <b>x</b>"],
    );
  });
});

describe("discoveryFilter", () => {
  const models = [
    { id: "meta-llama/llama-3.3-70b-instruct:free" },
    { id: "meta-llama/llama-3.3-70b-instruct" },
    { id: "openai/gpt-oss-20b:FREE" },
  ];

  it("keeps ids matching discovery_include (case-insensitive) and drops those matching discovery_exclude", () => {
    const free = discoveryFilter(provider({ discoveryInclude: [":free$"] }));
    assert.deepEqual(
      free(models).map((model) => model.id),
      ["meta-llama/llama-3.3-70b-instruct:free", "openai/gpt-oss-20b:FREE"],
    );
    const noOpenAi = discoveryFilter(provider({ discoveryInclude: [":free$"], discoveryExclude: ["^openai/"] }));
    assert.deepEqual(
      noOpenAi(models).map((model) => model.id),
      ["meta-llama/llama-3.3-70b-instruct:free"],
    );
  });

  it("strips an id prefix before filtering, keeping the first of any duplicates", () => {
    const gemini = discoveryFilter(provider({ discoveryIdStripPrefix: "models/", discoveryExclude: ["^aqa$"] }));
    const found = gemini([
      { id: "models/gemini-2.5-flash", contextTokens: 1048576 },
      { id: "models/aqa" },
      { id: "gemini-2.5-flash" },
    ]);
    assert.deepEqual(found, [{ id: "gemini-2.5-flash", contextTokens: 1048576 }]);
  });

  it("leaves out ids no request could name: with a comma (model lists split there), or too long", () => {
    const all = discoveryFilter(provider({}));
    const found = all([{ id: "comma,model" }, { id: "x".repeat(257) }, { id: "x".repeat(256) }, { id: "fine" }]);
    assert.deepEqual(
      found.map((model) => model.id.length),
      [256, 4],
    );
  });
});
