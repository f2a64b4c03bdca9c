/**
 * svcgate's DNS counts under CoreDNS's metric names and label sets (COREDNS_METRICS in the
 * catalogue), so dashboards and alerts written for CoreDNS work against svcgate. Nothing is
 * counted twice: each CoreDNS series is a projection of svcgate's own counts in a delta
 * (requests by type and rcode, TCP requests by type, the cache and forwarding counters). Pure:
 * the server passes the registry and the delta.
 * @module
 */

import type { MetricsRegistry } from "../../observe/metrics.ts";
import { COREDNS_METRICS } from "../../observe/metrics_catalogue.ts";
import {
  applyStats,
  RCODE_SLOTS,
  rcodeSlotName,
  type StatsDelta,
  TYPE_SLOTS,
  typeSlotName,
} from "./stats.ts";

/** CoreDNS's `server` label for a listening address: `dns://169.254.20.10:53`, `dns://[::1]:53`. */
export function serverLabel(hostname: string, port: number): string {
  return `dns://${hostname.includes(":") ? `[${hostname}]` : hostname}:${port}`;
}

/**
 * Adds a delta to the registry: svcgate's own metrics (stats.ts applyStats) and CoreDNS's.
 * Cache entries are a gauge: the caller sums them over its engines and passes the total in
 * `cacheEntries` (null: leave the gauge as it is).
 */
export function exportDnsStats(
  registry: MetricsRegistry,
  d: StatsDelta,
  server: string,
  cacheEntries: StatsDelta["cache"],
): void {
  applyStats(registry, d);
  const base = { server, zone: ".", view: "" };
  const requests = registry.of(COREDNS_METRICS.requests);
  const responses = registry.of(COREDNS_METRICS.responses);
  const slots = d.labelled.requests;
  const byRcode = new Float64Array(RCODE_SLOTS);
  for (let t = 0; t < TYPE_SLOTS; t++) {
    let all = 0;
    for (let r = 0; r < RCODE_SLOTS; r++) {
      const n = slots[t * RCODE_SLOTS + r];
      all += n;
      byRcode[r] += n;
    }
    if (all === 0) continue;
    const tcp = d.tcp[t];
    const type = typeSlotName(t);
    if (all - tcp > 0) requests.inc({ ...base, proto: "udp", type }, all - tcp);
    if (tcp > 0) requests.inc({ ...base, proto: "tcp", type }, tcp);
  }
  for (let r = 0; r < RCODE_SLOTS; r++) {
    if (byRcode[r] > 0) responses.inc({ ...base, rcode: rcodeSlotName(r) }, byRcode[r]);
  }
  const h = d.histograms.duration;
  if (h.count > 0) {
    const hist = registry.of(COREDNS_METRICS.duration);
    const key = `server="${server}",view="",zone="."`;
    let s = hist.series.get(key);
    if (!s) hist.series.set(key, s = { buckets: hist.bounds.map(() => 0), sum: 0, count: 0 });
    for (let i = 0; i < s.buckets.length && i < h.buckets.length; i++) s.buckets[i] += h.buckets[i];
    s.sum += h.sum;
    s.count += h.count;
  }
  const zones = { server, zones: ".", view: "" };
  const c = d.counters;
  const hits = registry.of(COREDNS_METRICS.cacheHits);
  hits.inc({ ...zones, type: "success" }, c.cacheHits - c.cacheHitsNegative);
  hits.inc({ ...zones, type: "denial" }, c.cacheHitsNegative);
  registry.of(COREDNS_METRICS.cacheMisses).inc(zones, c.cacheMisses);
  registry.of(COREDNS_METRICS.cacheServedStale).inc(zones, c.staleAnswers);
  registry.of(COREDNS_METRICS.cachePrefetch).inc(zones, c.prefetches);
  if (cacheEntries) {
    const entries = registry.of(COREDNS_METRICS.cacheEntries);
    entries.set(cacheEntries.success, { ...zones, type: "success" });
    entries.set(cacheEntries.denial, { ...zones, type: "denial" });
  }
  const sent = registry.of(COREDNS_METRICS.forwardRequests);
  const answered = registry.of(COREDNS_METRICS.forwardResponses);
  for (const [to, counts] of d.forward) {
    if (counts[0] > 0) sent.inc({ to }, counts[0]);
    for (let r = 0; r < RCODE_SLOTS; r++) {
      if (counts[1 + r] > 0) answered.inc({ to, rcode: rcodeSlotName(r) }, counts[1 + r]);
    }
  }
}

/**
 * Moves the engines' deltas to a registry ({@link exportDnsStats}), keeping each engine's last
 * cache size so `coredns_cache_entries` is their sum.
 */
export class DnsStatsExporter {
  readonly #cache = new Map<unknown, { success: number; denial: number }>();

  constructor(readonly registry: MetricsRegistry, readonly server: () => string) {}

  /** Adds one engine's delta (`engine`: any key naming the engine). */
  apply(delta: StatsDelta, engine: unknown): void {
    if (delta.cache) this.#cache.set(engine, delta.cache);
    let success = 0, denial = 0;
    for (const c of this.#cache.values()) {
      success += c.success;
      denial += c.denial;
    }
    const total = this.#cache.size > 0 ? { success, denial } : null;
    exportDnsStats(this.registry, delta, this.server(), total);
  }

  /** Drops an engine that ended (a restarted worker). */
  forget(engine: unknown): void {
    this.#cache.delete(engine);
  }
}
