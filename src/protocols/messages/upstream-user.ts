// `metadata.user_id` as chat's `user`, within what OpenAI-compatible providers take.
import { createHash } from "node:crypto";
import { parseJsonRecord } from "../../is-record.ts";

/**
 * OpenAI refuses a longer `user` with a 400 ("Invalid 'user': string too long. Expected a string with maximum length
 * 64", `string_above_max_length`), as GitHub Models does; a SHA-256 in hex is exactly this long.
 */
export const UPSTREAM_USER_MAX_CHARS = 64;

/**
 * The `user` sent upstream for an Anthropic `metadata.user_id`: as it came when it fits, else the SHA-256 (hex) of it,
 * so one client's requests still share one opaque id (Anthropic asks for a uuid or a hash there, never a name). Claude
 * Code (2.1.78 and later) sends a JSON object of about 150 characters, `{"device_id","account_uuid","session_id"}`:
 * its `session_id` changes with each session, so it is left out of the hash, which keeps one id per user and device.
 */
export function upstreamUser(userId: string): string {
  if (userId.length <= UPSTREAM_USER_MAX_CHARS) return userId;
  const structured = parseJsonRecord(userId);
  let hashed = userId;
  if (structured !== undefined && "session_id" in structured) {
    const { session_id: _perSession, ...stable } = structured;
    // An id of nothing but a session is hashed whole: every such client would otherwise be one user, `{}`, upstream.
    if (Object.keys(stable).length > 0) hashed = JSON.stringify(stable);
  }
  return createHash("sha256").update(hashed).digest("hex");
}
