import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { MetricsRegistry } from "../../observe/metrics.ts";
import { COREDNS_METRICS } from "../../observe/metrics_catalogue.ts";
import { RRType } from "../codec/records.ts";
import { exportDnsStats, serverLabel } from "./coredns_metrics.ts";
import { DnsStats } from "./stats.ts";

/** The lines of one metric family in the text format, sorted. */
const family = (text: string, name: string) =>
  text.split("\n").filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `)).sort();

Deno.test("serverLabel: as CoreDNS writes a server", () => {
  assertEquals(serverLabel("169.254.20.10", 53), "dns://169.254.20.10:53");
  assertEquals(serverLabel("2001:db8::53", 5353), "dns://[2001:db8::53]:5353");
});

Deno.test("exportDnsStats: CoreDNS's series are projections of svcgate's counts", () => {
  const stats = new DnsStats();
  for (let i = 0; i < 3; i++) stats.query(RRType.A, 0);
  stats.query(RRType.A, 0, true);
  stats.query(RRType.AAAA, 3);
  stats.query(RRType.PTR, 5);
  stats.latency(0.0003, 6);
  stats.counters.cacheHits = 4;
  stats.counters.cacheHitsNegative = 1;
  stats.counters.cacheMisses = 2;
  stats.counters.staleAnswers = 1;
  stats.forwarded("198.18.100.2:53", -1);
  stats.forwarded("198.18.100.2:53", -1);
  stats.forwarded("198.18.100.2:53", 0);
  stats.forwarded("198.18.100.2:53", 3);
  const registry = new MetricsRegistry();
  const server = "dns://169.254.20.10:53";
  exportDnsStats(registry, structuredClone(stats.drain({ success: 7, denial: 2 })), server, {
    success: 7,
    denial: 2,
  });
  const text = registry.render();
  const s = `server="${server}"`;
  assertEquals(family(text, "coredns_dns_requests_total"), [
    `coredns_dns_requests_total{proto="tcp",${s},type="A",view="",zone="."} 1`,
    `coredns_dns_requests_total{proto="udp",${s},type="A",view="",zone="."} 3`,
    `coredns_dns_requests_total{proto="udp",${s},type="AAAA",view="",zone="."} 1`,
    `coredns_dns_requests_total{proto="udp",${s},type="PTR",view="",zone="."} 1`,
  ]);
  assertEquals(family(text, "coredns_dns_responses_total"), [
    `coredns_dns_responses_total{rcode="NOERROR",${s},view="",zone="."} 4`,
    `coredns_dns_responses_total{rcode="NXDOMAIN",${s},view="",zone="."} 1`,
    `coredns_dns_responses_total{rcode="REFUSED",${s},view="",zone="."} 1`,
  ]);
  assertEquals(family(text, "coredns_dns_request_duration_seconds_count"), [
    `coredns_dns_request_duration_seconds_count{${s},view="",zone="."} 6`,
  ]);
  assertEquals(family(text, "coredns_cache_hits_total"), [
    `coredns_cache_hits_total{${s},type="denial",view="",zones="."} 1`,
    `coredns_cache_hits_total{${s},type="success",view="",zones="."} 3`,
  ]);
  assertEquals(family(text, "coredns_cache_misses_total"), [
    `coredns_cache_misses_total{${s},view="",zones="."} 2`,
  ]);
  assertEquals(family(text, "coredns_cache_served_stale_total"), [
    `coredns_cache_served_stale_total{${s},view="",zones="."} 1`,
  ]);
  assertEquals(family(text, "coredns_cache_entries"), [
    `coredns_cache_entries{${s},type="denial",view="",zones="."} 2`,
    `coredns_cache_entries{${s},type="success",view="",zones="."} 7`,
  ]);
  assertEquals(family(text, "coredns_forward_requests_total"), [
    `coredns_forward_requests_total{to="198.18.100.2:53"} 2`,
  ]);
  assertEquals(family(text, "coredns_forward_responses_total"), [
    `coredns_forward_responses_total{rcode="NOERROR",to="198.18.100.2:53"} 1`,
    `coredns_forward_responses_total{rcode="NXDOMAIN",to="198.18.100.2:53"} 1`,
  ]);
  // svcgate's own names are still exported.
  assert(text.includes('svcgate_dns_requests_total{rcode="NOERROR",type="A"} 4'), text);
  for (const m of Object.values(COREDNS_METRICS)) {
    assert(text.includes(`# HELP ${m.name} `), m.name);
  }
});
