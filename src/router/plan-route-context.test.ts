// The planner's context check (docs/routing.md "Context fit"), pure: a model whose output limit is separate from
// its input limit (Gemini, Claude) takes a prompt up to that input limit whatever `max_tokens` asks; a model with
// one shared window needs the prompt and `max_tokens` to fit it together.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { TEST_ROUTING } from "../../test/fixtures/routing-settings.ts";
import { providerSettingsSchema } from "../config/schema.ts";
import type { RoutingSettings } from "../config/types.ts";
import { PromptCalibration, SAFETY_MARGIN } from "../limits/prompt-calibration.ts";
import { buildCatalog, type Catalog, type Deployment } from "../providers/catalog.ts";
import { contextFit, isSharedWindow } from "./context-fit.ts";
import { planRoute, type RouteRequest, type RouterContext } from "./plan-route.ts";

const ROUTING: RoutingSettings = TEST_ROUTING;

/** `separate` (input 1,000, output 100, priority 2) and `shared` (one 1,000 window, priority 1) both serve `m`. */
function catalogOf(separateModel: Record<string, unknown>, sharedModel: Record<string, unknown>): Catalog {
  return buildCatalog(
    [
      providerSettingsSchema.parse({
        name: "separate",
        base_url: "https://separate.example/v1",
        api_key: "k",
        models: { m: { priority: 2, ...separateModel } },
      }),
      providerSettingsSchema.parse({
        name: "shared",
        base_url: "https://shared.example/v1",
        api_key: "k",
        models: { m: { priority: 1, ...sharedModel } },
      }),
    ],
    new Map(),
  );
}

const catalog = catalogOf({ context: 1000, max_output_tokens: 100 }, { context: 1000 });

function context(on: Catalog = catalog, extra: Partial<RouterContext> = {}): RouterContext {
  return {
    catalog: on,
    metaModels: {},
    routing: ROUTING,
    nowMs: 0,
    score: (deployment: Deployment) => deployment.model.priority,
    availability: () => ({ isAvailable: true, isProbe: false }),
    ...extra,
  };
}

function request(promptTokens: number, maxOutputTokens?: number): RouteRequest {
  return {
    model: "m",
    fallbackModels: [],
    kind: "chat",
    promptTokens,
    ...(maxOutputTokens === undefined ? {} : { maxOutputTokens }),
  };
}

const keys = (entries: readonly { deployment: Deployment }[]) => entries.map((entry) => entry.deployment.key);

describe("the context check", () => {
  it("reads config `context` with a different `max_output_tokens` as an input limit, alone as one window", () => {
    const [separate, shared] = catalog.deployments;
    assert.equal(separate?.contextTokens, 1000);
    assert.equal(separate?.maxOutputTokens, 100);
    assert.equal(shared?.maxOutputTokens, undefined);
    assert.equal(isSharedWindow(separate as Deployment), false);
    assert.equal(isSharedWindow(shared as Deployment), true);
    // The same number twice is one window (LiteLLM lists some models so: the output may fill the whole window).
    assert.equal(isSharedWindow({ contextTokens: 1000, maxOutputTokens: 1000 }), true);
  });

  it("a preset's known output limit goes with its known context, not with a configured one", () => {
    const known = buildCatalog(
      [
        providerSettingsSchema.parse({
          name: "gemini",
          base_url: "https://gemini.example/v1",
          api_key: "k",
          known_models: { "gemini-x": { context: 1_048_576, max_output_tokens: 65_536 } },
          models: { preset: { id: "gemini-x" }, own: { id: "gemini-x", context: 2_000 } },
        }),
      ],
      new Map(),
    );
    const [preset, own] = known.deployments;
    assert.deepEqual([preset?.contextTokens, preset?.maxOutputTokens], [1_048_576, 65_536]);
    assert.deepEqual([own?.contextTokens, own?.maxOutputTokens], [2_000, undefined]);
  });

  it("a prompt that fits the input limit is served with a max_tokens that would overflow a shared window", () => {
    const plan = planRoute(request(950, 100), context());
    assert.deepEqual(keys(plan.candidates), ["separate/m"]);
    assert.deepEqual(
      plan.skipped.map((skip) => [skip.deployment.key, skip.cause, skip.reason]),
      [
        [
          "shared/m",
          "context",
          "needs ~1050 tokens of context, has 1000 (prompt ~950 + max_tokens 100 share one window)",
        ],
      ],
    );
  });

  it("a prompt above the input limit is skipped, with the numbers compared", () => {
    const plan = planRoute(request(950, 10), context(catalogOf({ context: 900, max_output_tokens: 100 }, {})));
    assert.deepEqual(keys(plan.candidates), ["shared/m"], "a model of unknown context is not skipped");
    assert.deepEqual(
      plan.skipped.map((skip) => [skip.deployment.key, skip.reason]),
      [
        [
          "separate/m",
          "needs ~950 tokens of prompt, input limit 900 (max_tokens 10 counts against the separate output limit 100)",
        ],
      ],
    );
  });

  it("a max_tokens above the output limit does not skip: the provider clamps it or says so, and that fails over", () => {
    assert.deepEqual(keys(planRoute(request(500, 50_000), context()).candidates), ["separate/m"]);
  });

  it("nothing fits: the refusal names the largest model and the numbers it compared", () => {
    assert.throws(
      () => planRoute(request(1001, 0), context()),
      (error: Error) => {
        assert.match(error.message, /context window large enough/);
        assert.match(error.message, /the largest is 1000: separate\/m needs ~1001 tokens of prompt, input limit 1000/);
        return true;
      },
    );
  });

  it("the prompt is calibrated per deployment before the input limit is compared", () => {
    // Reports say this provider counts half the estimate: 1,900 estimated is ~950 there.
    const halved = context(catalog, {
      promptTokensFor: (deployment, tokens) => (deployment.key === "separate/m" ? Math.ceil(tokens / 2) : tokens),
    });
    assert.deepEqual(keys(planRoute(request(1900, 100), halved).candidates), ["separate/m"]);
  });

  it("an unknown context is no fit to check", () => {
    assert.equal(contextFit({ contextTokens: undefined, maxOutputTokens: undefined }, 10, 10), undefined);
  });
});

describe("what a context-length refusal teaches (PromptCalibration.learnTooLong)", () => {
  // Listed with an input limit of 10,000 and an output limit of 4,000 of its own (as LiteLLM lists gpt-4o: 128,000
  // in, 16,384 out), beside a large shared window.
  const listed = catalogOf({ context: 10_000, max_output_tokens: 4_000 }, { context: 100_000 });
  const separate = listed.deployments.find((deployment) => deployment.key === "separate/m") as Deployment;
  const planned = (calibration: PromptCalibration, promptTokens: number, maxOutputTokens: number) =>
    keys(
      planRoute(
        request(promptTokens, maxOutputTokens),
        context(listed, {
          promptTokensFor: calibration.promptTokensFor,
          contextLimitsFor: calibration.limitsFor,
        }),
      ).candidates,
    );

  it("a refused prompt that fitted the input limit only without its output: the window is shared, the prompt no larger", () => {
    const calibration = new PromptCalibration();
    // 9,000 + 3,000 was sent (the prompt fits the input limit) and refused: a window shared with the output explains
    // it. Taking 10,000 as the prompt's size would make every later estimate 11 % larger.
    assert.deepEqual(planned(calibration, 9_000, 3_000), ["separate/m", "shared/m"]);
    calibration.learnTooLong("separate/m", 9_000, separate, 3_000);
    assert.equal(calibration.factorOf("separate/m"), 1);
    assert.equal(calibration.sharesWindow("separate/m"), true);
    assert.deepEqual(calibration.limitsFor(separate), { contextTokens: 10_000, maxOutputTokens: undefined });
    // The same request is not sent there again; one that fits the shared window still is.
    assert.deepEqual(planned(calibration, 9_000, 3_000), ["shared/m"]);
    assert.deepEqual(planned(calibration, 9_000, 1_000), ["separate/m", "shared/m"]);
  });

  it("a refused prompt that fitted with its output: larger than the limit less the output, whatever the window", () => {
    const calibration = new PromptCalibration();
    calibration.learnTooLong("separate/m", 5_000, separate, 1_000);
    assert.equal(calibration.sharesWindow("separate/m"), false);
    // Reported as 9,000 for an estimate of 5,000 (then the margin): not 10,000, which a shared window would not prove.
    assert.ok(Math.abs(calibration.factorOf("separate/m") - (9_000 / 5_000) * SAFETY_MARGIN) < 1e-9);
  });

  it("a shared window's refusal teaches the window less the output", () => {
    const calibration = new PromptCalibration();
    const shared = listed.deployments.find((deployment) => deployment.key === "shared/m") as Deployment;
    calibration.learnTooLong("shared/m", 50_000, shared, 60_000);
    assert.equal(calibration.factorOf("shared/m"), 1, "50,000 is already more than 100,000 less 60,000");
    calibration.learnTooLong("shared/m", 30_000, shared, 60_000);
    // Reported as 40,000 (the window less the output) for an estimate of 30,000.
    assert.ok(Math.abs(calibration.factorOf("shared/m") - (40_000 / 30_000) * SAFETY_MARGIN) < 1e-9);
    assert.equal(calibration.sharesWindow("shared/m"), false);
  });
});
