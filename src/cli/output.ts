// Terminal output for the CLI: aligned tables, colour only on a TTY and never with NO_COLOR set.

export interface Output {
  readonly isColor: boolean;
  write(text: string): void;
  error(text: string): void;
}

/**
 * `output` with every text passed through `redact` first (GatewayRuntime.secrets): for commands that print what the
 * books learned from upstreams (`route` reads the cooldown and refusal reasons a serving gateway stored), whoever
 * wrote them. A redacted table cell may leave its column a little narrower than the others: that beats a key.
 */
export function redactingOutput(output: Output, redact: (text: string) => string): Output {
  return {
    isColor: output.isColor,
    write: (text) => output.write(redact(text)),
    error: (text) => output.error(redact(text)),
  };
}

export function terminalOutput(): Output {
  const isStdoutOpen = whileReaderListens(process.stdout);
  const isStderrOpen = whileReaderListens(process.stderr);
  const isColorAllowed = (process.env.NO_COLOR ?? "") === "" && process.env.TERM !== "dumb";
  const isColor = isColorAllowed && process.stdout.isTTY === true;
  // Messages are painted for stdout's terminal; stderr may be redirected on its own (`2> log`).
  const isErrorColor = isColorAllowed && process.stderr.isTTY === true;
  return {
    isColor,
    write: (text) => {
      if (isStdoutOpen()) process.stdout.write(text);
    },
    error: (text) => {
      if (isStderrOpen()) process.stderr.write(isErrorColor ? text : text.replace(ANSI_COLOUR, ""));
    },
  };
}

/**
 * A reader that went away (`check | head -2`): the rest of the output has nowhere to go, and Node reports that as
 * an 'error' event (EPIPE) that, unhandled, ends the process with a stack. The command finishes quietly instead,
 * writing nothing more to that stream. Any other write error still ends the process, as before.
 */
function whileReaderListens(stream: NodeJS.WriteStream): () => boolean {
  let isOpen = true;
  stream.on("error", (error: NodeJS.ErrnoException) => {
    if (error.code !== "EPIPE") throw error;
    isOpen = false;
  });
  return () => isOpen && !stream.destroyed;
}

const CODES = { red: 31, green: 32, yellow: 33, dim: 2, bold: 1 } as const;

export function paint(output: Output, colour: keyof typeof CODES, text: string): string {
  return output.isColor ? `\u001b[${CODES[colour]}m${text}\u001b[0m` : text;
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: matching the ESC of ANSI colour codes is the point.
const ANSI_COLOUR = /\u001b\[[0-9;]*m/g;

/** Left-aligned columns separated by two spaces; widths ignore colour codes. */
export function table(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const visible = (text: string) => text.replace(ANSI_COLOUR, "").length;
  const widths = headers.map((header, column) =>
    Math.max(visible(header), ...rows.map((row) => visible(row[column] ?? ""))),
  );
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, column) =>
        column === cells.length - 1 ? cell : cell + " ".repeat((widths[column] ?? 0) - visible(cell)),
      )
      .join("  ")
      .trimEnd();
  const lines = [line(headers), line(widths.map((width) => "-".repeat(width))), ...rows.map(line)];
  return `${lines.join("\n")}\n`;
}
