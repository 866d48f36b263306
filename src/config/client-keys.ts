// `server.api_keys` and `server.admin_keys` entries that came out empty (an unset `${VAR}`). One such entry is
// dropped with a warning; a list left with no key at all is named loudly, because for client keys it means
// authentication is off although the file asked for it.
import { isRecord } from "../is-record.ts";
import type { ConfigIssue } from "./config-error.ts";
import { type Env, notSetPhrase, type UnsetVariablesAt } from "./env.ts";
import type { Locate } from "./yaml-source.ts";

/** $ALLOWED_BEARER_TOKENS, comma-separated: client keys added to `server.api_keys`. */
export function allowedBearerTokens(env: Env): string[] {
  return (env.ALLOWED_BEARER_TOKENS ?? "")
    .split(",")
    .map((token) => token.trim())
    .filter((token) => token !== "");
}

interface KeyProblems {
  readonly issues: ConfigIssue[];
  readonly warnings: string[];
}

/**
 * Read from the config as interpolated, before the schema drops the empty entries. Every client key empty is an
 * error rather than a warning: the gateway would otherwise answer anyone (fail open), and a reload that loses
 * the variable would turn authentication off under a running gateway; refused, the old config keeps serving.
 * Every admin key empty only warns: the admin routes then refuse everyone (fail closed).
 */
export function serverKeyProblems(
  input: unknown,
  env: Env,
  unsetVariablesAt: UnsetVariablesAt,
  locate: Locate,
): KeyProblems {
  const server = (input as { server?: unknown } | null)?.server;
  const problems: KeyProblems = { issues: [], warnings: [] };
  const keyLists = [
    { key: "api_keys", added: allowedBearerTokens(env).length, whenNone: "client authentication would be off" },
    { key: "admin_keys", added: 0, whenNone: "the admin routes are off" },
  ] as const;
  for (const { key, added, whenNone } of keyLists) {
    const entries = (server as Record<string, unknown> | null | undefined)?.[key];
    if (!Array.isArray(entries)) continue;
    // A client key may be written `{ key, name }` (schema.ts): its `key` is what may come out empty.
    const pathOf = (index: number) =>
      isRecord(entries[index]) ? ["server", key, index, "key"] : ["server", key, index];
    const emptyIndexes = entries.flatMap((entry, index) =>
      entry === "" || (isRecord(entry) && entry.key === "") ? [index] : [],
    );
    if (emptyIndexes.length === 0) continue;
    const why = (indexes: readonly number[]) => {
      const unset = [...new Set(indexes.flatMap((index) => unsetVariablesAt(pathOf(index))))];
      const isWrittenEmpty = indexes.some((index) => unsetVariablesAt(pathOf(index)).length === 0);
      return [unset.length > 0 ? notSetPhrase(unset) : "", isWrittenEmpty ? "written empty" : ""]
        .filter((reason) => reason !== "")
        .join("; ");
    };
    if (emptyIndexes.length === entries.length && added === 0) {
      const message = `every entry is empty (${why(emptyIndexes)}), so ${whenNone}: set the variable, or remove server.${key}`;
      if (key === "api_keys") {
        problems.issues.push({
          location: locate(["server", key]),
          path: `server.${key}`,
          message: `${message} (ALLOWED_BEARER_TOKENS adds client keys from the environment where they are optional)`,
        });
      } else {
        problems.warnings.push(`${locate(["server", key])} server.${key}: ${message}`);
      }
      continue;
    }
    for (const index of emptyIndexes) {
      problems.warnings.push(
        `${locate(["server", key, index])} server.${key}.${index}: empty (${why([index])}); dropped, the other keys apply`,
      );
    }
  }
  return problems;
}
