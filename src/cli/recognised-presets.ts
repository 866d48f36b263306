// What `check` and `providers` say about entries that got a preset by their base_url (docs/providers.md
// "Recognised by the base URL").
import { recognisedPresetText } from "../config/resolve-providers.ts";
import type { ProviderSettings } from "../config/types.ts";
import { type Output, paint } from "./output.ts";

/**
 * Entries written without `preset:` that get a preset's knowledge because their base_url is its (the Python
 * project's files): said, since that changes what they did before (the preset's budgets, headers, free marking).
 */
export function writeRecognisedPresets(output: Output, providers: readonly ProviderSettings[]): void {
  const lines = providers.flatMap((provider) =>
    provider.presetOrigin?.by === "base_url"
      ? [`  ${recognisedPresetText(provider.name, provider.presetOrigin.preset)}`]
      : [],
  );
  if (lines.length === 0) return;
  output.write(
    `\n${paint(output, "bold", "Recognised by URL")} (the preset's limits, rate-limit headers and free models apply; \`preset: none\` on the entry turns it off; docs/providers.md):\n${lines.join("\n")}\n`,
  );
}
