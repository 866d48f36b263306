// The CLI commands other than `serve` and `demo`: check, providers, models, route. Each returns its exit code:
// 0 ok, 1 something is not working (a provider failed its probe), 2 config or usage error.
import { join, resolve } from "node:path";
import { ConfigError } from "../config/config-error.ts";
import { type Env, loadEnv } from "../config/env.ts";
import { DEFAULT_CONFIG_PATH, type LoadedConfig, loadConfigFile } from "../config/load.ts";
import { redactedUrl } from "../config/provider-secrets.ts";
import { locatedText, skippedProviderWarning } from "../config/resolve-providers.ts";
import { InvalidRequestError } from "../errors/gateway-error.ts";
import { redactSecrets } from "../errors/redact.ts";
import { reportProcessFaultsWith } from "../observability/process-faults.ts";
import { explainedPathOf, SERVED_KINDS } from "../pipeline/endpoints.ts";
import { GatewayRuntime, type GatewaySnapshot } from "../pipeline/gateway-runtime.ts";
import { configSecrets } from "../pipeline/logged-secrets.ts";
import { buildCatalog, metadataProviderName } from "../providers/catalog.ts";
import { explainRoute } from "../router/explain-route.ts";
import { type ExplainedNeedName, explainedNeeds, explainedParameters } from "../router/request-features.ts";
import { profileModel, type ScoringSources } from "../scoring/model-profile.ts";
import { loadScoringSources, scoringSettings } from "../scoring/scoring-sources.ts";
import { EXIT_NOT_OK, EXIT_OK, EXIT_USAGE } from "./exit-codes.ts";
import { chooseConfig } from "./gateway-config.ts";
import { noProviderMessage, noProviderProblem } from "./no-provider.ts";
import { type Output, paint, redactingOutput, table } from "./output.ts";
import type { ProbeStatus } from "./provider-probe.ts";
import { writeRecognisedPresets } from "./recognised-presets.ts";
import { writeRouteTable } from "./route-output.ts";

export interface CommandOptions {
  readonly configPath: string | undefined;
  readonly isJson: boolean;
  readonly output: Output;
  readonly cwd?: string;
}

export type ConfigLoader = (path: string, env: Env) => LoadedConfig;

let configLoader: ConfigLoader = (path, env) => loadConfigFile(path, { env });

/** Lets the composition root plug in preset resolution (and anything else) once for every command. */
export function setConfigLoader(loader: ConfigLoader): void {
  configLoader = loader;
}

interface Loaded {
  readonly path: string;
  readonly loaded: LoadedConfig;
  readonly sources: ScoringSources;
}

async function load(options: CommandOptions): Promise<Loaded | number> {
  const cwd = options.cwd ?? process.cwd();
  const env = loadEnv(cwd);
  // The same choice as the loader's (an empty LLM_GATEWAY_CONFIG is unset): the path shown is the one read.
  const choice = chooseConfig({ explicitPath: options.configPath, env, cwd });
  const path = choice.kind === "file" ? choice.path : resolve(cwd, DEFAULT_CONFIG_PATH);
  try {
    const loaded = configLoader(path, env);
    // The `scoring:` section and the adjustments file are checked here too: `serve` would stop on them.
    const sources = loadScoringSources(scoringSettings(loaded.config));
    // Every command stops where `serve` would (exit 2), with its message: no provider means nothing to show.
    if (loaded.config.providers.length === 0) return noProviderEnabled(options, path, loaded);
    return { path, loaded, sources };
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    if (options.isJson) {
      writeJson(options.output, { ok: false, config: path, problems: error.issues });
    } else {
      options.output.error(
        `${paint(options.output, "red", "Config error")} (${error.issues.length} problem${error.issues.length === 1 ? "" : "s"}):\n${error.message}\n`,
      );
    }
    return EXIT_USAGE;
  }
}

/**
 * `check`: validate config and .env without starting; list enabled providers and missing keys. Exit 2 wherever
 * `serve` would stop with 2: a config problem, or no provider enabled (then with `serve`'s own message: `load`).
 */
export async function check(options: CommandOptions): Promise<number> {
  const result = await load(options);
  if (typeof result === "number") return result;
  const { config } = result.loaded;
  // With the rules a configured model's door cannot follow (provider-rules-by-kind.ts `withoutStreamedSpeech`), as `serve` logs
  // them; a discovered model's are known once its provider's list is read (`models`, `serve`).
  const warnings = [...result.loaded.warnings, ...buildCatalog(config.providers, new Map()).ruleWarnings];
  // Configured chat models no leaderboard row matches: their quality is only estimated (docs/scoring.md "Unknown models").
  const unmatched: string[] = [];
  for (const provider of config.providers) {
    for (const model of provider.models ?? []) {
      const profile = profileModel(result.sources, metadataProviderName(provider), model.id, {
        leaderboardName: model.leaderboardName,
      });
      if ((model.kind ?? profile.kind) === "chat" && profile.leaderboard.value === undefined) {
        unmatched.push(`${provider.name}/${model.publicName} (${model.id})`);
      }
    }
  }
  if (options.isJson) {
    writeJson(options.output, {
      ok: true,
      unmatched_models: unmatched,
      config: config.sourcePath === undefined ? null : result.path,
      ...(config.sourcePath === undefined ? { missing_config_file: result.path } : {}),
      providers: config.providers.map((provider) => ({
        name: provider.name,
        base_url: redactedUrl(provider.baseUrl),
        models: provider.models?.length ?? "discovered",
        preset: provider.presetOrigin ?? null,
      })),
      skipped: config.skippedProviders,
      meta_models: Object.keys(config.metaModels),
      warnings,
    });
    return EXIT_OK;
  }
  const { output } = options;
  if (config.sourcePath === undefined) {
    // The no-config mode: the default file is missing and the presets whose keys are set stand in for it.
    output.write(
      `${paint(output, "yellow", "No config file")}: ${result.path} does not exist; ` +
        "using every built-in preset whose key is set (docs/quickstart.md).\n\n",
    );
  } else {
    output.write(`${paint(output, "green", "Config OK")}: ${result.path}\n\n`);
  }
  output.write(
    table(
      ["provider", "status", "base url / why skipped", "models"],
      [
        ...config.providers.map((provider) => [
          provider.name,
          paint(output, "green", "enabled"),
          redactedUrl(provider.baseUrl),
          provider.models === undefined ? "discovered" : String(provider.models.length),
        ]),
        ...config.skippedProviders.map((skip) => [
          skip.name,
          paint(output, "yellow", "skipped"),
          `${skip.reason}${locatedText(skip)}`,
          "",
        ]),
      ],
    ),
  );
  writeRecognisedPresets(output, config.providers);
  if (Object.keys(config.metaModels).length > 0)
    output.write(`\nmeta models: ${Object.keys(config.metaModels).join(", ")}\n`);
  if (unmatched.length > 0) {
    output.write(
      `\nno leaderboard row matches these models (quality estimated from size, family and provider; set \`leaderboard_name\` to fix):\n  ${unmatched.join("\n  ")}\n`,
    );
  }
  // Skipped providers are in the table already; what is left (client keys left empty, ...) is said here.
  const skipWarnings = new Set(config.skippedProviders.map(skippedProviderWarning));
  const otherWarnings = warnings.filter((warning) => !skipWarnings.has(warning));
  if (otherWarnings.length > 0)
    output.write(`\n${paint(output, "yellow", "Warnings")}:\n  ${otherWarnings.join("\n  ")}\n`);
  return EXIT_OK;
}

/** Every provider skipped: `serve` refuses to start (exit 2), so every command fails the same way, with the same text. */
function noProviderEnabled(options: CommandOptions, path: string, loaded: LoadedConfig): number {
  const configPath = loaded.config.sourcePath === undefined ? undefined : path;
  const skipped = loaded.config.skippedProviders;
  if (!options.isJson) {
    const envFile = join(options.cwd ?? process.cwd(), ".env");
    const message = noProviderMessage(skipped, { configPath, envFile, isServe: false });
    options.output.error(`${paint(options.output, "red", "Config error")}: ${message}`);
    return EXIT_USAGE;
  }
  const message = noProviderProblem(skipped);
  const problems = [{ location: configPath ?? "environment", path: "providers", message }];
  writeJson(options.output, { ok: false, config: configPath ?? null, problems, skipped, warnings: loaded.warnings });
  return EXIT_USAGE;
}

/** `providers`: probe each configured key with a cheap GET /models. */
export async function providers(options: CommandOptions): Promise<number> {
  const result = await load(options);
  if (typeof result === "number") return result;
  const { config } = result.loaded;
  // A probe's detail may quote an upstream's or a socket's error text, which can echo the key it was sent: printed
  // through the same redaction as `models`, `route` and every log line.
  const secrets = configSecrets(config);
  const output = redactingOutput(options.output, (text) => redactSecrets(text, secrets));
  let done = 0;
  const showProgress = !options.isJson && process.stderr.isTTY === true;
  // Loaded for this command only: its HTTP client costs every other command ~80 ms of start.
  const { probeProviders } = await import("./provider-probe.ts");
  const bounds = { timeoutMs: config.discovery.timeoutMs, maxBytes: config.upstreamLimits.maxResponseBytes };
  const probes = await probeProviders(config.providers, bounds, () => {
    done++;
    if (showProgress) output.error(`\rprobing providers: ${done}/${config.providers.length}`);
  });
  // Spaces rather than an erase-line escape: NO_COLOR users get no escape codes at all.
  if (showProgress) output.error(`\r${" ".repeat(`probing providers: ${done}/${done}`.length)}\r`);
  probes.sort((a, b) => a.provider.localeCompare(b.provider));
  if (options.isJson) {
    // The same `preset` as `check --json` gives (the text output's "Recognised by URL" lines, as data).
    const presetOf = new Map(config.providers.map((provider) => [provider.name, provider.presetOrigin ?? null]));
    writeJson(output, {
      providers: probes.map((probe) => ({ ...probe, preset: presetOf.get(probe.provider) ?? null })),
      skipped: config.skippedProviders,
    });
  } else {
    const colour = (status: ProbeStatus) => (status === "ok" ? "green" : status === "rate-limited" ? "yellow" : "red");
    output.write(
      table(
        ["provider", "status", "time", "detail"],
        probes.map((item) => [
          item.provider,
          paint(output, colour(item.status), item.status),
          `${item.ms} ms`,
          item.detail,
        ]),
      ),
    );
    for (const skipped of config.skippedProviders)
      output.write(`${paint(output, "dim", `${skipped.name}${locatedText(skipped)}: ${skipped.reason}`)}\n`);
    writeRecognisedPresets(output, config.providers);
  }
  return probes.every((item) => item.status === "ok" || item.status === "rate-limited") ? EXIT_OK : EXIT_NOT_OK;
}

/** `models`: the merged catalog with score terms. */
export async function models(options: CommandOptions): Promise<number> {
  const result = await load(options);
  if (typeof result === "number") return result;
  const runtime = await GatewayRuntime.create({
    ...result.loaded.config,
    state: { ...result.loaded.config.state, path: ":memory:" },
  });
  // Model ids and warnings come from upstreams' GET /models lists, which may echo what they were sent (a key in an
  // id, in an error text): printed through the same redaction as `route` and every log line.
  const output = redactingOutput(options.output, runtime.secrets.redactor);
  reportProcessFaultsWith({ redact: runtime.secrets.redactor });
  try {
    writeCatalogWarnings(output, runtime.snapshot);
    const { catalog, profiles } = runtime.snapshot;
    const rows = catalog.deployments.map((deployment) => {
      const breakdown = runtime.explainScore(deployment);
      const profile = profiles[deployment.index];
      return {
        model: deployment.model.publicName,
        provider: deployment.provider.settings.name,
        upstream_id: deployment.model.id,
        kind: deployment.kind,
        context: deployment.contextTokens ?? null,
        params_b: profile?.params?.valueB ?? null,
        score: round(runtime.scoreOf(deployment)),
        leaderboard:
          breakdown === undefined || breakdown.terms.leaderboard.isNeutral
            ? null
            : round(breakdown.terms.leaderboard.normalised),
        leaderboard_rows: (profile?.leaderboard.matches ?? []).map((match) => `${match.board}:${match.row}`),
      };
    });
    rows.sort((a, b) => a.model.localeCompare(b.model) || b.score - a.score);
    if (options.isJson) {
      writeJson(output, { models: rows });
    } else {
      output.write(
        table(
          ["model", "provider", "upstream id", "kind", "context", "params", "quality", "score"],
          rows.map((row) => [
            row.model,
            row.provider,
            row.upstream_id,
            row.kind,
            row.context === null ? "?" : String(row.context),
            row.params_b === null ? "?" : `${row.params_b}B`,
            row.leaderboard === null ? "unmatched" : String(row.leaderboard),
            String(row.score),
          ]),
        ),
      );
    }
    return EXIT_OK;
  } finally {
    await runtime.close();
  }
}

/**
 * The route of a request of the kind `model` serves: chat first, then the other endpoints' kinds, as `/v1/models`
 * lists a name. A rerank, speech, image, embedding or transcription model was explained as a chat request, and the
 * command failed with "cannot serve this chat endpoint". Any other refusal (and the chat one, when no kind serves
 * the name) is the chat request's.
 */
function explainServedKind(
  runtime: GatewayRuntime,
  model: string,
  options: Parameters<typeof explainRoute>[2],
): ReturnType<typeof explainRoute> {
  try {
    return explainRoute(runtime, model, { ...options, ...pathOption("chat") });
  } catch (error) {
    if (!(error instanceof InvalidRequestError && error.code === "model_not_supported")) throw error;
    for (const kind of SERVED_KINDS) {
      if (kind === "chat") continue;
      try {
        return explainRoute(runtime, model, { ...options, kind, ...pathOption(kind) });
      } catch {
        // Not this kind either.
      }
    }
    throw error;
  }
}

/** The kind's first door's upstream path: a provider without that route is shown skipped (served_paths, learned). */
function pathOption(kind: (typeof SERVED_KINDS)[number]): { endpointPath?: string } {
  const endpointPath = explainedPathOf(kind);
  return endpointPath === undefined ? {} : { endpointPath };
}

/**
 * `route MODEL [--explain] [--parameters LIST] [--tools] [--vision] [--json-schema]`: the candidates a request would
 * get now, best first, and why others are skipped. The options are `GET /v1/gateway/route`'s `parameters=seed,stop:6`,
 * `tools=true`, `vision=true` and `json_schema=true`, read by the same parsers: a `--parameters` value the route
 * answers with a 400 is a usage error here, before any config is read.
 */
export async function route(
  options: CommandOptions & {
    model: string | undefined;
    isExplain: boolean;
    parameters?: string | undefined;
    needs?: Readonly<Partial<Record<ExplainedNeedName, boolean | undefined>>>;
  },
): Promise<number> {
  if (options.model === undefined) {
    options.output.error("route: give a model name, e.g. `llm-gateway route best --explain`\n");
    return EXIT_USAGE;
  }
  let parameters: ReturnType<typeof explainedParameters> | undefined;
  try {
    parameters = options.parameters === undefined ? undefined : explainedParameters(options.parameters);
  } catch (error) {
    if (!(error instanceof InvalidRequestError)) throw error;
    options.output.error(`route: ${error.message}\n`);
    return EXIT_USAGE;
  }
  const result = await load(options);
  if (typeof result === "number") return result;
  // The books a request would meet, read from the state file without creating, locking, writing or moving it:
  // a gateway may be serving from it (and checks that lock to tell whether another gateway shares the file).
  const runtime = await GatewayRuntime.create(result.loaded.config, { isStateReadOnly: true });
  const output = redactingOutput(options.output, runtime.secrets.redactor);
  reportProcessFaultsWith({ redact: runtime.secrets.redactor });
  try {
    writeCatalogWarnings(output, runtime.snapshot);
    let explanation: ReturnType<typeof explainRoute>;
    try {
      const needs = explainedNeeds((name) => options.needs?.[name] === true);
      explanation = explainServedKind(runtime, options.model, { ...needs, ...parameters });
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      if (options.isJson) writeJson(output, { error: message });
      else output.error(`${message}\n`);
      return EXIT_NOT_OK;
    }
    if (options.isJson) {
      writeJson(output, explanation);
      return EXIT_OK;
    }
    writeRouteTable(output, explanation, options.isExplain, result.loaded.config.routing.paid);
    return EXIT_OK;
  } finally {
    await runtime.close();
  }
}

/**
 * What `serve` logs while it builds the catalog: a provider whose GET /models failed, a meta model nothing serves.
 * Without it, `models` showed an empty table (exit 0) and `route best` said `best` does not exist, with no reason.
 * On stderr, so `--json` output stays one document.
 */
function writeCatalogWarnings(output: Output, snapshot: GatewaySnapshot): void {
  const warnings = [
    ...[...snapshot.discovery.values()].flatMap((entry) => (entry.warning === undefined ? [] : [entry.warning])),
    ...snapshot.catalog.ruleWarnings,
    ...snapshot.metaModelWarnings,
  ];
  if (warnings.length > 0) output.error(`${paint(output, "yellow", "Warnings")}:\n  ${warnings.join("\n  ")}\n\n`);
}

function writeJson(output: Output, value: unknown): void {
  output.write(`${JSON.stringify(value, null, 2)}\n`);
}

function round(value: number): number {
  return Math.round(value * 100) / 100;
}
