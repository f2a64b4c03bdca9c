/**
 * The forwarder as the node's resolver (issue 15): per-zone forwarding, serve-stale (RFC 8767),
 * prefetch, the upstreams replaced at run time, and the per-upstream counts.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { DnsCache, FAILURE_RECHECK_MS, STALE_TTL } from "./dns_cache.ts";
import { type ForwardZone, ForwardZones, parseForwardZone } from "./forward_zones.ts";
import { Forwarder, parseUpstream, type Upstream } from "./upstream.ts";
import { formatRecord, type Question, RRClass, RRType } from "../codec/records.ts";
import { record, upstreamReply } from "../../../tests/support/dns_fixture.ts";
import { type FakeAnswer, FakeTransport } from "../../../tests/support/fake_upstream.ts";

const GLOBAL = parseUpstream("198.18.0.53") as Upstream;
const q = (name: string): Question => ({ name, type: RRType.A, class: RRClass.IN });
const answer = (name: string, address: string, ttl = 60) =>
  upstreamReply({
    questions: [q(name)],
    answers: [record(name, RRType.A, { address }, ttl)],
  });

/** A forwarder on a clock the test moves, with an upstream the test switches off. */
function rig(options: { zones?: ForwardZone[]; staleMs?: number; prefetchHits?: number } = {}) {
  const clock = { now: 1_000_000 };
  const up = { alive: true };
  const exchanges: string[] = [];
  const t = new FakeTransport((server, m): FakeAnswer =>
    up.alive ? answer(m.questions[0].name, server.host) : "timeout"
  );
  const f = new Forwarder({
    upstreams: [GLOBAL],
    transport: t,
    timeoutMs: 200,
    ...(options.zones ? { zones: new ForwardZones(options.zones) } : {}),
    cache: new DnsCache({
      now: () => clock.now,
      staleMs: options.staleMs ?? 0,
      prefetchHits: options.prefetchHits ?? 0,
    }),
    onExchange: (to, rcode) => exchanges.push(`${to} ${rcode}`),
  });
  return { clock, up, t, f, exchanges };
}

const address = (r: Awaited<ReturnType<Forwarder["resolve"]>>) =>
  r.ok ? r.message.answers.map(formatRecord).join(" | ") : `failed`;

Deno.test("Forwarder: names under a forward zone go to its servers, the longest zone first", async () => {
  const zones = ["corp.example=198.18.5.53", "ad.corp.example=198.18.5.54:5353,198.18.5.55"]
    .map((z) => parseForwardZone(z) as ForwardZone);
  const { t, f, exchanges } = rig({ zones });
  const cases: [string, string][] = [
    ["www.corp.example", "198.18.5.53:53"],
    ["dc1.AD.corp.example", "198.18.5.54:5353"],
    ["www.example.org", "198.18.0.53:53"],
  ];
  for (const [name, server] of cases) {
    const r = await f.resolve(q(name));
    assert(r.ok, name);
    assertEquals(t.calls.at(-1)?.server, server, name);
  }
  assertEquals(exchanges, [
    "198.18.5.53:53 -1",
    "198.18.5.53:53 0",
    "198.18.5.54:5353 -1",
    "198.18.5.54:5353 0",
    "198.18.0.53:53 -1",
    "198.18.0.53:53 0",
  ]);
});

Deno.test("Forwarder: serve-stale: expired answers with TTL 30 while upstreams fail, then fresh", async () => {
  const { clock, up, t, f } = rig({ staleMs: 3_600_000 });
  assertEquals(
    address(await f.resolve(q("www.example.org"))),
    "www.example.org. 60 IN A 198.18.0.53",
  );
  up.alive = false;
  clock.now += 61_000;
  // Expired, upstream dead: the stale answer, TTL 30.
  assertEquals(
    address(await f.resolve(q("www.example.org"))),
    `www.example.org. ${STALE_TTL} IN A 198.18.0.53`,
  );
  assertEquals(f.stats.staleAnswers, 1);
  // A name never seen: a failure (SERVFAIL).
  assertEquals(address(await f.resolve(q("new.example.org"))), "failed");
  // Within the failure recheck, the stale answer goes out without asking again.
  const calls = t.calls.length;
  clock.now += FAILURE_RECHECK_MS - 1000;
  assertEquals(address(await f.resolve(q("www.example.org"))).includes(` ${STALE_TTL} IN A`), true);
  assertEquals(t.calls.length, calls, "no upstream question during the recheck period");
  // Upstream back after the recheck period: a fresh answer.
  up.alive = true;
  clock.now += 2000;
  assertEquals(
    address(await f.resolve(q("www.example.org"))),
    "www.example.org. 60 IN A 198.18.0.53",
  );
  assertEquals(f.stats.staleAnswers, 2);
});

Deno.test("Forwarder: serve-stale ends with its window, and is off at 0", async () => {
  for (
    const [staleMs, after, want] of [
      [3_600_000, 3_600_000 + 60_000 - 1, true],
      [3_600_000, 3_600_000 + 60_000, false],
      [0, 60_000, false],
    ] as const
  ) {
    const { clock, up, f } = rig({ staleMs });
    await f.resolve(q("www.example.org"));
    up.alive = false;
    clock.now += after;
    const r = await f.resolve(q("www.example.org"));
    assertEquals(r.ok, want, `stale ${staleMs} ms, ${after} ms later`);
  }
});

Deno.test("Forwarder: an often-asked name is prefetched before it expires", async () => {
  const { clock, t, f } = rig({ prefetchHits: 3 });
  await f.resolve(q("hot.example.org"));
  await f.resolve(q("cold.example.org"));
  for (let i = 0; i < 3; i++) await f.resolve(q("hot.example.org"));
  assertEquals(t.calls.length, 2);
  clock.now += 55_000; // 5 of 60 s left: under a tenth
  await f.resolve(q("hot.example.org"));
  await f.resolve(q("cold.example.org"));
  await new Promise((r) => setTimeout(r, 10));
  assertEquals(t.calls.map((c) => c.name), [
    "hot.example.org",
    "cold.example.org",
    "hot.example.org",
  ]);
  assertEquals(f.stats.prefetches, 1);
  // The refreshed answer is fresh past the old expiry.
  clock.now += 10_000;
  const r = await f.resolve(q("hot.example.org"));
  assert(r.ok && r.cached, "answered from the refreshed entry");
  assertEquals(t.calls.length, 3);
});

Deno.test("Forwarder: setUpstreams replaces the global servers, zones keep theirs", async () => {
  const zones = [parseForwardZone("corp.example=198.18.5.53") as ForwardZone];
  const { t, f } = rig({ zones });
  f.setUpstreams([parseUpstream("198.18.0.54") as Upstream]);
  await f.resolve(q("www.example.org"));
  await f.resolve(q("www.corp.example"));
  assertEquals(t.calls.map((c) => c.server), ["198.18.0.54:53", "198.18.5.53:53"]);
});

Deno.test("Forwarder: negative hits are counted apart (CoreDNS's denial cache)", async () => {
  const t = new FakeTransport(() =>
    upstreamReply({
      rcode: 3,
      authority: [record("example.org", RRType.SOA, {
        mname: "ns.example.org",
        rname: "h.example.org",
        serial: 1,
        refresh: 1,
        retry: 1,
        expire: 1,
        minimum: 60,
      }, 60)],
    })
  );
  const cache = new DnsCache({ now: () => 0 });
  const f = new Forwarder({ upstreams: [GLOBAL], transport: t, cache });
  await f.resolve(q("www.example.org"));
  await f.resolve(q("www.example.org"));
  assertEquals([f.stats.cacheHits, f.stats.cacheHitsNegative, f.stats.cacheMisses], [1, 1, 1]);
  assertEquals(f.cacheCounts(), { success: 0, denial: 1 });
});
