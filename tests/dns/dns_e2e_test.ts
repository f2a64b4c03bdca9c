/**
 * End-to-end DNS tests: a real DnsServer (worker + FFI UDP by default) on 127.0.0.1 and a high
 * port, queried with the real `dig` and `kdig` over UDP and TCP; truncation then TCP retry;
 * forwarding to a real knotd on loopback (cache, negative cache, TC from upstream, upstream
 * gone, upstream never there); REFUSED for a client outside allowRecursion (dig -b 127.0.0.2);
 * SERVFAIL before the first publish; the portable transports; and a fuzz run of 100,000+
 * generated and mutated packets at the running server, which must still answer correctly.
 *
 * Traffic stays on loopback. Missing tools skip with the reason, or fail under CI=true.
 * @module
 */

import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import dgram from "node:dgram";
import { DnsServer } from "../../src/dns/serve/server.ts";
import type { DnsServerOptions } from "../../src/dns/serve/engine_setup.ts";
import { ModelStore } from "../../src/model/store.ts";
import type { Snapshot } from "../../src/model/snapshot.ts";
import { MetricsRegistry } from "../../src/observe/metrics.ts";
import { decodeMessage } from "../../src/dns/codec/decode.ts";
import {
  bigHeadlessSnapshot,
  cidr,
  endpointSet,
  ep,
  FIXTURE_REVERSE_CIDRS,
  fixtureSnapshot,
  makeService,
} from "../support/dns_fixture.ts";
import { fuzzPackets } from "../support/dns_fuzz.ts";
import {
  freePort,
  queryPacket,
  type Started,
  startKnot,
  startSvcgate,
  udpExchange,
  udpQuery,
  type ZoneEntry,
} from "../bench/dns_helpers.ts";
import { ip } from "../support/model_values.ts";

const CI = Deno.env.get("CI") === "true";

async function missingTools(tools: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const t of tools) {
    const r = await new Deno.Command("sh", {
      args: ["-c", `command -v ${t}`],
      stdout: "null",
      stderr: "null",
    }).output();
    if (!r.success) out.push(t);
  }
  return out;
}

/** Registers a test that needs tools: skipped with the reason, or failing under CI=true. */
async function e2e(name: string, tools: string[], fn: () => Promise<void>): Promise<void> {
  const missing = await missingTools(tools);
  if (missing.length > 0 && !CI) {
    console.warn(`skipping "${name}": ${missing.join(", ")} not installed`);
  }
  Deno.test({
    name,
    ignore: missing.length > 0 && !CI,
    sanitizeOps: false,
    sanitizeResources: false,
    fn: async () => {
      if (missing.length > 0) {
        throw new Error(`Cannot run "${name}": ${missing.join(", ")} not installed (CI=true)`);
      }
      await fn();
    },
  });
}

const LOOPBACK_ONLY = [cidr("127.0.0.1/32")];

async function startServer(
  over: Partial<DnsServerOptions> = {},
): Promise<{ server: DnsServer; port: number; metrics: MetricsRegistry }> {
  const metrics = new MetricsRegistry();
  for (let attempt = 0;; attempt++) {
    const port = await freePort();
    const server = new DnsServer({
      bind: { hostname: "127.0.0.1", port },
      clusterDomain: "cluster.local",
      ttl: 30,
      reverseCidrs: FIXTURE_REVERSE_CIDRS,
      upstreams: [],
      allowRecursion: LOOPBACK_ONLY,
      metrics,
      ...over,
    });
    try {
      await server.start();
      return { server, port: server.addr!.udpPort, metrics };
    } catch (e) {
      await server.stop();
      if (attempt >= 3) throw e;
    }
  }
}

interface ToolAnswer {
  status: string;
  flags: string[];
  answer: string[];
  authority: string[];
  stdout: string;
  ms: number;
}

/** Normalises a record line; the SOA serial (time based) becomes SERIAL. */
function normalise(line: string): string {
  const t = line.trim().split(/\s+/);
  if (t[3] === "SOA" && t.length >= 7) t[6] = "SERIAL";
  return t.join(" ");
}

async function runTool(
  tool: "dig" | "kdig",
  port: number,
  name: string,
  type: string,
  opts: { tcp?: boolean; extra?: string[] } = {},
): Promise<ToolAnswer> {
  const args = tool === "dig"
    ? [
      `@127.0.0.1`,
      "-p",
      String(port),
      "+noall",
      "+comments",
      "+answer",
      "+authority",
      "+tries=1",
      "+time=5",
      ...(opts.tcp ? ["+tcp"] : []),
      ...(opts.extra ?? []),
      name,
      type,
    ]
    : [
      `@127.0.0.1`,
      "-p",
      String(port),
      "+noall",
      "+header",
      "+answer",
      "+authority",
      "+retry=0",
      "+time=5",
      ...(opts.tcp ? ["+tcp"] : []),
      ...(opts.extra ?? []),
      name,
      type,
    ];
  const t0 = performance.now();
  const out = await new Deno.Command(tool, { args, stdout: "piped", stderr: "piped" }).output();
  const ms = performance.now() - t0;
  const stdout = new TextDecoder().decode(out.stdout);
  const status = /status: ([A-Z]+)/.exec(stdout)?.[1] ?? "NONE";
  const flags = (/[Ff]lags: ([a-z ]*)[;,]/.exec(stdout)?.[1] ?? "").trim().split(/\s+/).filter(
    Boolean,
  );
  const ancount = Number(/ANSWER: (\d+)/.exec(stdout)?.[1] ?? "0");
  const records = stdout.split("\n").filter((l) => l.trim() !== "" && !l.startsWith(";")).map(
    normalise,
  );
  return {
    status,
    flags,
    answer: records.slice(0, ancount),
    authority: records.slice(ancount),
    stdout,
    ms,
  };
}

/** kdig prints owner names in lower case (its own display), so its expectations are lowered. */
function expectFor(tool: "dig" | "kdig", lines: string[]): string[] {
  if (tool === "dig") return lines;
  // kdig prints names in lower case (dig shows the case on the wire): owners and targets.
  return lines.map((l) => {
    const f = l.split(" ");
    f[0] = f[0].toLowerCase();
    if (["SRV", "CNAME", "PTR", "NS"].includes(f[3])) f[f.length - 1] = f.at(-1)!.toLowerCase();
    return f.join(" ");
  });
}

/**
 * An answer section to compare: A, AAAA and MX answers rotate from one answer to the next (as
 * CoreDNS's loadbalance plugin; their order is checked in answer/fast_test.ts and
 * answer/rotate_test.ts), so they compare as sets; every other type in order.
 */
function comparable(lines: string[], type: string): string[] {
  return ["A", "AAAA", "MX"].includes(type) ? [...lines].sort() : lines;
}

const SOA =
  "cluster.local. 30 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. SERIAL 7200 1800 86400 30";

interface Row {
  name: string;
  type: string;
  status: string;
  answer: string[];
  authority?: string[];
}

const ROWS: Row[] = [
  {
    name: "web.default.svc.cluster.local",
    type: "A",
    status: "NOERROR",
    answer: ["web.default.svc.cluster.local. 30 IN A 198.19.0.10"],
  },
  {
    name: "web.default.svc.cluster.local",
    type: "AAAA",
    status: "NOERROR",
    answer: ["web.default.svc.cluster.local. 30 IN AAAA 2001:db8:ffff::10"],
  },
  {
    name: "WEB.Default.svc.Cluster.Local",
    type: "A",
    status: "NOERROR",
    answer: ["WEB.Default.svc.Cluster.Local. 30 IN A 198.19.0.10"],
  },
  {
    name: "_http._tcp.web.default.svc.cluster.local",
    type: "SRV",
    status: "NOERROR",
    answer: [
      "_http._tcp.web.default.svc.cluster.local. 30 IN SRV 0 100 80 web.default.svc.cluster.local.",
    ],
  },
  {
    name: "db.default.svc.cluster.local",
    type: "A",
    status: "NOERROR",
    answer: [
      "db.default.svc.cluster.local. 30 IN A 198.18.0.101",
      "db.default.svc.cluster.local. 30 IN A 198.18.0.102",
      "db.default.svc.cluster.local. 30 IN A 198.18.0.103",
    ],
  },
  {
    name: "db-0.db.default.svc.cluster.local",
    type: "AAAA",
    status: "NOERROR",
    answer: ["db-0.db.default.svc.cluster.local. 30 IN AAAA 2001:db8::a1"],
  },
  {
    name: "_pg._tcp.db.default.svc.cluster.local",
    type: "SRV",
    status: "NOERROR",
    answer: [
      "_pg._tcp.db.default.svc.cluster.local. 30 IN SRV 0 25 5432 db-0.db.default.svc.cluster.local.",
      "_pg._tcp.db.default.svc.cluster.local. 30 IN SRV 0 25 5432 db-1.db.default.svc.cluster.local.",
      "_pg._tcp.db.default.svc.cluster.local. 30 IN SRV 0 25 5432 198-18-0-103.db.default.svc.cluster.local.",
    ],
  },
  // What CoreDNS answers beyond the spec (svcgate's default; src/dns/answer/answer_test.ts
  // has each with its --dns-strict-spec counterpart).
  {
    name: "web.default.svc.cluster.local",
    type: "SRV",
    status: "NOERROR",
    answer: [
      "web.default.svc.cluster.local. 30 IN SRV 0 25 80 web.default.svc.cluster.local.",
      "web.default.svc.cluster.local. 30 IN SRV 0 25 53 web.default.svc.cluster.local.",
    ],
  },
  {
    name: "_HtTp._TcP.wEb.DeFaUlT.SvC.cLuStEr.LoCaL",
    type: "SRV",
    status: "NOERROR",
    answer: [
      "_HtTp._TcP.wEb.DeFaUlT.SvC.cLuStEr.LoCaL. 30 IN SRV 0 100 80 web.default.svc.cLuStEr.LoCaL.",
    ],
  },
  {
    name: "50.0.18.198.in-addr.arpa",
    type: "PTR",
    status: "NOERROR",
    answer: ["50.0.18.198.in-addr.arpa. 30 IN PTR 198-18-0-50.web.default.svc.cluster.local."],
  },
  {
    name: "named-0.named.default.svc.cluster.local",
    type: "A",
    status: "NOERROR",
    answer: ["named-0.named.default.svc.cluster.local. 30 IN A 198.18.0.60"],
  },
  {
    name: "101.0.18.198.in-addr.arpa",
    type: "PTR",
    status: "NOERROR",
    answer: [
      "101.0.18.198.in-addr.arpa. 30 IN PTR db-0.db.default.svc.cluster.local.",
      "101.0.18.198.in-addr.arpa. 30 IN PTR db-0.db-alt.default.svc.cluster.local.",
    ],
  },
  {
    name: "10.0.19.198.in-addr.arpa",
    type: "PTR",
    status: "NOERROR",
    answer: ["10.0.19.198.in-addr.arpa. 30 IN PTR web.default.svc.cluster.local."],
  },
  {
    name: "ext.default.svc.cluster.local",
    type: "CNAME",
    status: "NOERROR",
    answer: ["ext.default.svc.cluster.local. 30 IN CNAME example.org."],
  },
  {
    name: "dns-version.cluster.local",
    type: "TXT",
    status: "NOERROR",
    answer: ['dns-version.cluster.local. 28800 IN TXT "1.1.0"'],
  },
  { name: "cluster.local", type: "SOA", status: "NOERROR", answer: [SOA] },
  {
    name: "cluster.local",
    type: "NS",
    status: "NOERROR",
    answer: ["cluster.local. 30 IN NS ns.dns.cluster.local."],
  },
  {
    name: "web.default.svc.cluster.local",
    type: "TXT",
    status: "NOERROR",
    answer: [],
    authority: [SOA],
  },
  {
    name: "nosuch.default.svc.cluster.local",
    type: "A",
    status: "NXDOMAIN",
    answer: [],
    authority: [SOA],
  },
  {
    name: "web.nope.svc.cluster.local",
    type: "A",
    status: "NXDOMAIN",
    answer: [],
    authority: [SOA],
  },
  {
    name: "empty.default.svc.cluster.local",
    type: "A",
    status: "NXDOMAIN",
    answer: [],
    authority: [SOA],
  },
  {
    name: "1-2-3-4.default.pod.cluster.local",
    type: "A",
    status: "NOERROR",
    answer: ["1-2-3-4.default.pod.cluster.local. 30 IN A 1.2.3.4"],
  },
  { name: "cluster.local", type: "AXFR", status: "REFUSED", answer: [] },
  { name: "example.org", type: "A", status: "SERVFAIL", answer: [] },
];

await e2e(
  "dns e2e: dig and kdig over UDP and TCP get the spec's answers",
  ["dig", "kdig"],
  async () => {
    const { server, port, metrics } = await startServer();
    try {
      server.publish(fixtureSnapshot());
      await server.settled();
      for (const row of ROWS) {
        for (const tool of ["dig", "kdig"] as const) {
          for (const tcp of [false, true]) {
            if (row.type === "AXFR" && tool === "kdig") continue; // kdig turns AXFR into a TCP transfer session
            const got = await runTool(tool, port, row.name, row.type, { tcp });
            const what = `${tool} ${tcp ? "TCP" : "UDP"} ${row.name} ${row.type}`;
            assertEquals(got.status, row.status, `${what}\n${got.stdout}`);
            assertEquals(
              comparable(got.answer, row.type),
              comparable(expectFor(tool, row.answer), row.type),
              what,
            );
            if (row.authority) assertEquals(got.authority, row.authority, what);
            if (row.status === "NOERROR" && row.answer.length > 0) {
              assert(
                got.flags.includes("aa"),
                `${what}: no AA flag`,
              );
            }
          }
        }
      }
      await server.flushMetrics();
      const text = metrics.render();
      assert(/svcgate_dns_requests_total\{rcode="NOERROR",type="A"\} \d+/.test(text), text);
      assert(/svcgate_dns_fast_path_total [1-9]/.test(text), text);
    } finally {
      await server.stop();
    }
  },
);

await e2e("dns e2e: a large headless answer is truncated over UDP and complete over TCP", [
  "dig",
  "kdig",
], async () => {
  const { server, port, metrics } = await startServer();
  try {
    server.publish(bigHeadlessSnapshot(200));
    await server.settled();
    // Truncated: TC and the records that fit in 512 bytes (musl <= 1.2.3 uses them, never
    // retrying over TCP), whatever buffer the client offers.
    const plainQuery = queryPacket("big.default.svc.cluster.local", "A");
    const plainReply = (await udpExchange(port, plainQuery))!;
    const plain = decodeMessage(plainReply);
    assert(plain.ok);
    assertEquals(plain.message.tc, true);
    assertEquals(plain.message.answers.length, 29);
    assert(plainReply.length <= 512, `reply of ${plainReply.length} bytes`);
    for (const size of [700, 1232, 4096]) {
      // The client's buffer is honoured up to our 1232; the answer does not fit in any of them.
      const query = queryPacket("big.default.svc.cluster.local", "A", { edns: size });
      const reply = await udpExchange(port, query);
      assert(reply && reply.length <= 512, `reply of ${reply?.length} bytes to ${size}`);
      const m = decodeMessage(reply!);
      assert(m.ok && m.message.tc && m.message.edns?.udpSize === 1232);
      assertEquals(m.message.answers.length, 28);
    }
    // ANY, the amplification query, is truncated to the question: never larger than the query.
    const anyQuery = queryPacket("big.default.svc.cluster.local", "ANY");
    const anyReply = (await udpExchange(port, anyQuery))!;
    const anyMessage = decodeMessage(anyReply);
    assert(anyMessage.ok && anyMessage.message.tc);
    assertEquals(anyMessage.message.answers.length, 0);
    assert(anyReply.length <= anyQuery.length, `ANY reply of ${anyReply.length} bytes`);
    // dig and kdig see TC, retry over TCP, and get all 200 records.
    const dig = await runTool("dig", port, "big.default.svc.cluster.local", "A", {
      extra: ["+noedns"],
    });
    assert(dig.stdout.includes("Truncated, retrying in TCP mode"), dig.stdout);
    assertEquals(dig.answer.length, 200);
    const kdig = await runTool("kdig", port, "big.default.svc.cluster.local", "A");
    assert(
      /truncated reply .* retrying over TCP/.test(await kdigStderr(port)),
      "kdig did not report truncation",
    );
    assertEquals(kdig.answer.length, 200);
    // dig +ignore shows the truncated UDP reply itself.
    const ignored = await runTool("dig", port, "big.default.svc.cluster.local", "A", {
      extra: ["+ignore", "+noedns"],
    });
    assert(ignored.flags.includes("tc"), ignored.stdout);
    await server.flushMetrics();
    assert(/svcgate_dns_truncated_total [1-9]/.test(metrics.render()));
  } finally {
    await server.stop();
  }
});

async function kdigStderr(port: number): Promise<string> {
  const out = await new Deno.Command("kdig", {
    args: [
      "@127.0.0.1",
      "-p",
      String(port),
      "+noall",
      "+answer",
      "big.default.svc.cluster.local",
      "A",
    ],
    stdout: "null",
    stderr: "piped",
  }).output();
  return new TextDecoder().decode(out.stderr);
}

const UPSTREAM_ENTRIES: ZoneEntry[] = [
  { name: "www.example.test", type: "A", value: "198.18.5.5" },
  { name: "txt.example.test", type: "TXT", value: "hello from knot" },
  ...Array.from(
    { length: 100 },
    (_, i) => ({ name: "many.example.test", type: "A" as const, value: `198.18.6.${i}` }),
  ),
];

function snapshotWithExternalName(): Snapshot {
  const store = new ModelStore();
  store.setService(
    makeService({ namespace: "default", name: "web", clusterIPs: [ip("198.19.0.10")] }),
  );
  store.setService(
    makeService({
      namespace: "default",
      name: "extweb",
      type: "ExternalName",
      externalName: "www.example.test",
    }),
  );
  store.setEndpointSet(endpointSet("default", "web", [], []));
  store.setNamespaces(["default"]);
  return store.commit().snapshot;
}

await e2e(
  "dns e2e: forwarding to a real upstream (knotd) with cache, TC fallback and upstream loss",
  ["dig", "knotd"],
  async () => {
    const knotPort = await freePort();
    let knot: Started | null = await startKnot({
      origin: "example.test",
      entries: UPSTREAM_ENTRIES,
      port: knotPort,
      ttl: 30,
      negTtl: 60,
    });
    const { server, port, metrics } = await startServer({ upstreams: [`127.0.0.1:${knotPort}`] });
    try {
      server.publish(snapshotWithExternalName());
      await server.settled();
      const www = await runTool("dig", port, "www.example.test", "A");
      assertEquals(www.status, "NOERROR");
      assertEquals(www.answer, ["www.example.test. 30 IN A 198.18.5.5"]);
      assert(www.flags.includes("ra") && !www.flags.includes("aa"), www.stdout);
      const txt = await runTool("kdig", port, "txt.example.test", "TXT");
      assertEquals(txt.answer, ['txt.example.test. 30 IN TXT "hello from knot"']);
      const nx = await runTool("dig", port, "nosuch.example.test", "A");
      assertEquals(nx.status, "NXDOMAIN");
      assertEquals(
        nx.authority.map((l) => l.replace(/ \d+ IN/, " TTL IN")),
        [
          "example.test. TTL IN SOA ns.example.test. hostmaster.example.test. SERIAL 7200 1800 86400 60",
        ],
      );
      // 100 A records do not fit 1232 bytes: knot sets TC, svcgate retries over TCP, the client gets all.
      const many = await runTool("dig", port, "many.example.test", "A", { tcp: true });
      assertEquals(many.answer.length, 100);
      // ExternalName to an outside name is chased through the upstream.
      const ext = await runTool("dig", port, "extweb.default.svc.cluster.local", "A");
      assertEquals(ext.answer, [
        "extweb.default.svc.cluster.local. 30 IN CNAME www.example.test.",
        "www.example.test. 30 IN A 198.18.5.5",
      ]);

      // The upstream goes away: cached answers (positive and negative) keep coming.
      await knot.stop();
      knot = null;
      const cached = await runTool("dig", port, "www.example.test", "A");
      assertEquals(cached.status, "NOERROR");
      assertEquals(cached.answer.map((l) => l.replace(/ \d+ IN /, " TTL IN ")), [
        "www.example.test. TTL IN A 198.18.5.5",
      ]);
      const ttl = Number(cached.answer[0].split(" ")[1]);
      assert(ttl <= 30 && ttl >= 20, `cached TTL ${ttl}`);
      assertEquals((await runTool("dig", port, "nosuch.example.test", "A")).status, "NXDOMAIN");
      // Something never asked: SERVFAIL, quickly.
      const gone = await runTool("dig", port, "other.example.test", "A");
      assertEquals(gone.status, "SERVFAIL");
      assert(gone.ms < 2500, `SERVFAIL took ${gone.ms.toFixed(0)} ms`);

      await server.flushMetrics();
      const text = metrics.render();
      const value = (name: string) =>
        Number(new RegExp(`^${name} (\\d+)`, "m").exec(text)?.[1] ?? "0");
      assert(value("svcgate_dns_cache_hits_total") >= 2, text);
      assert(value("svcgate_dns_cache_misses_total") >= 5, text);
      assert(value("svcgate_dns_upstream_failures_total") >= 1, text);
    } finally {
      await knot?.stop();
      await server.stop();
    }
  },
);

await e2e(
  "dns e2e: an upstream that is not there costs a quick SERVFAIL, never a hang",
  ["dig"],
  async () => {
    const deadPort = await freePort();
    const { server, port } = await startServer({ upstreams: [`127.0.0.1:${deadPort}`] });
    try {
      server.publish(fixtureSnapshot());
      await server.settled();
      const got = await runTool("dig", port, "www.example.test", "A");
      assertEquals(got.status, "SERVFAIL");
      assert(got.ms < 2500, `SERVFAIL took ${got.ms.toFixed(0)} ms`);
      // Cluster names are unaffected.
      assertEquals(
        (await runTool("dig", port, "web.default.svc.cluster.local", "A")).status,
        "NOERROR",
      );
    } finally {
      await server.stop();
    }
  },
);

await e2e(
  "dns e2e: recursion is refused to clients outside allowRecursion (not an open resolver)",
  ["dig", "knotd"],
  async () => {
    const knotPort = await freePort();
    const knot = await startKnot({
      origin: "example.test",
      entries: UPSTREAM_ENTRIES.slice(0, 2),
      port: knotPort,
    });
    // Listen on all of 127/8's wildcard so 127.0.0.2 can send; only 127.0.0.1 may recurse.
    const { server, port } = await startServer({ upstreams: [`127.0.0.1:${knotPort}`] });
    try {
      server.publish(fixtureSnapshot());
      await server.settled();
      const outsider = await runTool("dig", port, "www.example.test", "A", {
        extra: ["-b", "127.0.0.2"],
      });
      assertEquals(outsider.status, "REFUSED", outsider.stdout);
      assert(!outsider.flags.includes("ra"), outsider.stdout);
      const outsiderCluster = await runTool("dig", port, "web.default.svc.cluster.local", "A", {
        extra: ["-b", "127.0.0.2"],
      });
      assertEquals(outsiderCluster.status, "NOERROR");
      assertEquals(outsiderCluster.answer, ["web.default.svc.cluster.local. 30 IN A 198.19.0.10"]);
      const insider = await runTool("dig", port, "www.example.test", "A", {
        extra: ["-b", "127.0.0.1"],
      });
      assertEquals(insider.status, "NOERROR");
      // Over TCP too.
      const outsiderTcp = await runTool("dig", port, "www.example.test", "A", {
        tcp: true,
        extra: ["-b", "127.0.0.2"],
      });
      assertEquals(outsiderTcp.status, "REFUSED");
    } finally {
      await knot.stop();
      await server.stop();
    }
  },
);

await e2e(
  "dns e2e: SERVFAIL before the first publish, answers right after it, updates on the next",
  ["dig"],
  async () => {
    const { server, port } = await startServer();
    try {
      const before = await runTool("dig", port, "web.default.svc.cluster.local", "A");
      assertEquals(before.status, "SERVFAIL");
      assertEquals(
        (await runTool("dig", port, "nosuch.default.svc.cluster.local", "A")).status,
        "SERVFAIL",
      );
      server.publish(fixtureSnapshot());
      await server.settled();
      assertEquals((await runTool("dig", port, "web.default.svc.cluster.local", "A")).answer, [
        "web.default.svc.cluster.local. 30 IN A 198.19.0.10",
      ]);
      const store = new ModelStore();
      store.setService(
        makeService({ namespace: "default", name: "web", clusterIPs: [ip("198.19.0.99")] }),
      );
      store.setNamespaces(["default"]);
      server.publish(store.commit().snapshot);
      await server.settled();
      assertEquals((await runTool("dig", port, "web.default.svc.cluster.local", "A")).answer, [
        "web.default.svc.cluster.local. 30 IN A 198.19.0.99",
      ]);
      assertEquals(
        (await runTool("dig", port, "db.default.svc.cluster.local", "A")).status,
        "NXDOMAIN",
      );
    } finally {
      await server.stop();
    }
  },
);

await e2e(
  "dns e2e: the search path on the server, in-process and in workers, from rules and node pods",
  ["dig"],
  async () => {
    const cases: [string, Partial<DnsServerOptions>, boolean][] = [
      ["in-process, --client-namespace", {
        workers: 0,
        answers: {
          autopath: true,
          clientNamespaces: [{ cidr: cidr("127.0.0.0/8"), namespace: "prod" }],
        },
      }, false],
      ["one worker, --client-namespace", {
        workers: 1,
        answers: {
          autopath: true,
          clientNamespaces: [{ cidr: cidr("127.0.0.0/8"), namespace: "prod" }],
        },
      }, false],
      ["in-process, this node's pods", { workers: 0, answers: { autopath: true } }, true],
      ["two workers, this node's pods", { workers: 2, answers: { autopath: true } }, true],
    ];
    for (const [what, over, pods] of cases) {
      const { server, port, metrics } = await startServer(over);
      try {
        server.publish(fixtureSnapshot());
        await server.settled();
        if (pods) {
          server.setNodePods(new Map([["127.0.0.1", "prod"]]));
          // The pods reach a worker by message, a query by UDP: wait until every worker has them.
          const deadline = Date.now() + 5000;
          let streak = 0;
          while (streak < 8 && Date.now() < deadline) {
            const r = await runTool("dig", port, "web.default.prod.svc.cluster.local", "A");
            streak = r.status === "NOERROR" ? streak + 1 : 0;
          }
        }
        for (let i = 0; i < 4; i++) {
          // Several asks, so that both workers are likely hit.
          const got = await runTool("dig", port, "web.default.prod.svc.cluster.local", "A");
          assertEquals(got.status, "NOERROR", what);
          assertEquals(got.answer, [
            "web.default.prod.svc.cluster.local. 30 IN CNAME web.default.svc.cluster.local.",
            "web.default.svc.cluster.local. 30 IN A 198.19.0.10",
          ], what);
        }
        await server.flushMetrics();
        const hits = Number(
          /^svcgate_dns_autopath_success_total (\d+)/m.exec(metrics.render())?.[1],
        );
        assert(hits >= 4, `${what}: ${hits} autopath hits counted`);
      } finally {
        await server.stop();
      }
    }
  },
);

await e2e("dns e2e: portable transports (node:dgram, in-process, 2 workers) answer the same", [
  "dig",
  "kdig",
], async () => {
  for (const over of [{ udpTransport: "node" as const }, { workers: 0 }, { workers: 2 }]) {
    const { server, port } = await startServer(over);
    try {
      assertEquals(server.addr?.udpMode, over.udpTransport === "node" ? "node" : "ffi");
      server.publish(fixtureSnapshot());
      await server.settled();
      for (const row of ROWS.slice(0, 8)) {
        for (const tcp of [false, true]) {
          const tool = tcp ? "kdig" : "dig";
          const got = await runTool(tool, port, row.name, row.type, { tcp });
          assertEquals(got.status, row.status, `${JSON.stringify(over)} ${row.name}`);
          assertEquals(
            comparable(got.answer, row.type),
            comparable(expectFor(tool, row.answer), row.type),
            `${JSON.stringify(over)} ${row.name}`,
          );
        }
      }
    } finally {
      await server.stop();
    }
  }
});

await e2e(
  "dns e2e: TCP carries several pipelined queries per connection and closes idle ones",
  [],
  async () => {
    const { server, port } = await startServer({ tcpIdleTimeoutMs: 400 });
    try {
      server.publish(fixtureSnapshot());
      await server.settled();
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      const names = [
        "web.default.svc.cluster.local",
        "nosuch.default.svc.cluster.local",
        "db-0.db.default.svc.cluster.local",
      ];
      // All three queries in one write: the server must split the stream into frames.
      const parts: number[] = [];
      names.forEach((n, i) => {
        const p = queryPacket(n, "A", { id: 100 + i });
        parts.push(p.length >> 8, p.length & 0xff, ...p);
      });
      await conn.write(Uint8Array.from(parts));
      const got = new Map<number, number>();
      let buf = new Uint8Array(0);
      while (got.size < 3) {
        const chunk = new Uint8Array(4096);
        const n = await conn.read(chunk);
        assert(n !== null, "connection closed before three answers");
        const next = new Uint8Array(buf.length + n);
        next.set(buf);
        next.set(chunk.subarray(0, n), buf.length);
        buf = next;
        while (buf.length >= 2 && buf.length >= 2 + ((buf[0] << 8) | buf[1])) {
          const len = (buf[0] << 8) | buf[1];
          const d = decodeMessage(buf.slice(2, 2 + len));
          assert(d.ok);
          got.set(d.message.id, d.message.rcode);
          buf = buf.slice(2 + len);
        }
      }
      assertEquals([...got.entries()].sort(), [[100, 0], [101, 3], [102, 0]]);
      // Idle longer than the timeout: the server closes the connection.
      const t0 = Date.now();
      const eof = await conn.read(new Uint8Array(16));
      assertEquals(eof, null);
      const idle = Date.now() - t0;
      assert(idle >= 300 && idle < 3000, `closed after ${idle} ms`);
      conn.close();
    } finally {
      await server.stop();
    }
  },
);

await e2e("dns e2e: without --allow-ffi the server falls back to node:dgram and still answers", [
  "dig",
], async () => {
  const port = await freePort();
  const svc = await startSvcgate(["--port", String(port), "--services", "10", "--fixture"], [
    "--allow-net",
    "--allow-read",
  ]);
  try {
    assertEquals(svc.udpMode, "node");
    const got = await runTool("dig", svc.port, "web.default.svc.cluster.local", "A");
    assertEquals(got.answer, ["web.default.svc.cluster.local. 30 IN A 198.19.0.10"]);
  } finally {
    await svc.stop();
  }
});

await e2e(
  "dns e2e: publish sends only DNS changes, skips invisible ones, and applies removals",
  [],
  async () => {
    const store = new ModelStore();
    store.setService(
      makeService({ namespace: "default", name: "a", clusterIPs: [ip("198.19.1.1")] }),
    );
    store.setService(
      makeService({ namespace: "default", name: "b", clusterIPs: [ip("198.19.1.2")] }),
    );
    store.setEndpointSet(endpointSet("default", "a", [], [ep("198.18.1.1")]));
    store.setNamespaces(["default"]);
    const metrics = new MetricsRegistry();
    const port = await freePort();
    const server = new DnsServer({
      bind: { hostname: "127.0.0.1", port },
      clusterDomain: "cluster.local",
      ttl: 30,
      reverseCidrs: FIXTURE_REVERSE_CIDRS,
      upstreams: [],
      allowRecursion: LOOPBACK_ONLY,
      metrics,
      workers: 2,
      // The spec's letter: a ClusterIP's endpoints are nothing DNS shows (CoreDNS answers them:
      // src/dns/zone/change_tracker_test.ts).
      answers: { strictSpec: true },
    });
    const a = async (name: string) => {
      const m = await udpQuery(port, name, "A");
      return m.rcode === 3
        ? "NXDOMAIN"
        : m.answers.map((r) => (r.data as { address: string }).address).join(",");
    };
    const version = () =>
      Number(/^svcgate_dns_snapshot_version (\d+)/m.exec(metrics.render())?.[1] ?? "0");
    try {
      // Published before start: the workers get it when they come up.
      const s1 = store.commit().snapshot;
      server.publish(s1);
      await server.start();
      await server.settled();
      for (let i = 0; i < 2; i++) {
        // Two workers share the port: ask twice so both are likely hit.
        assertEquals(await a("a.default.svc.cluster.local"), "198.19.1.1");
        assertEquals(await a("b.default.svc.cluster.local"), "198.19.1.2");
      }
      assertEquals(version(), s1.version);
      // Endpoint readiness behind a ClusterIP changes nothing the spec shows: no rebuild.
      store.setEndpointSet(endpointSet("default", "a", [], [ep("198.18.1.1", { ready: false })]));
      const s2 = store.commit().snapshot;
      assert(s2.version > s1.version);
      server.publish(s2);
      await server.settled();
      assertEquals(version(), s1.version);
      // A removal and a change are applied.
      store.deleteService("default", "b");
      store.setService(
        makeService({ namespace: "default", name: "a", clusterIPs: [ip("198.19.1.9")] }),
      );
      const s3 = store.commit().snapshot;
      server.publish(s3);
      await server.settled();
      assertEquals(version(), s3.version);
      for (let i = 0; i < 4; i++) {
        assertEquals(await a("a.default.svc.cluster.local"), "198.19.1.9");
        assertEquals(await a("b.default.svc.cluster.local"), "NXDOMAIN");
      }
    } finally {
      await server.stop();
    }
  },
);

const FUZZ_SEED = Number(Deno.env.get("DNS_FUZZ_SEED") ?? "77");

await e2e(
  `dns e2e: fuzz (seed ${FUZZ_SEED}) 100,000 UDP + 2,000 TCP packets, then it still answers correctly`,
  ["dig", "kdig"],
  async () => {
    const knotPort = await freePort();
    const { server, port, metrics } = await startServer({
      upstreams: [`127.0.0.1:${knotPort}`],
      upstreamTimeoutMs: 300,
    });
    const sock = dgram.createSocket("udp4");
    try {
      server.publish(fixtureSnapshot());
      await server.settled();
      let replies = 0, oversized = 0, badReplies = 0;
      sock.on("message", (m: Uint8Array) => {
        replies++;
        if (m.length > 1232) oversized++;
        if (!decodeMessage(new Uint8Array(m)).ok) badReplies++;
      });
      await new Promise<void>((r) => sock.bind(0, "127.0.0.1", () => r()));
      let sent = 0;
      let pending = 0;
      for (const packet of fuzzPackets(FUZZ_SEED, 100_000)) {
        pending++;
        sock.send(packet, port, "127.0.0.1", () => pending--);
        sent++;
        // Pace the blast so the test measures robustness, not socket-buffer overflow.
        if (sent % 500 === 0) {
          while (pending > 200) await new Promise((r) => setTimeout(r, 1));
          await new Promise((r) => setTimeout(r, 2));
        }
      }
      // TCP: valid and mutated frames, a lying length prefix, a connection closed mid-frame.
      const tcpPackets = [...fuzzPackets(FUZZ_SEED + 1, 2000)];
      for (let c = 0; c < 20; c++) {
        const conn = await Deno.connect({ hostname: "127.0.0.1", port });
        try {
          for (const p of tcpPackets.slice(c * 100, c * 100 + 100)) {
            const frame = new Uint8Array(p.length + 2);
            frame[0] = p.length >> 8;
            frame[1] = p.length & 0xff;
            frame.set(p, 2);
            await conn.write(frame);
          }
          if (c % 2 === 0) await conn.write(Uint8Array.from([0xff, 0xff, 1, 2, 3]));
        } catch {
          /* the server may close a connection it cannot parse */
        } finally {
          conn.close();
        }
      }
      await new Promise((r) => setTimeout(r, 1500));
      assert(sent >= 100_000);
      assert(replies > 40_000, `only ${replies} replies to ${sent} packets`);
      assertEquals(oversized, 0);
      assertEquals(badReplies, 0);
      // Still alive and still right, over both transports and both tools.
      for (const row of ROWS.slice(0, 8)) {
        for (const [tool, tcp] of [["dig", false], ["kdig", true]] as const) {
          const got = await runTool(tool, port, row.name, row.type, { tcp });
          assertEquals(
            comparable(got.answer, row.type),
            comparable(expectFor(tool, row.answer), row.type),
            `${tool} ${row.name} after fuzzing`,
          );
        }
      }
      const direct = await udpQuery(port, "web.default.svc.cluster.local", "A");
      assertEquals(direct.answers.length, 1);
      await server.flushMetrics();
      const text = metrics.render();
      assert(/svcgate_dns_requests_total\{rcode="FORMERR",type="other"\} [1-9]/.test(text), text);
      assert(/svcgate_dns_dropped_total [1-9]/.test(text), text);
      assert(/^svcgate_dns_internal_errors_total 0$/m.test(text), text);
    } finally {
      sock.close();
      await server.stop();
    }
  },
);
