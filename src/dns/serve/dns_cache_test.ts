import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { cacheTtl, DnsCache } from "./dns_cache.ts";
import { formatRecord, RRClass, RRType } from "../codec/records.ts";
import { record, upstreamReply } from "../../../tests/support/dns_fixture.ts";

const SOA = (ttl: number, minimum: number) =>
  record("example.org", RRType.SOA, {
    mname: "ns.example.org",
    rname: "hostmaster.example.org",
    serial: 1,
    refresh: 1,
    retry: 1,
    expire: 1,
    minimum,
  }, ttl);

Deno.test("cacheTtl: positive, negative (RFC 2308) and uncacheable", () => {
  const a = (ttl: number) => record("www.example.org", RRType.A, { address: "198.18.0.80" }, ttl);
  assertEquals(cacheTtl(upstreamReply({ answers: [a(300), a(60)] })), 60);
  assertEquals(cacheTtl(upstreamReply({ answers: [a(99999)] })), 3600);
  assertEquals(cacheTtl(upstreamReply({ rcode: 3, authority: [SOA(600, 120)] })), 120);
  assertEquals(cacheTtl(upstreamReply({ rcode: 0, authority: [SOA(90, 120)] })), 90);
  assertEquals(cacheTtl(upstreamReply({ rcode: 3 })), 0);
  assertEquals(cacheTtl(upstreamReply({ rcode: 2 })), 0);
  assertEquals(cacheTtl(upstreamReply({ tc: true, answers: [a(30)] })), 0);
});

Deno.test("DnsCache: TTLs count down with the injected clock, entries expire, LRU bound holds", () => {
  let now = 1_000_000;
  const cache = new DnsCache({ maxEntries: 2, now: () => now });
  const q = (name: string) => ({ name, type: RRType.A, class: RRClass.IN });
  const msg = upstreamReply({
    answers: [record("www.example.org", RRType.A, { address: "198.18.0.80" }, 30)],
  });
  assertEquals(cache.put(q("www.example.org"), msg), 30);
  now += 10_400;
  assertEquals(cache.get(q("WWW.Example.ORG"))?.answers.map(formatRecord), [
    "www.example.org. 20 IN A 198.18.0.80",
  ]);
  now += 20_000;
  assertEquals(cache.get(q("www.example.org")), null);
  cache.put(q("a.example"), msg);
  cache.put(q("b.example"), msg);
  cache.get(q("a.example"));
  cache.put(q("c.example"), msg);
  assertEquals(cache.size, 2);
  assert(cache.get(q("a.example")) !== null, "recently used entry was evicted");
  assertEquals(cache.get(q("b.example")), null);
});

Deno.test("DnsCache: counts by kind follow puts, replacements and evictions; stale keeps TTL 30", () => {
  let now = 0;
  const cache = new DnsCache({ maxEntries: 2, now: () => now, staleMs: 10_000 });
  const q = (name: string) => ({ name, type: RRType.A, class: RRClass.IN });
  const pos = upstreamReply({
    answers: [record("www.example.org", RRType.A, { address: "198.18.0.80" }, 30)],
  });
  const neg = upstreamReply({ rcode: 3, authority: [SOA(60, 60)] });
  const cases: [() => void, { success: number; denial: number }][] = [
    [() => cache.put(q("a.example"), pos), { success: 1, denial: 0 }],
    [() => cache.put(q("b.example"), neg), { success: 1, denial: 1 }],
    [() => cache.put(q("b.example"), pos), { success: 2, denial: 0 }],
    [() => cache.put(q("c.example"), neg), { success: 1, denial: 1 }],
    [() => cache.put(q("d.example"), neg), { success: 0, denial: 2 }],
  ];
  for (const [step, want] of cases) {
    step();
    assertEquals(cache.counts(), want);
  }
  cache.put(q("e.example"), pos);
  now = 35_000;
  assertEquals(cache.get(q("e.example")), null, "expired");
  assertEquals(cache.stale(q("e.example"))?.answers.map(formatRecord), [
    "www.example.org. 30 IN A 198.18.0.80",
  ]);
  now = 40_000;
  assertEquals(cache.stale(q("e.example")), null, "past the stale window");
});
