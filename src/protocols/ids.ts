// Ids for the objects the adapters create (`resp_...`, `msg_...`, `fc_...`). Injected, so fixtures are exact.
import { randomBytes } from "node:crypto";

/** Makes a fresh id with the given prefix (`resp_`, `msg_`, ...). */
export type IdSource = (prefix: string) => string;

export const randomIds: IdSource = (prefix) => `${prefix}${randomBytes(16).toString("hex")}`;

/** `prefix` + a counter per prefix (`msg_1`, `msg_2`, `fc_1`): for tests and recorded fixtures. */
export function sequentialIds(): IdSource {
  const counters = new Map<string, number>();
  return (prefix) => {
    const next = (counters.get(prefix) ?? 0) + 1;
    counters.set(prefix, next);
    return `${prefix}${next}`;
  };
}
