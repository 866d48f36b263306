// Counters and histograms for the per-request metrics: plain numbers per label set, handed to prom-client's
// registry only when it is scraped (each object here is a metric the registry can render). prom-client's own
// `inc`/`observe` validate the label object and hash it (sorting its keys) on every call; a request updates eight
// of them, which cost ~10 µs per request in the gateway's profile. Here an update builds one key string and adds
// to a number. Label values are the caller's job: only known names and fixed vocabularies reach these objects.
import type { Metric, Registry } from "prom-client";

/** What prom-client's `Registry` reads from a registered metric (its `get()` shape). */
export interface MetricSample {
  readonly labels: Record<string, string | number>;
  readonly value: number;
  readonly metricName?: string;
}

export interface MetricData {
  readonly name: string;
  readonly help: string;
  readonly type: "counter" | "gauge" | "histogram";
  readonly values: MetricSample[];
  readonly aggregator: "sum";
}

/**
 * Adds a metric of this file to a prom-client registry. The registry only reads `name`, `type`, `help`, `get()`
 * and `reset()`; its type names prom-client's own classes, hence the one cast.
 */
export function registerIn(registry: Registry, metric: RegistryMetric): void {
  registry.registerMetric(metric as unknown as Metric);
}

/** A metric as the registry reads it. */
export interface RegistryMetric {
  readonly name: string;
  get(): Promise<MetricData>;
  reset(): void;
}

/** One level of the label-value tree: the next label's values, or the entries at the last level. */
type LabelTree<Entry> = Map<string, LabelTree<Entry> | Entry>;

abstract class LabeledMetric<Entry> {
  readonly name: string;
  readonly help: string;
  readonly aggregator = "sum";
  readonly labelNames: readonly string[];
  /** Every entry, in creation order (what a scrape reads). */
  protected entries: Entry[] = [];
  /**
   * The entries by label values, one level per label. A record's values are the config's own strings, whose hashes
   * V8 keeps with them: a lookup per level costs less than joining the values into one key (a new string to build
   * and hash on every update; 3.4 -> 1.9 µs per record for the eleven updates a record makes, bench/record-subscribers.ts).
   */
  #tree: LabelTree<Entry> = new Map();

  constructor(name: string, help: string, labelNames: readonly string[]) {
    this.name = name;
    this.help = help;
    this.labelNames = labelNames;
  }

  reset(): void {
    this.entries = [];
    this.#tree = new Map();
  }

  protected entryFor(values: readonly string[], create: (labels: Record<string, string>) => Entry): Entry {
    let level = this.#tree;
    const last = this.labelNames.length - 1;
    for (let index = 0; index < last; index++) {
      const value = values[index] ?? "";
      let next = level.get(value) as LabelTree<Entry> | undefined;
      if (next === undefined) {
        next = new Map();
        level.set(value, next);
      }
      level = next;
    }
    const lastValue = values[last] ?? "";
    let entry = level.get(lastValue) as Entry | undefined;
    if (entry === undefined) {
      const labels: Record<string, string> = {};
      this.labelNames.forEach((labelName, index) => {
        labels[labelName] = values[index] ?? "";
      });
      entry = create(labels);
      level.set(lastValue, entry);
      this.entries.push(entry);
    }
    return entry;
  }
}

interface CounterEntry {
  readonly labels: Record<string, string>;
  value: number;
}

/** Made once (the histogram's factory once per metric): a closure per `inc` would be one allocation more per call. */
function newCounterEntry(labels: Record<string, string>): CounterEntry {
  return { labels, value: 0 };
}

export class LabeledCounter extends LabeledMetric<CounterEntry> {
  readonly type = "counter";

  /** `values` in the order of `labelNames`. */
  inc(values: readonly string[], by = 1): void {
    this.entryFor(values, newCounterEntry).value += by;
  }

  async get(): Promise<MetricData> {
    const values = this.entries.map((entry) => ({ labels: entry.labels, value: entry.value }));
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }
}

interface HistogramEntry {
  readonly labels: Record<string, string>;
  /** Observations per bucket (not cumulative), one per upper bound. */
  readonly counts: Float64Array;
  sum: number;
  count: number;
}

export class LabeledHistogram extends LabeledMetric<HistogramEntry> {
  readonly type = "histogram";
  readonly #upperBounds: readonly number[];

  constructor(name: string, help: string, labelNames: readonly string[], upperBounds: readonly number[]) {
    super(name, help, labelNames);
    this.#upperBounds = [...upperBounds].sort((a, b) => a - b);
  }

  readonly #newEntry = (labels: Record<string, string>): HistogramEntry => ({
    labels,
    counts: new Float64Array(this.#upperBounds.length),
    sum: 0,
    count: 0,
  });

  observe(values: readonly string[], observed: number): void {
    const bounds = this.#upperBounds;
    const entry = this.entryFor(values, this.#newEntry);
    entry.sum += observed;
    entry.count += 1;
    // Prometheus buckets are `le` (less or equal); beyond the last bound only +Inf (the count) holds it.
    for (let index = 0; index < bounds.length; index++) {
      if (observed <= (bounds[index] as number)) {
        entry.counts[index] = (entry.counts[index] ?? 0) + 1;
        break;
      }
    }
  }

  async get(): Promise<MetricData> {
    const bucketName = `${this.name}_bucket`;
    const values: MetricSample[] = [];
    for (const entry of this.entries) {
      let cumulative = 0;
      this.#upperBounds.forEach((bound, index) => {
        cumulative += entry.counts[index] ?? 0;
        values.push({ labels: { ...entry.labels, le: bound }, value: cumulative, metricName: bucketName });
      });
      values.push({ labels: { ...entry.labels, le: "+Inf" }, value: entry.count, metricName: bucketName });
      values.push({ labels: entry.labels, value: entry.sum, metricName: `${this.name}_sum` });
      values.push({ labels: entry.labels, value: entry.count, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }
}

/** A value read from live state when scraped (gauges, and counters kept elsewhere such as config reloads). */
export class LiveMetric implements RegistryMetric {
  readonly name: string;
  readonly help: string;
  readonly type: "counter" | "gauge";
  readonly aggregator = "sum";
  readonly #read: () => Iterable<readonly [Record<string, string>, number]>;

  constructor(
    name: string,
    help: string,
    type: "counter" | "gauge",
    read: () => Iterable<readonly [Record<string, string>, number]>,
  ) {
    this.name = name;
    this.help = help;
    this.type = type;
    this.#read = read;
  }

  reset(): void {}

  async get(): Promise<MetricData> {
    const values = [...this.#read()].map(([labels, value]) => ({ labels, value }));
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }
}
