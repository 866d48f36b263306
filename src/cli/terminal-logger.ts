// The logger settings for a process a person may be watching: pretty lines on a terminal (coloured unless
// NO_COLOR is set), JSON lines otherwise or with `log.format: json`.
import type { GatewayConfig } from "../config/types.ts";
import { isPrettyLog, prettyLogStream } from "../observability/pretty-log.ts";

export function terminalLogger(config: GatewayConfig): { level: string; stream?: NodeJS.WritableStream } {
  const isTty = process.stdout.isTTY === true;
  if (!isPrettyLog(config.log.format, isTty)) return { level: config.server.logLevel };
  const noColor = process.env.NO_COLOR;
  const isColoured = isTty && (noColor === undefined || noColor === "");
  return { level: config.server.logLevel, stream: prettyLogStream(process.stdout, isColoured) };
}
