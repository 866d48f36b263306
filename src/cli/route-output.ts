// `llm-gateway route`'s table for people: the candidates best first (with `--explain`, every score term), what the
// config's body rules change, what is waited for, what is skipped and why. `--json` prints the explanation itself.
import type { RoutingSettings } from "../config/types.ts";
import type { ExplainedTerm, RouteExplanation } from "../router/explain-route.ts";
import { type Output, paint, table } from "./output.ts";

export function writeRouteTable(
  output: Output,
  explanation: RouteExplanation,
  isExplain: boolean,
  paid: RoutingSettings["paid"],
): void {
  // A model of another endpoint is explained as that endpoint's request (commands.ts): said, as chat is assumed.
  const kind = explanation.kind === "chat" ? "" : `a ${explanation.kind} request, `;
  output.write(`Route for ${paint(output, "bold", explanation.model)} (${kind}strategy ${explanation.strategy}):\n\n`);
  // With free and paid candidates mixed, `routing.paid: last_resort` puts every paid one after the free ones
  // whatever its score (docs/routing.md): said in the table, or a higher score listed lower looks like a bug.
  // A provider written without a preset or `cost` counts as paid, as the Python project's entries do.
  const isMixed = new Set(explanation.candidates.map((candidate) => candidate.cost)).size > 1;
  const headers = isExplain
    ? ["#", "provider", "model", "score", "base", "prio", "board", "params", "ctx", "adjust", "health"]
    : ["#", "provider", "model", "score"];
  output.write(
    table(
      headers,
      explanation.candidates.map((candidate) => {
        const notes = [
          ...(isMixed && candidate.cost === "paid" ? ["paid"] : []),
          ...(candidate.last_resort ? ["last resort"] : []),
        ];
        const score = notes.length > 0 ? `${candidate.score} (${notes.join(", ")})` : String(candidate.score);
        const base = [String(candidate.rank), candidate.provider, candidate.upstream_id, score];
        const terms = candidate.terms;
        if (!isExplain || terms === null) return base;
        const show = (term: ExplainedTerm & { is_estimated?: boolean }) =>
          `${term.weighted}${term.is_neutral ? "*" : term.is_estimated === true ? "~" : ""}`;
        return [
          ...base,
          String(terms.base_priority),
          String(terms.priority),
          terms.leaderboard.board === null
            ? show(terms.leaderboard)
            : `${show(terms.leaderboard)} (${terms.leaderboard.board})`,
          show(terms.params),
          show(terms.context),
          String(terms.adjustment.weighted),
          terms.health_penalty.is_cold
            ? "cold"
            : `-${terms.health_penalty.weighted}${terms.health_penalty.probe ? " (probe)" : ""}`,
        ];
      }),
    ),
  );
  if (isExplain) {
    output.write(
      paint(
        output,
        "dim",
        "score = base × (prio + board + params + ctx + adjust) − health; * neutral value: unknown to that source; ~ estimated\n",
      ),
    );
    for (const candidate of explanation.candidates) {
      const estimatedFrom = candidate.terms?.leaderboard.estimated_from;
      if (estimatedFrom === null || estimatedFrom === undefined) continue;
      output.write(
        `~ ${candidate.provider}/${candidate.upstream_id} board estimated from ${estimatedFrom.join("; ")}\n`,
      );
    }
    // What the config changes in a candidate's body (names only): a request answered differently by one
    // provider than by another is explained here.
    for (const candidate of explanation.candidates) {
      const rules = candidate.body_rules;
      if (rules === null) continue;
      const parts = [
        ...(rules.drop.length > 0 ? [`drops ${rules.drop.join(", ")}`] : []),
        ...(rules.defaults.length > 0 ? [`fills in ${rules.defaults.join(", ")}`] : []),
        ...(rules.override.length > 0 ? [`sets ${rules.override.join(", ")}`] : []),
      ];
      output.write(`body: ${candidate.provider}/${candidate.upstream_id} ${parts.join("; ")}\n`);
    }
    // A candidate ranked last for a feature it refused (`--parameters`, `--tools`, `--vision`, `--json-schema`): why it
    // is last whatever its score, worded as the request record words the lesson.
    for (const candidate of explanation.candidates) {
      const refused = candidate.refused_feature;
      if (refused === null) continue;
      const size = refused.min_entries === null ? "" : ` (${refused.min_entries} entries or more)`;
      output.write(
        `refused: ${candidate.provider}/${candidate.upstream_id} ${refused.feature}${size}: ${refused.reason} (until ${refused.until})\n`,
      );
    }
    // A window smaller than the listed one, stated by the candidate's own refusal: what its context fit reads.
    for (const candidate of explanation.candidates) {
      const learned = candidate.learned_context;
      if (learned === null) continue;
      output.write(
        `context: ${candidate.provider}/${candidate.upstream_id} ${learned.tokens} tokens, not ${candidate.context_tokens ?? "unknown"}: ${learned.reason} (learned ${learned.learned_at})\n`,
      );
    }
    // The role order a candidate's messages are rewritten into: why a strict provider got them otherwise than sent.
    for (const candidate of explanation.candidates) {
      const ordering = candidate.message_order;
      if (ordering === null) continue;
      const learned = ordering.learned_from === null ? "" : ` (learned from: ${ordering.learned_from})`;
      output.write(
        `messages: ${candidate.provider}/${candidate.upstream_id} ${ordering.order} (${ordering.source.replace("_", " ")}), prefix ${ordering.prefix}${learned}\n`,
      );
    }
  }
  if (isMixed && paid === "last_resort") {
    output.write(
      "paid: tried after every free candidate (routing.paid: last_resort); a provider without a preset or `cost: free` counts as paid\n",
    );
  }
  if (explanation.wait_for !== null) {
    output.write(
      `\nwaits for ${explanation.wait_for.provider}/${explanation.wait_for.model} until ${explanation.wait_for.until}\n`,
    );
  }
  if (explanation.skipped.length > 0) {
    output.write("\nskipped:\n");
    output.write(
      table(
        ["provider", "model", "why", "until"],
        explanation.skipped.map((skip) => [
          skip.provider,
          skip.model,
          `${skip.cause}: ${skip.reason}`,
          skip.until ?? "",
        ]),
      ),
    );
  }
  if (explanation.unknown_names.length > 0) output.write(`\nunknown names: ${explanation.unknown_names.join(", ")}\n`);
}
