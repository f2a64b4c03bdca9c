import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { DnsCache } from "./dns_cache.ts";
import { Forwarder, parseUpstream, type Upstream } from "./upstream.ts";
import { RRClass, RRType } from "../codec/records.ts";
import { record, upstreamReply } from "../../../tests/support/dns_fixture.ts";
import { FakeTransport } from "../../../tests/support/fake_upstream.ts";

Deno.test("parseUpstream: forms and errors", () => {
  assertEquals(parseUpstream("198.18.0.53"), {
    host: "198.18.0.53",
    port: 53,
    text: "198.18.0.53:53",
  });
  assertEquals(parseUpstream("198.18.0.53:5353"), {
    host: "198.18.0.53",
    port: 5353,
    text: "198.18.0.53:5353",
  });
  assertEquals(parseUpstream("[2001:db8::53]:5300"), {
    host: "2001:db8::53",
    port: 5300,
    text: "[2001:db8::53]:5300",
  });
  assertEquals(parseUpstream("2001:db8::53"), {
    host: "2001:db8::53",
    port: 53,
    text: "[2001:db8::53]:53",
  });
  assertEquals(
    parseUpstream("dns.example:53"),
    'Cannot parse upstream "dns.example:53": "dns.example" is not an IP address',
  );
  assertEquals(
    parseUpstream("198.18.0.53:99999"),
    'Cannot parse upstream "198.18.0.53:99999": port "99999" is not 1-65535',
  );
});

const U1 = parseUpstream("198.18.0.53") as Upstream;
const U2 = parseUpstream("198.18.0.54") as Upstream;
const Q = { name: "www.example.org", type: RRType.A, class: RRClass.IN };
const GOOD = upstreamReply({
  answers: [record("www.example.org", RRType.A, { address: "198.18.0.80" }, 60)],
});

Deno.test("Forwarder: answers, then serves from the cache", async () => {
  const t = new FakeTransport(() => GOOD);
  const f = new Forwarder({ upstreams: [U1], transport: t, cache: new DnsCache({ now: () => 0 }) });
  const r1 = await f.resolve(Q);
  assert(r1.ok && !r1.cached);
  const r2 = await f.resolve(Q);
  assert(r2.ok && r2.cached);
  assertEquals(t.calls.length, 1);
  assertEquals(f.stats.cacheHits, 1);
});

Deno.test("Forwarder: a truncated UDP answer is retried over TCP", async () => {
  const t = new FakeTransport((_, __, tcp) => (tcp ? GOOD : upstreamReply({ tc: true })));
  const f = new Forwarder({ upstreams: [U1], transport: t, cache: new DnsCache({ now: () => 0 }) });
  const r = await f.resolve(Q);
  assert(r.ok);
  assertEquals(t.calls.map(({ server, tcp }) => ({ server, tcp })), [
    { server: "198.18.0.53:53", tcp: false },
    { server: "198.18.0.53:53", tcp: true },
  ]);
});

Deno.test("Forwarder: a dead first upstream falls over to the second within the deadline", async () => {
  const t = new FakeTransport((s) => (s.text === U1.text ? "timeout" : GOOD));
  const f = new Forwarder({
    upstreams: [U1, U2],
    transport: t,
    timeoutMs: 600,
    cache: new DnsCache({ now: () => 0 }),
  });
  const t0 = Date.now();
  const r = await f.resolve(Q);
  assert(r.ok);
  assert(Date.now() - t0 < 600, `took ${Date.now() - t0} ms`);
});

Deno.test("Forwarder: all upstreams dead gives a failure within the timeout, never a hang", async () => {
  const t = new FakeTransport(() => "timeout");
  const f = new Forwarder({
    upstreams: [U1],
    transport: t,
    timeoutMs: 400,
    cache: new DnsCache({ now: () => 0 }),
  });
  const t0 = Date.now();
  const r = await f.resolve(Q);
  assert(!r.ok);
  const took = Date.now() - t0;
  assert(took < 700, `took ${took} ms`);
  assert(r.error.includes('Cannot resolve "www.example.org" upstream'), r.error);
  assertEquals(f.stats.upstreamFailures, 1);
});

Deno.test("Forwarder: SERVFAIL and garbage from upstream are failures, not cached", async () => {
  let n = 0;
  const t = new FakeTransport(() => (n++ % 2 === 0 ? upstreamReply({ rcode: 2 }) : "garbage"));
  const f = new Forwarder({
    upstreams: [U1],
    transport: t,
    timeoutMs: 300,
    cache: new DnsCache({ now: () => 0 }),
  });
  const r = await f.resolve(Q);
  assert(!r.ok);
  assert(r.error.includes("malformed") && r.error.includes("rcode 2"), r.error);
  await f.resolve(Q);
  assertEquals(f.stats.cacheHits, 0);
});

Deno.test("Forwarder: an answer to another question is rejected", async () => {
  const t = new FakeTransport(() =>
    upstreamReply({ questions: [{ name: "evil.example", type: 1, class: 1 }] })
  );
  const f = new Forwarder({
    upstreams: [U1],
    transport: t,
    timeoutMs: 300,
    cache: new DnsCache({ now: () => 0 }),
  });
  const r = await f.resolve(Q);
  assert(!r.ok && r.error.includes("answered another question"), r.ok ? "" : r.error);
});

Deno.test("Forwarder: identical questions in flight share one upstream query", async () => {
  const t = new FakeTransport(() => GOOD);
  const f = new Forwarder({ upstreams: [U1], transport: t, cache: new DnsCache({ now: () => 0 }) });
  const all = await Promise.all([f.resolve(Q), f.resolve(Q), f.resolve(Q)]);
  assert(all.every((r) => r.ok));
  assertEquals(t.calls.length, 1);
});

Deno.test("Forwarder: no upstreams configured is an immediate failure", async () => {
  const f = new Forwarder({ upstreams: [], transport: new FakeTransport(() => GOOD) });
  const r = await f.resolve(Q);
  assert(!r.ok && r.error === "no upstream resolvers are configured");
});
