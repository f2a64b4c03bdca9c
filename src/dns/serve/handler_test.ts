import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { buildAnswerTable } from "../answer/fast.ts";
import { QueryHandler } from "./handler.ts";
import { applyStats, DnsStats } from "./stats.ts";
import { decodeMessage } from "../codec/decode.ts";
import { encodeMessage } from "../codec/encode.ts";
import { formatRecord, queryMessage, rcodeName, RRClass, RRType } from "../codec/records.ts";
import {
  cidr,
  echoForwarder,
  FIXTURE_REVERSE_CIDRS,
  fixtureZone,
  mapForwarder,
  MapUpstream,
} from "../../../tests/support/dns_fixture.ts";
import { ClientNamespaces } from "../answer/client_namespace.ts";
import { MetricsRegistry } from "../../observe/metrics.ts";

function handler(withZone = true) {
  const stats = new DnsStats();
  const h = new QueryHandler({
    clusterDomain: "cluster.local",
    reverseCidrs: FIXTURE_REVERSE_CIDRS,
    forwarder: echoForwarder(),
    stats,
  });
  if (withZone) {
    const zone = fixtureZone();
    h.setZone(zone, buildAnswerTable(zone));
  }
  return { h, stats };
}

function q(name: string, type: number = RRType.A, id = 7): Uint8Array {
  return encodeMessage(queryMessage([{ name, type, class: RRClass.IN }], { id }));
}

async function ask(h: QueryHandler, packet: Uint8Array, allowed: boolean, udp = true) {
  const out = await h.handle(packet, allowed, udp);
  if (!out) return null;
  const d = decodeMessage(out);
  if (!d.ok) throw new Error(d.error);
  return {
    rcode: rcodeName(d.message.rcode),
    ra: d.message.ra,
    answer: d.message.answers.map(formatRecord),
    bytes: out.length,
  };
}

interface Case {
  name: string;
  packet: Uint8Array;
  allowed: boolean;
  expect: { rcode: string; ra?: boolean; answer?: string[] } | null;
}

const CASES: Case[] = [
  {
    name: "cluster name for any client, RA only for allowed ones",
    packet: q("web.default.svc.cluster.local"),
    allowed: false,
    expect: {
      rcode: "NOERROR",
      ra: false,
      answer: ["web.default.svc.cluster.local. 30 IN A 198.19.0.10"],
    },
  },
  {
    name: "outside name from a client outside allowRecursion: REFUSED (never an open resolver)",
    packet: q("www.example.org"),
    allowed: false,
    expect: { rcode: "REFUSED", ra: false, answer: [] },
  },
  {
    name: "outside name from an allowed client is forwarded",
    packet: q("www.example.org"),
    allowed: true,
    expect: { rcode: "NOERROR", ra: true, answer: ["www.example.org. 60 IN A 198.18.9.9"] },
  },
  {
    name: "ExternalName chased upstream for an allowed client",
    packet: q("ext.default.svc.cluster.local"),
    allowed: true,
    expect: {
      rcode: "NOERROR",
      answer: [
        "ext.default.svc.cluster.local. 30 IN CNAME example.org.",
        "example.org. 60 IN A 198.18.9.9",
      ],
    },
  },
  {
    name: "garbage with a readable header: FORMERR, header only",
    packet: Uint8Array.from([0, 9, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0]),
    allowed: true,
    expect: { rcode: "FORMERR", answer: [] },
  },
  {
    name: "unknown opcode with a broken body: NOTIMP",
    packet: Uint8Array.from([0, 9, 0x70, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0]),
    allowed: true,
    expect: { rcode: "NOTIMP", answer: [] },
  },
  {
    name: "shorter than a header: dropped",
    packet: Uint8Array.from([1, 2, 3]),
    allowed: true,
    expect: null,
  },
  {
    name: "a response packet: dropped (no reflection loops)",
    packet: (() => {
      const p = q("web.default.svc.cluster.local");
      p[2] |= 0x80;
      return p;
    })(),
    allowed: true,
    expect: null,
  },
];

for (const c of CASES) {
  Deno.test(`QueryHandler: ${c.name}`, async () => {
    const { h } = handler();
    const got = await ask(h, c.packet, c.allowed);
    if (c.expect === null) {
      assertEquals(got, null);
      return;
    }
    assert(got);
    assertEquals(got.rcode, c.expect.rcode);
    if (c.expect.ra !== undefined) assertEquals(got.ra, c.expect.ra);
    if (c.expect.answer) assertEquals(got.answer, c.expect.answer);
    if (c.expect.rcode === "FORMERR" || c.expect.rcode === "NOTIMP") {
      assert(got.bytes <= c.packet.length);
    }
  });
}

Deno.test("QueryHandler: before the first zone, cluster names SERVFAIL and others still forward", async () => {
  const { h } = handler(false);
  assertEquals((await ask(h, q("web.default.svc.cluster.local"), true))?.rcode, "SERVFAIL");
  assertEquals((await ask(h, q("99.0.19.198.in-addr.arpa", RRType.PTR), true))?.rcode, "SERVFAIL");
  assertEquals((await ask(h, q("www.example.org"), true))?.rcode, "NOERROR");
});

Deno.test("QueryHandler: stats count types and rcodes, and reach the metrics registry", async () => {
  const { h, stats } = handler();
  await ask(h, q("web.default.svc.cluster.local"), true);
  await ask(h, q("nosuch.default.svc.cluster.local"), true);
  await ask(h, q("www.example.org"), true);
  await ask(h, q("www.example.org"), true);
  await ask(h, Uint8Array.from([1, 2]), true);
  stats.latency(0.0003, 4);
  const registry = new MetricsRegistry();
  const d = stats.drain();
  applyStats(registry, { ...d, counters: { ...d.counters, cacheHits: 1 } });
  const text = registry.render();
  assert(text.includes('svcgate_dns_requests_total{rcode="NOERROR",type="A"} 3'), text);
  assert(text.includes('svcgate_dns_requests_total{rcode="NXDOMAIN",type="A"} 1'), text);
  assert(text.includes("svcgate_dns_dropped_total 1"), text);
  assert(text.includes("svcgate_dns_fast_path_total 1"), text);
  assert(text.includes("svcgate_dns_cache_hits_total 1"), text);
  assert(text.includes('svcgate_dns_request_duration_seconds_bucket{le="0.0005"} 4'), text);
});

/** A handler that walks search paths, its upstream knowing www.example.org only. */
function searching(options: { fromEndpoints?: boolean; autopath?: boolean } = {}) {
  const stats = new DnsStats();
  const upstream = new MapUpstream({ "www.example.org": "198.18.9.1" });
  const clients = new ClientNamespaces({
    rules: [{ cidr: cidr("198.18.200.0/24"), namespace: "prod" }],
    fromEndpoints: options.fromEndpoints ?? false,
  });
  clients.setNodePods(new Map([["198.18.0.11", "default"], ["2001:db8::b", "prod"]]));
  const h = new QueryHandler({
    clusterDomain: "cluster.local",
    reverseCidrs: FIXTURE_REVERSE_CIDRS,
    forwarder: mapForwarder(upstream),
    stats,
    clients,
    autopath: options.autopath ?? true,
  });
  const zone = fixtureZone();
  h.setZone(zone, buildAnswerTable(zone));
  return { h, stats, upstream };
}

async function askFrom(h: QueryHandler, name: string, client: string | undefined) {
  const out = await h.handle(q(name), true, true, client);
  const d = decodeMessage(out!);
  if (!d.ok) throw new Error(d.error);
  return { rcode: rcodeName(d.message.rcode), answer: d.message.answers.map(formatRecord) };
}

Deno.test("QueryHandler: the search path is walked for clients whose namespace is known", async (t) => {
  const external = "www.example.org.default.svc.cluster.local";
  const found = [
    "www.example.org.default.svc.cluster.local. 60 IN CNAME www.example.org.",
    "www.example.org. 60 IN A 198.18.9.1",
  ];
  await t.step("this node's pod (Kubernetes mode)", async () => {
    const { h, stats } = searching();
    assertEquals(await askFrom(h, external, "198.18.0.11"), { rcode: "NOERROR", answer: found });
    assertEquals(stats.drain().counters.autopathSuccess, 1);
  });
  await t.step("an IPv4-mapped address from a dual-stack socket is the same pod", async () => {
    const { h } = searching();
    assertEquals((await askFrom(h, external, "::ffff:198.18.0.11")).answer, found);
  });
  await t.step("--client-namespace: prod's names are searched from prod", async () => {
    const { h } = searching();
    assertEquals((await askFrom(h, "web.default.prod.svc.cluster.local", "198.18.200.7")).answer, [
      "web.default.prod.svc.cluster.local. 30 IN CNAME web.default.svc.cluster.local.",
      "web.default.svc.cluster.local. 30 IN A 198.19.0.10",
    ]);
    // Another namespace's first suffix is not this client's: no walk.
    assertEquals((await askFrom(h, external, "198.18.200.7")).rcode, "NXDOMAIN");
  });
  await t.step("standalone: an endpoint's client is in its service's namespace", async () => {
    const { h } = searching({ fromEndpoints: true });
    // 198.18.0.50 is web.default's endpoint.
    assertEquals((await askFrom(h, external, "198.18.0.50")).answer, found);
  });
  await t.step(
    "an unknown client gets today's NXDOMAIN, and nothing is asked upstream",
    async () => {
      const { h, stats, upstream } = searching({ fromEndpoints: true });
      assertEquals(await askFrom(h, external, "198.18.77.7"), { rcode: "NXDOMAIN", answer: [] });
      assertEquals(await askFrom(h, external, undefined), { rcode: "NXDOMAIN", answer: [] });
      assertEquals(upstream.asked, []);
      assertEquals(stats.drain().counters.autopathSuccess, 0);
    },
  );
  await t.step("a walk that finds nothing is counted and gives the first answer", async () => {
    const { h, stats } = searching();
    assertEquals(
      await askFrom(h, "nosuch.default.svc.cluster.local", "198.18.0.11"),
      { rcode: "NXDOMAIN", answer: [] },
    );
    assertEquals(stats.drain().counters.autopathMiss, 1);
  });
  await t.step("--autopath=false: today's NXDOMAIN", async () => {
    const { h, upstream } = searching({ autopath: false });
    assertEquals((await askFrom(h, external, "198.18.0.11")).rcode, "NXDOMAIN");
    assertEquals(upstream.asked, []);
  });
});
