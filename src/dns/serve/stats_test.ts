import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { MetricsRegistry } from "../../observe/metrics.ts";
import { RRType } from "../codec/records.ts";
import { applyStats, type CounterKey, DNS_LIMITS, DnsStats, setDnsGauge } from "./stats.ts";
import { DNS_METRICS } from "../../observe/metrics_catalogue.ts";

Deno.test("DNS_METRICS: one declaration per metric, names unique and svcgate_dns_*", () => {
  const names = Object.values(DNS_METRICS).map((m) => m.name);
  assertEquals(new Set(names).size, names.length);
  for (const m of Object.values(DNS_METRICS)) {
    assert(/^svcgate_dns_[a-z_]+$/.test(m.name), m.name);
    assert(m.help.length > 0, `${m.name} has no help`);
    if (m.type === "counter") assert(m.name.endsWith("_total"), m.name);
  }
});

Deno.test("DnsStats: every plain counter follows from its declaration, exported even at zero", () => {
  const stats = new DnsStats();
  const plain = Object.entries(DNS_METRICS).filter(([, m]) =>
    m.type === "counter" && !("labels" in m)
  );
  assertEquals(Object.keys(stats.counters).sort(), plain.map(([k]) => k).sort());
  stats.counters.dropped += 3;
  stats.counters.tcpSlowClients++;
  const registry = new MetricsRegistry();
  applyStats(registry, stats.drain());
  const text = registry.render();
  for (const [key, m] of plain) {
    const want = key === "dropped" ? 3 : key === "tcpSlowClients" ? 1 : 0;
    assert(new RegExp(`^${m.name} ${want}$`, "m").test(text), `${m.name} ${want}:\n${text}`);
    assert(text.includes(`# HELP ${m.name} ${m.help}`), text);
  }
  // Gauges are the server's to set when it publishes: absent until then.
  assert(!text.includes(DNS_METRICS.zoneRecords.name), text);
  setDnsGauge(registry, "zoneRecords", 42);
  assert(registry.render().includes(`${DNS_METRICS.zoneRecords.name} 42`));
});

Deno.test("DnsStats: drain hands over the counts and starts from zero; the delta clones", () => {
  const stats = new DnsStats();
  const counters = stats.counters;
  stats.counters.fastPath = 5;
  stats.query(RRType.AAAA, 3);
  stats.query(RRType.AAAA, 3);
  stats.query(999, 40);
  stats.latency(0.0003, 2);
  const d = structuredClone(stats.drain());
  assertEquals(d.counters.fastPath, 5);
  assertEquals(d.histograms.duration.count, 2);
  assert(stats.counters === counters, "the counters object lives on (the forwarder holds it)");
  assertEquals(Object.values(stats.counters).every((n) => n === 0), true);
  const registry = new MetricsRegistry();
  applyStats(registry, d);
  const text = registry.render();
  assert(text.includes('svcgate_dns_requests_total{rcode="NXDOMAIN",type="AAAA"} 2'), text);
  // Types outside the counted ones are "other"; rcodes from 23 up share the last slot.
  assert(text.includes('svcgate_dns_requests_total{rcode="RCODE23",type="other"} 1'), text);
  assert(text.includes('svcgate_dns_request_duration_seconds_bucket{le="0.0005"} 2'), text);
  assert(text.includes('svcgate_dns_request_duration_seconds_bucket{le="0.00025"} 0'), text);
  const again = stats.drain();
  assertEquals(again.histograms.duration.count, 0);
  assertEquals(again.labelled.requests.every((n) => n === 0), true);
});

Deno.test("CounterKey: the plain counters, as the code counts them", () => {
  const keys: CounterKey[] = [
    "cacheHits",
    "cacheMisses",
    "upstreamFailures",
    "dropped",
    "truncated",
    "fastPath",
    "internalErrors",
    "tcpSlowClients",
    "autopathSuccess",
    "autopathMiss",
    "cacheHitsNegative",
    "staleAnswers",
    "prefetches",
  ];
  assertEquals(keys.sort(), Object.keys(new DnsStats().counters).sort());
});

Deno.test("DnsStats: limit hits are counted by limit, and the help names every limit", () => {
  const stats = new DnsStats();
  stats.limit("parse_budget");
  stats.limit("rrl", 3);
  stats.limit("rrl");
  const registry = new MetricsRegistry();
  applyStats(registry, stats.drain());
  const text = registry.render();
  assert(text.includes('svcgate_dns_limit_hits_total{limit="parse_budget"} 1'), text);
  assert(text.includes('svcgate_dns_limit_hits_total{limit="rrl"} 4'), text);
  assert(!text.includes('limit="tcp_lifetime"'), text);
  for (const limit of DNS_LIMITS) {
    assert(DNS_METRICS.limitHits.help.includes(limit), `the help does not name ${limit}`);
  }
});
