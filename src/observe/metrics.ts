/**
 * A small metrics registry: counters, gauges and histograms with labels, exposed in the
 * Prometheus text format. Pure: callers pass the values, nothing reads the clock.
 * @module
 */

import { LATENCY_BUCKETS, type MetricDeclaration } from "./metrics_catalogue.ts";

type Labels = Record<string, string>;

/** The metric type a declaration makes. */
export type MetricOf<D extends MetricDeclaration> = D extends { type: "counter" } ? Counter
  : D extends { type: "gauge" } ? Gauge
  : Histogram;

function labelKey(labels: Labels | undefined): string {
  if (!labels) return "";
  const keys = Object.keys(labels).sort();
  return keys.map((k) => `${k}="${labels[k].replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`)
    .join(",");
}

/** A monotonically increasing count. */
export class Counter {
  readonly values = new Map<string, number>();
  constructor(readonly name: string, readonly help: string) {}
  /** Adds `by` (default 1) to the series with these labels. */
  inc(labels?: Labels, by = 1): void {
    const k = labelKey(labels);
    this.values.set(k, (this.values.get(k) ?? 0) + by);
  }
  /** Current value of one series. */
  get(labels?: Labels): number {
    return this.values.get(labelKey(labels)) ?? 0;
  }
}

/** A value that goes up and down. */
export class Gauge {
  readonly values = new Map<string, number>();
  constructor(readonly name: string, readonly help: string) {}
  /** Sets the series with these labels. */
  set(value: number, labels?: Labels): void {
    this.values.set(labelKey(labels), value);
  }
  /** Current value of one series. */
  get(labels?: Labels): number {
    return this.values.get(labelKey(labels)) ?? 0;
  }
  /** Removes one series (for example that of a deleted service). */
  delete(labels?: Labels): void {
    this.values.delete(labelKey(labels));
  }
}

/** Observations bucketed by upper bound, with sum and count. */
export class Histogram {
  readonly series = new Map<string, { buckets: number[]; sum: number; count: number }>();
  constructor(readonly name: string, readonly help: string, readonly bounds: readonly number[]) {}
  /** Records one observation. */
  observe(value: number, labels?: Labels): void {
    const k = labelKey(labels);
    let s = this.series.get(k);
    if (!s) this.series.set(k, s = { buckets: this.bounds.map(() => 0), sum: 0, count: 0 });
    for (let i = 0; i < this.bounds.length; i++) if (value <= this.bounds[i]) s.buckets[i]++;
    s.sum += value;
    s.count++;
  }
}

/**
 * Holds every metric of a process, by name; asking twice for one name returns the same metric.
 *
 * @example
 * ```ts
 * const registry = new MetricsRegistry();
 * registry.of(METRICS.syncFailures).inc();
 * registry.render();
 * ```
 */
export class MetricsRegistry {
  #metrics = new Map<string, Counter | Gauge | Histogram>();

  /** The metric of a catalogue declaration (see metrics_catalogue.ts), created on first use. */
  of<D extends MetricDeclaration>(d: D): MetricOf<D> {
    switch (d.type) {
      case "counter":
        return this.#get(d.name, () => new Counter(d.name, d.help), Counter) as MetricOf<D>;
      case "gauge":
        return this.#get(d.name, () => new Gauge(d.name, d.help), Gauge) as MetricOf<D>;
      case "histogram":
        return this.#get(
          d.name,
          () => new Histogram(d.name, d.help, d.buckets ?? LATENCY_BUCKETS),
          Histogram,
        ) as MetricOf<D>;
    }
  }

  #get<T extends Counter | Gauge | Histogram>(
    name: string,
    make: () => T,
    // deno-lint-ignore no-explicit-any
    kind: new (...args: any[]) => T,
  ): T {
    const existing = this.#metrics.get(name);
    if (existing) {
      if (!(existing instanceof kind)) {
        throw new Error(`Cannot register metric "${name}": it exists with another type`);
      }
      return existing;
    }
    const m = make();
    this.#metrics.set(name, m);
    return m;
  }

  /** All metrics in the Prometheus text exposition format. */
  render(): string {
    const lines: string[] = [];
    const wrap = (k: string) => (k ? `{${k}}` : "");
    for (const m of [...this.#metrics.values()].sort((a, b) => a.name < b.name ? -1 : 1)) {
      lines.push(`# HELP ${m.name} ${m.help}`);
      if (m instanceof Histogram) {
        lines.push(`# TYPE ${m.name} histogram`);
        for (const [k, s] of m.series) {
          const sep = k ? "," : "";
          m.bounds.forEach((b, i) =>
            lines.push(`${m.name}_bucket{${k}${sep}le="${b}"} ${s.buckets[i]}`)
          );
          lines.push(`${m.name}_bucket{${k}${sep}le="+Inf"} ${s.count}`);
          lines.push(`${m.name}_sum${wrap(k)} ${s.sum}`);
          lines.push(`${m.name}_count${wrap(k)} ${s.count}`);
        }
        continue;
      }
      lines.push(`# TYPE ${m.name} ${m instanceof Counter ? "counter" : "gauge"}`);
      for (const [k, v] of m.values) lines.push(`${m.name}${wrap(k)} ${v}`);
    }
    return lines.join("\n") + "\n";
  }
}
