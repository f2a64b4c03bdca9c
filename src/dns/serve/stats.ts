/**
 * DNS counters kept in flat arrays (cheap on the hot path, cheap to post from a worker), and
 * their transfer into the shared MetricsRegistry. Pure: callers pass the values.
 * @module
 */

import { LATENCY_BUCKETS, type MetricsRegistry } from "../../observe/metrics.ts";
import { rcodeName, RRType, typeName } from "../codec/records.ts";

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
const TYPE_LABELS = [...COUNTED_TYPES.map(typeName), "other"];
const RCODES = 24;

/** Counter deltas, as posted from a worker. */
export interface StatsDelta {
  /** [typeSlot * 24 + rcode] -> count. */
  readonly queries: Float64Array;
  /** Cumulative latency buckets (as Prometheus counts them), then +Inf. */
  readonly latencyBuckets: Float64Array;
  readonly latencySum: number;
  readonly latencyCount: number;
  readonly cacheHits: number;
  readonly cacheMisses: number;
  readonly upstreamFailures: number;
  readonly dropped: number;
  readonly truncated: number;
  readonly fastPath: number;
  readonly internalErrors: number;
  readonly tcpSlowClients: number;
}

/** Mutable DNS counters. */
export class DnsStats {
  queries = new Float64Array(TYPE_LABELS.length * RCODES);
  latencyBuckets = new Float64Array(LATENCY_BUCKETS.length + 1);
  latencySum = 0;
  latencyCount = 0;
  cacheHits = 0;
  cacheMisses = 0;
  upstreamFailures = 0;
  dropped = 0;
  truncated = 0;
  fastPath = 0;
  /** Bugs caught while answering one packet (answered SERVFAIL or dropped instead of crashing). */
  internalErrors = 0;
  /** TCP connections cut off because their client stopped reading its answers. */
  tcpSlowClients = 0;

  /** Counts one answered query. */
  query(qtype: number, rcode: number): void {
    const slot = qtype < 256 ? TYPE_SLOT[qtype] : COUNTED_TYPES.length;
    this.queries[slot * RCODES + (rcode < RCODES ? rcode : RCODES - 1)]++;
  }

  /** Records `count` latencies of `seconds` each (one batch of packets). */
  latency(seconds: number, count = 1): void {
    for (let i = 0; i < LATENCY_BUCKETS.length; i++) {
      if (seconds <= LATENCY_BUCKETS[i]) this.latencyBuckets[i] += count;
    }
    this.latencyBuckets[LATENCY_BUCKETS.length] += count;
    this.latencySum += seconds * count;
    this.latencyCount += count;
  }

  /** Returns the counts since the last drain and resets them. */
  drain(): StatsDelta {
    const d: StatsDelta = {
      queries: this.queries,
      latencyBuckets: this.latencyBuckets,
      latencySum: this.latencySum,
      latencyCount: this.latencyCount,
      cacheHits: this.cacheHits,
      cacheMisses: this.cacheMisses,
      upstreamFailures: this.upstreamFailures,
      dropped: this.dropped,
      truncated: this.truncated,
      fastPath: this.fastPath,
      internalErrors: this.internalErrors,
      tcpSlowClients: this.tcpSlowClients,
    };
    this.queries = new Float64Array(this.queries.length);
    this.latencyBuckets = new Float64Array(this.latencyBuckets.length);
    this.latencySum = this.latencyCount = 0;
    this.cacheHits = this.cacheMisses = this.upstreamFailures = 0;
    this.dropped =
      this.truncated =
      this.fastPath =
      this.internalErrors =
      this.tcpSlowClients =
        0;
    return d;
  }
}

/** Metric names svcgate's DNS exports. */
export const DNS_METRICS = {
  requests: "svcgate_dns_requests_total",
  duration: "svcgate_dns_request_duration_seconds",
  cacheHits: "svcgate_dns_cache_hits_total",
  cacheMisses: "svcgate_dns_cache_misses_total",
  upstreamFailures: "svcgate_dns_upstream_failures_total",
  dropped: "svcgate_dns_dropped_total",
  truncated: "svcgate_dns_truncated_total",
  fastPath: "svcgate_dns_fast_path_total",
  internalErrors: "svcgate_dns_internal_errors_total",
  tcpSlowClients: "svcgate_dns_tcp_slow_clients_total",
  zoneRecords: "svcgate_dns_zone_records",
  zoneVersion: "svcgate_dns_snapshot_version",
  zoneBuild: "svcgate_dns_zone_build_seconds",
} as const;

/** Adds a delta to the registry's metrics. */
export function applyStats(registry: MetricsRegistry, d: StatsDelta): void {
  const requests = registry.counter(
    DNS_METRICS.requests,
    "DNS queries answered, by query type and rcode",
  );
  for (let slot = 0; slot < TYPE_LABELS.length; slot++) {
    for (let rcode = 0; rcode < RCODES; rcode++) {
      const n = d.queries[slot * RCODES + rcode];
      if (n > 0) requests.inc({ type: TYPE_LABELS[slot], rcode: rcodeName(rcode) }, n);
    }
  }
  const h = registry.histogram(
    DNS_METRICS.duration,
    "Time from receiving a DNS query to sending its answer",
  );
  if (d.latencyCount > 0) {
    // The shared Histogram has no bulk observe; its series are public, so add the counts directly.
    let s = h.series.get("");
    if (!s) h.series.set("", s = { buckets: h.bounds.map(() => 0), sum: 0, count: 0 });
    for (let i = 0; i < s.buckets.length && i < d.latencyBuckets.length; i++) {
      s.buckets[i] += d.latencyBuckets[i];
    }
    s.sum += d.latencySum;
    s.count += d.latencyCount;
  }
  registry.counter(DNS_METRICS.cacheHits, "Forwarded questions answered from the cache").inc(
    undefined,
    d.cacheHits,
  );
  registry.counter(DNS_METRICS.cacheMisses, "Forwarded questions not in the cache").inc(
    undefined,
    d.cacheMisses,
  );
  registry.counter(
    DNS_METRICS.upstreamFailures,
    "Forwarded questions no upstream answered (SERVFAIL)",
  )
    .inc(undefined, d.upstreamFailures);
  registry.counter(
    DNS_METRICS.dropped,
    "Packets dropped without an answer (unreadable or responses)",
  )
    .inc(undefined, d.dropped);
  registry.counter(DNS_METRICS.truncated, "UDP answers truncated (TC set)").inc(
    undefined,
    d.truncated,
  );
  registry.counter(DNS_METRICS.fastPath, "Queries answered from precomputed wire answers").inc(
    undefined,
    d.fastPath,
  );
  registry.counter(
    DNS_METRICS.internalErrors,
    "Packets whose handling hit a bug (answered SERVFAIL or dropped)",
  )
    .inc(undefined, d.internalErrors);
  registry.counter(
    DNS_METRICS.tcpSlowClients,
    "TCP connections closed because the client stopped reading its answers",
  )
    .inc(undefined, d.tcpSlowClients);
}
