/**
 * DNS metrics, each declared once ({@link DNS_METRICS}: name, help, type, labels, buckets); the
 * counters an engine keeps, their delta, its reset and the export to the MetricsRegistry all
 * follow from the declarations. Counts live in flat objects and typed arrays (cheap on the hot
 * path, cheap to post from a worker). Pure: callers pass the values.
 *
 * A new counter is one entry in {@link DNS_METRICS} and a `stats.counters.<key>++` where its
 * event happens.
 * @module
 */

import type { MetricsRegistry } from "../../observe/metrics.ts";
import { DNS_METRICS, type MetricDeclaration } from "../../observe/metrics_catalogue.ts";
import { rcodeName, RRType, typeName } from "../codec/records.ts";

type Declared = typeof DNS_METRICS;
type KeyWhere<T> = { [K in keyof Declared]: Declared[K] extends T ? K : never }[keyof Declared];

/** Counters without labels: a number each. */
export type CounterKey = Exclude<KeyWhere<{ type: "counter" }>, LabelledKey>;
/** Counters with labels: a flat array of slots each. */
export type LabelledKey = KeyWhere<{ type: "counter"; labels: readonly string[] }>;
/** Histograms: bucket counts, sum and count each. */
export type HistogramKey = KeyWhere<{ type: "histogram" }>;
/** Gauges: set by the server when it publishes (see {@link setDnsGauge}), never in a delta. */
export type GaugeKey = KeyWhere<{ type: "gauge" }>;

/** Query types counted by name; everything else is `other`. */
const COUNTED_TYPES = [
  RRType.A,
  RRType.AAAA,
  RRType.SRV,
  RRType.PTR,
  RRType.TXT,
  RRType.CNAME,
  RRType.SOA,
  RRType.NS,
  RRType.MX,
  RRType.ANY,
  RRType.AXFR,
  RRType.IXFR,
];
const TYPE_SLOT = new Int8Array(256).fill(COUNTED_TYPES.length);
COUNTED_TYPES.forEach((t, i) => (TYPE_SLOT[t] = i));
/** Rcodes counted apart; higher ones share the last slot. */
const RCODES = 24;

/**
 * The limits counted in `svcgate_dns_limit_hits_total{limit}` (issue 20): the message limits of
 * codec/decode.ts, the TCP connection limits of tcp.ts and response-rate limiting (rrl.ts).
 */
export const DNS_LIMITS = [
  "compression_pointers",
  "parse_budget",
  "tcp_clients",
  "tcp_clients_per_ip",
  "tcp_evicted",
  "tcp_lifetime",
  "tcp_queries",
  "tcp_io_timeout",
  "tcp_buffers",
  "rrl",
] as const;

/** One of {@link DNS_LIMITS}. */
export type DnsLimit = typeof DNS_LIMITS[number];

const LIMIT_SLOT: Readonly<Record<DnsLimit, number>> = Object.fromEntries(
  DNS_LIMITS.map((l, i) => [l, i]),
) as Record<DnsLimit, number>;

/** The values each label takes, in slot order. */
const LABEL_VALUES: Readonly<Record<string, readonly string[]>> = {
  type: [...COUNTED_TYPES.map(typeName), "other"],
  rcode: Array.from({ length: RCODES }, (_, i) => rcodeName(i)),
  limit: DNS_LIMITS,
};

const KEYS = Object.keys(DNS_METRICS) as (keyof Declared)[];
const declared = (key: keyof Declared): MetricDeclaration => DNS_METRICS[key];
const COUNTER_KEYS = KEYS.filter((k) =>
  declared(k).type === "counter" && !declared(k).labels
) as CounterKey[];
const LABELLED_KEYS = KEYS.filter((k) => declared(k).labels !== undefined) as LabelledKey[];
const HISTOGRAM_KEYS = KEYS.filter((k) => declared(k).type === "histogram") as HistogramKey[];

/** Slots of a labelled counter: one per combination of its label values. */
function slotCount(d: MetricDeclaration): number {
  return (d.labels ?? []).reduce((n, label) => n * LABEL_VALUES[label].length, 1);
}

/** Cumulative bucket counts (as Prometheus counts them) then +Inf, with sum and count. */
export interface HistogramCounts {
  readonly buckets: Float64Array;
  sum: number;
  count: number;
}

/** Counter deltas, as posted from a worker. */
export interface StatsDelta {
  readonly counters: Readonly<Record<CounterKey, number>>;
  readonly labelled: Readonly<Record<LabelledKey, Float64Array>>;
  readonly histograms: Readonly<Record<HistogramKey, HistogramCounts>>;
  /** Of the queries counted in `requests`, those over TCP, per type slot (for CoreDNS's proto). */
  readonly tcp: Float64Array;
  /** Per upstream (`ip:port`): questions sent (slot 0), then answers by rcode (slot 1 + rcode). */
  readonly forward: ReadonlyMap<string, Float64Array>;
  /** The forwarding cache's entries now (not a delta); null without forwarding. */
  readonly cache: { readonly success: number; readonly denial: number } | null;
}

/** Number of type slots ({@link typeSlotName} names each). */
export const TYPE_SLOTS = COUNTED_TYPES.length + 1;
/** Number of rcode slots ({@link rcodeSlotName} names each). */
export const RCODE_SLOTS = RCODES;
/** The `type` label of a type slot. */
export const typeSlotName = (slot: number): string => LABEL_VALUES.type[slot];
/** The `rcode` label of an rcode slot. */
export const rcodeSlotName = (slot: number): string => LABEL_VALUES.rcode[slot];

function newCounters(): Record<CounterKey, number> {
  const out = {} as Record<CounterKey, number>;
  for (const k of COUNTER_KEYS) out[k] = 0;
  return out;
}

function newLabelled(): Record<LabelledKey, Float64Array> {
  const out = {} as Record<LabelledKey, Float64Array>;
  for (const k of LABELLED_KEYS) out[k] = new Float64Array(slotCount(DNS_METRICS[k]));
  return out;
}

function newHistograms(): Record<HistogramKey, HistogramCounts> {
  const out = {} as Record<HistogramKey, HistogramCounts>;
  for (const k of HISTOGRAM_KEYS) {
    out[k] = { buckets: new Float64Array(DNS_METRICS[k].buckets.length + 1), sum: 0, count: 0 };
  }
  return out;
}

/**
 * Mutable DNS counters of one engine. `counters` is one object for the engine's life (the
 * forwarder counts into it too); {@link drain} copies and zeroes it.
 */
export class DnsStats {
  readonly counters: Record<CounterKey, number> = newCounters();
  #labelled = newLabelled();
  #histograms = newHistograms();
  #tcp = new Float64Array(TYPE_SLOTS);
  #forward = new Map<string, Float64Array>();

  /** Counts one answered query (`tcp`: it came over TCP). */
  query(qtype: number, rcode: number, tcp = false): void {
    const slot = qtype < 256 ? TYPE_SLOT[qtype] : COUNTED_TYPES.length;
    this.#labelled.requests[slot * RCODES + (rcode < RCODES ? rcode : RCODES - 1)]++;
    if (tcp) this.#tcp[slot]++;
  }

  /** Counts a question sent to upstream `to` (rcode -1) or its answer. */
  forwarded(to: string, rcode: number): void {
    let slots = this.#forward.get(to);
    if (!slots) this.#forward.set(to, slots = new Float64Array(1 + RCODES));
    slots[rcode < 0 ? 0 : 1 + Math.min(rcode, RCODES - 1)]++;
  }

  /** Counts one hit of a limit. */
  limit(which: DnsLimit, count = 1): void {
    this.#labelled.limitHits[LIMIT_SLOT[which]] += count;
  }

  /** Records `count` latencies of `seconds` each (one batch of packets). */
  latency(seconds: number, count = 1): void {
    this.observe("duration", seconds, count);
  }

  /** Records `count` observations of `value` in a histogram. */
  observe(key: HistogramKey, value: number, count = 1): void {
    const h = this.#histograms[key];
    const bounds = DNS_METRICS[key].buckets;
    for (let i = 0; i < bounds.length; i++) if (value <= bounds[i]) h.buckets[i] += count;
    h.buckets[bounds.length] += count;
    h.sum += value * count;
    h.count += count;
  }

  /** Returns the counts since the last drain and resets them; `cache`: the cache's size now. */
  drain(cache: StatsDelta["cache"] = null): StatsDelta {
    const d: StatsDelta = {
      counters: { ...this.counters },
      labelled: this.#labelled,
      histograms: this.#histograms,
      tcp: this.#tcp,
      forward: this.#forward,
      cache,
    };
    for (const k of COUNTER_KEYS) this.counters[k] = 0;
    this.#labelled = newLabelled();
    this.#histograms = newHistograms();
    this.#tcp = new Float64Array(TYPE_SLOTS);
    this.#forward = new Map();
    return d;
  }
}

/** Adds a delta to the registry's metrics (every counter and histogram, zeros included). */
export function applyStats(registry: MetricsRegistry, d: StatsDelta): void {
  for (const key of LABELLED_KEYS) {
    const m = DNS_METRICS[key];
    const counter = registry.of(m);
    const slots = d.labelled[key];
    const values = m.labels.map((label) => LABEL_VALUES[label]);
    for (let slot = 0; slot < slots.length; slot++) {
      if (slots[slot] === 0) continue;
      const labels: Record<string, string> = {};
      // The first label varies slowest: peel the others off the slot from the last.
      let rest = slot;
      for (let i = values.length - 1; i >= 0; i--) {
        labels[m.labels[i]] = values[i][rest % values[i].length];
        rest = Math.floor(rest / values[i].length);
      }
      counter.inc(labels, slots[slot]);
    }
  }
  for (const key of HISTOGRAM_KEYS) {
    const m = DNS_METRICS[key];
    const h = registry.of(m);
    const counts = d.histograms[key];
    if (counts.count === 0) continue;
    // The shared Histogram has no bulk observe; its series are public, so add the counts directly.
    let s = h.series.get("");
    if (!s) h.series.set("", s = { buckets: h.bounds.map(() => 0), sum: 0, count: 0 });
    for (let i = 0; i < s.buckets.length && i < counts.buckets.length; i++) {
      s.buckets[i] += counts.buckets[i];
    }
    s.sum += counts.sum;
    s.count += counts.count;
  }
  for (const key of COUNTER_KEYS) {
    const m = DNS_METRICS[key];
    registry.of(m).inc(undefined, d.counters[key]);
  }
}

/** Sets one of the DNS gauges. */
export function setDnsGauge(registry: MetricsRegistry, key: GaugeKey, value: number): void {
  const m = DNS_METRICS[key];
  registry.of(m).set(value);
}
