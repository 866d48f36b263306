// A small parser for the Prometheus text exposition format (0.0.4), strict enough to catch a malformed line:
// tests read /metrics through it instead of matching substrings.

export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

export interface Exposition {
  readonly samples: readonly Sample[];
  /** `# TYPE` per metric family. */
  readonly types: ReadonlyMap<string, string>;
  readonly help: ReadonlyMap<string, string>;
}

const SAMPLE_LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+-?\d+)?$/;
const LABEL = /\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(,|$)/y;

export function parsePrometheusText(text: string): Exposition {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  const help = new Map<string, string>();
  for (const [index, line] of text.split("\n").entries()) {
    if (line.trim() === "") continue;
    if (line.startsWith("# TYPE ")) {
      const [name, type] = line.slice(7).split(" ");
      if (name === undefined || type === undefined) throw new Error(`line ${index + 1}: bad TYPE: ${line}`);
      types.set(name, type);
      continue;
    }
    if (line.startsWith("# HELP ")) {
      const rest = line.slice(7);
      const space = rest.indexOf(" ");
      help.set(rest.slice(0, space), rest.slice(space + 1));
      continue;
    }
    if (line.startsWith("#")) continue;
    const match = SAMPLE_LINE.exec(line);
    if (match === null) throw new Error(`line ${index + 1}: not a sample: ${line}`);
    const labels: Record<string, string> = {};
    const labelText = match[3] ?? "";
    LABEL.lastIndex = 0;
    while (LABEL.lastIndex < labelText.length) {
      const start = LABEL.lastIndex;
      const label = LABEL.exec(labelText);
      if (label === null) throw new Error(`line ${index + 1}: bad labels at ${start}: ${line}`);
      labels[label[1] as string] = (label[2] as string).replace(/\\(.)/g, (_all, char: string) =>
        char === "n" ? "\n" : char,
      );
    }
    const rawValue = match[4] as string;
    // Like Go's ParseFloat (Prometheus' own parser): Inf and NaN in any case; prom-client writes `Nan`.
    const lower = rawValue.toLowerCase();
    const value = lower === "+inf" ? Infinity : lower === "-inf" ? -Infinity : Number(rawValue);
    if (Number.isNaN(value) && lower !== "nan") throw new Error(`line ${index + 1}: bad value: ${line}`);
    samples.push({ name: match[1] as string, labels, value });
  }
  return { samples, types, help };
}

/** Sum of the samples named `name` whose labels include `labels`. */
export function sumOf(exposition: Exposition, name: string, labels: Readonly<Record<string, string>> = {}): number {
  return exposition.samples
    .filter(
      (sample) => sample.name === name && Object.entries(labels).every(([key, value]) => sample.labels[key] === value),
    )
    .reduce((total, sample) => total + sample.value, 0);
}

export function samplesOf(exposition: Exposition, name: string): readonly Sample[] {
  return exposition.samples.filter((sample) => sample.name === name);
}
