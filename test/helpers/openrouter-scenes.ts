// The OpenRouter scene shared by the e2e tests of OpenRouter's (and a proxy in front of it's) errors: a provider
// `openrouter` serving `m` and `m2`, account-scoped and read in OpenRouter's rate-limit dialect as its preset is, and
// a provider `beta` serving `m` at a lower priority, so that a test sees whether a refusal failed over, parked the key
// or cooled one model. Each option is one the tests need to keep the config they were written against.
import type { TestContext } from "node:test";
import type OpenAI from "openai";
import { CHAT_ROUTE, openAiClient, serveEveryChat, useGateway, useMock } from "./e2e.ts";
import type { TestGateway } from "./gateway.ts";
import { chatCompletion, type MockStep, type MockUpstream } from "./mock-upstream.ts";

/** Shaped as OpenRouter's keys are (`sk-or-v1-` and 32 hex digits), so that a test can assert it never leaks. */
export const OPENROUTER_KEY = "sk-or-v1-0123456789abcdef0123456789abcdef";

/** One model entry of the YAML config. */
export interface SceneModel {
  readonly id: string;
  readonly priority: number;
  /** The model's context window in tokens. */
  readonly context?: number;
  /** `limits:` keys, e.g. `tpm`. */
  readonly limits?: Readonly<Record<string, number>>;
}

export interface OpenRouterSceneOptions {
  /** The first provider's name and key: another proxy in front of OpenRouter (LiteLLM) is named for itself. */
  readonly name?: string;
  readonly apiKey?: string;
  /** The first provider's models; `m` and `m2` (`vendor/m:free`, `vendor/m2:free`, priority 10) unless given. */
  readonly models?: Readonly<Record<string, SceneModel>>;
  /** `rate_limit_scope: account`, as the preset has it; true unless given. */
  readonly isAccountScoped?: boolean;
  /** `rate_limit_dialect: openrouter`, as the preset has it; true unless given (false: the generic dialect). */
  readonly hasOpenRouterDialect?: boolean;
  /** `beta`'s model `m`, or false for a config without `beta` (its mock is started all the same). */
  readonly beta?: SceneModel | false;
  readonly hasRequestLog?: boolean;
  /** When given, the first provider answers every chat request not scripted otherwise with this text (and its model). */
  readonly openRouterAnswer?: string;
  /** When given, `beta` answers every chat request not scripted otherwise with this text. */
  readonly betaAnswer?: string;
  /** More settings of `beta`'s provider entry, one `key: value` a line (e.g. `responses_api: native`). */
  readonly betaYaml?: string;
  /** More top-level sections of the config (e.g. `cache:`), added at its end. */
  readonly extraYaml?: string;
}

export interface OpenRouterScene {
  /** Upstream of the first provider (`openrouter`, or the name given). */
  readonly openrouter: MockUpstream;
  readonly beta: MockUpstream;
  readonly gateway: TestGateway;
  /** Official SDK client against the gateway, without its own retries. */
  readonly client: OpenAI;
}

const DEFAULT_MODELS: Readonly<Record<string, SceneModel>> = {
  m: { id: "vendor/m:free", priority: 10 },
  m2: { id: "vendor/m2:free", priority: 10 },
};

const DEFAULT_BETA: SceneModel = { id: "beta-m", priority: 1 };

/** `{ id: "…", priority: 10, … }`: YAML's flow mapping, as the tests wrote their entries by hand. */
function modelEntry(model: SceneModel): string {
  const context = model.context === undefined ? "" : `, context: ${model.context}`;
  const limits =
    model.limits === undefined
      ? ""
      : `, limits: { ${Object.entries(model.limits)
          .map(([key, value]) => `${key}: ${value}`)
          .join(", ")} }`;
  return `{ id: ${JSON.stringify(model.id)}, priority: ${model.priority}${context}${limits} }`;
}

function modelLines(models: Readonly<Record<string, SceneModel>>): string {
  return Object.entries(models)
    .map(([name, model]) => `      ${name}: ${modelEntry(model)}\n`)
    .join("");
}

/** The scene's YAML config, for the two mocks' URLs. */
export function openRouterSceneYaml(
  openrouter: MockUpstream,
  beta: MockUpstream,
  options: OpenRouterSceneOptions = {},
): string {
  const betaModel = options.beta ?? DEFAULT_BETA;
  const betaEntry =
    betaModel === false
      ? ""
      : `  - name: beta
    base_url: ${beta.baseUrl}
    api_key: sk-beta
    retries: 0
${indented(options.betaYaml ?? "", "    ")}    models:
      m: ${modelEntry(betaModel)}
`;
  return `providers:
  - name: ${options.name ?? "openrouter"}
    base_url: ${openrouter.baseUrl}
    api_key: ${options.apiKey ?? OPENROUTER_KEY}
    retries: 0
${options.isAccountScoped === false ? "" : "    rate_limit_scope: account\n"}${
  options.hasOpenRouterDialect === false ? "" : "    rate_limit_dialect: openrouter\n"
}    models:
${modelLines(options.models ?? DEFAULT_MODELS)}${betaEntry}routing:
  max_wait_for_better_ms: 0
${options.hasRequestLog === true ? "request_log:\n  enabled: true\n" : ""}${options.extraYaml ?? ""}`;
}

/** Each line of `yaml` with `indent` before it (none for an empty text). */
function indented(yaml: string, indent: string): string {
  return yaml
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => `${indent}${line}\n`)
    .join("");
}

/** Starts both mocks and the gateway (all torn down after the test), with the default answers asked for. */
export async function openRouterScene(t: TestContext, options: OpenRouterSceneOptions = {}): Promise<OpenRouterScene> {
  const openrouter = await useMock(t);
  const beta = await useMock(t);
  const gateway = await useGateway(t, openRouterSceneYaml(openrouter, beta, options));
  const { openRouterAnswer, betaAnswer } = options;
  if (openRouterAnswer !== undefined) {
    openrouter.setDefault(CHAT_ROUTE, (recorded) => ({
      kind: "json",
      body: chatCompletion(openRouterAnswer, (recorded.body as { model: string }).model),
    }));
  }
  if (betaAnswer !== undefined) serveEveryChat(beta, betaAnswer);
  return { openrouter, beta, gateway, client: openAiClient(gateway) };
}

/**
 * OpenRouter's own 402 (not one it relays: `provider_name` null), with `message` as its error's and `metadata`'s other
 * fields (`previous_errors`: the refusals of the providers it tried before).
 */
export function openRouter402(message: string, metadata: Readonly<Record<string, unknown>> = {}): MockStep {
  return {
    kind: "json",
    status: 402,
    body: { error: { message, code: 402, metadata: { provider_name: null, ...metadata } }, user_id: "user_2abc" },
  };
}
