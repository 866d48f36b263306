// What a transcription's upload costs a candidate's `ash`/`asd` budgets (docs/limits.md "Audio seconds"): only an
// upload's path asks; a chat request never does.
import { billedAudioSeconds } from "../limits/audio-duration.ts";
import type { AudioCharge } from "../limits/audio-reservation.ts";
import type { BudgetScope } from "../limits/budgets.ts";
import type { Deployment } from "../providers/catalog.ts";

/** The charge of an upload of `audioSeconds` on `deployment`; undefined without an upload or without such budgets. */
export function audioChargeOf(
  /** Each deployment's audio-seconds scopes, by its index (the snapshot's). */
  { audioScopes }: { readonly audioScopes: readonly (readonly BudgetScope[] | undefined)[] },
  deployment: Deployment,
  audioSeconds: number | undefined,
): AudioCharge | undefined {
  if (audioSeconds === undefined) return undefined;
  const scopes = audioScopes[deployment.index];
  if (scopes === undefined || scopes.length === 0) return undefined;
  return { scopes, seconds: billedAudioSeconds(audioSeconds, deployment.provider.settings.minBilledAudioSeconds) };
}
