// Log lines for a person at a terminal: pino writes JSON lines into this stream and it prints
// `12:04:05 INFO  message key=value ...`, coloured unless NO_COLOR is set, one line per request for `routed`.
// (pino-pretty is not a dependency; this is the little of it the gateway needs.)
import { Writable } from "node:stream";
import { parseJsonRecord } from "../is-record.ts";

const LEVELS: Readonly<Record<number, { name: string; colour: string }>> = {
  10: { name: "TRACE", colour: "90" },
  20: { name: "DEBUG", colour: "36" },
  30: { name: "INFO ", colour: "32" },
  40: { name: "WARN ", colour: "33" },
  50: { name: "ERROR", colour: "31" },
  60: { name: "FATAL", colour: "35" },
};

/**
 * Control characters (C0, DEL, C1) and the Unicode line separators. A client's model name, an upstream's error text
 * or a header value printed as it is could start a forged line of its own (`\n08:40:00 INFO ...`) or send the
 * terminal escape sequences; JSON lines escape them, so these must too.
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: the control characters are what is matched.
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g;

/** `text` with every control character written as an escape (`\n`, `\x1b`, `\u2028`), so it stays on its line. */
export function plain(text: string): string {
  return text.replace(CONTROL, (char) => {
    if (char === "\n") return "\\n";
    if (char === "\r") return "\\r";
    if (char === "\t") return "\\t";
    const code = char.charCodeAt(0);
    return code > 0xff ? `\\u${code.toString(16)}` : `\\x${code.toString(16).padStart(2, "0")}`;
  });
}

/** Fields every line has, or that are shown in the line's head instead. */
const HIDDEN = new Set(["level", "time", "pid", "hostname", "msg"]);

export function formatLogLine(line: string, isColoured: boolean): string {
  const entry = parseJsonRecord(line);
  if (entry === undefined) return plain(line);
  const paint = (code: string, text: string): string => (isColoured ? `\u001b[${code}m${text}\u001b[0m` : text);
  const level = LEVELS[typeof entry.level === "number" ? entry.level : 30] ?? { name: "INFO ", colour: "32" };
  const time = typeof entry.time === "number" ? new Date(entry.time).toTimeString().slice(0, 8) : "";
  const message = typeof entry.msg === "string" ? plain(entry.msg) : "";
  const head = `${paint("90", time)} ${paint(level.colour, level.name)} `;
  if (message === "routed") return head + routedLine(entry, paint);
  const fields = Object.entries(entry)
    .filter(([name]) => !HIDDEN.has(name))
    .map(
      ([name, value]) =>
        `${paint("90", `${plain(name)}=`)}${plain(typeof value === "string" ? value : String(JSON.stringify(value)))}`,
    );
  return head + [message, ...fields].join(" ");
}

/** `POST chat m -> alpha/m 200 42 ms  [alpha/m:rate_limited:429 beta/m:success:200]` */
function routedLine(entry: Record<string, unknown>, paint: (code: string, text: string) => string): string {
  const status = typeof entry.status === "number" ? entry.status : 0;
  const statusText = paint(status >= 500 ? "31" : status >= 400 ? "33" : "32", String(status));
  const attempts = Array.isArray(entry.attempts) ? entry.attempts.map((attempt) => plain(String(attempt))) : [];
  return [
    plain(String(entry.endpoint ?? "")),
    // A route no door serves names no model: its route instead (`conversations GET /v1/conversations/:id -> none`).
    plain(String(entry.route ?? entry.model ?? "")),
    "->",
    plain(String(entry.servedBy ?? "none")),
    statusText,
    `${plain(String(entry.ms ?? "?"))} ms`,
    attempts.length > 1 ? paint("90", `[${attempts.join(" ")}]`) : "",
    paint("90", plain(String(entry.reqId ?? ""))),
  ]
    .filter((part) => part !== "")
    .join(" ");
}

/** A stream for pino: complete JSON lines in, readable lines out to `target`. */
export function prettyLogStream(target: NodeJS.WritableStream, isColoured: boolean): Writable {
  let pending = "";
  return new Writable({
    write(chunk: Buffer | string, _encoding, done) {
      pending += chunk.toString();
      let output = "";
      for (let newline = pending.indexOf("\n"); newline >= 0; newline = pending.indexOf("\n")) {
        output += `${formatLogLine(pending.slice(0, newline), isColoured)}\n`;
        pending = pending.slice(newline + 1);
      }
      if (output === "") done();
      else target.write(output, () => done());
    },
  });
}

/** `log.format` and the terminal decide: pretty on a TTY for `auto`. */
export function isPrettyLog(format: "auto" | "pretty" | "json", isTty: boolean): boolean {
  return format === "pretty" || (format === "auto" && isTty);
}
