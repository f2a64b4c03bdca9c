import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { answerQuery, type AnswerResult } from "./answer.ts";
import { decodeMessage } from "../codec/decode.ts";
import { encodeMessage } from "../codec/encode.ts";
import {
  formatRecord,
  type Message,
  queryMessage,
  rcodeName,
  RRClass,
  typeFromName,
} from "../codec/records.ts";
import { reverseZoneApexes, type Zone, type ZoneOptions } from "../zone/zone.ts";
import { buildZone } from "../zone/zone_index.ts";
import {
  cidr,
  endpointSet,
  ep,
  FIXTURE_REVERSE_CIDRS,
  fixtureSnapshot,
  makeService,
  port,
} from "../../../tests/support/dns_fixture.ts";
import { ModelStore } from "../../model/store.ts";
import { EMPTY_SNAPSHOT } from "../../model/snapshot.ts";
import { ip } from "../../../tests/support/model_values.ts";

const OPTIONS: ZoneOptions = {
  clusterDomain: "cluster.local",
  ttl: 30,
  reverseCidrs: FIXTURE_REVERSE_CIDRS,
  serial: 1700000000,
  // svcgate's DNS address (--dns-bind-address): what ns.dns.<zone> answers.
  nsAddresses: [ip("169.254.20.10")],
};
/** CoreDNS's answers (the default). */
const ZONE = buildZone(fixtureSnapshot(), OPTIONS);
/** The letter of the spec (--dns-strict-spec). */
const STRICT = buildZone(fixtureSnapshot(), { ...OPTIONS, strictSpec: true });
const SOA =
  "cluster.local. 30 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. 1700000000 7200 1800 86400 30";
/** A reverse zone's SOA as CoreDNS writes it: its own ns.dns. and hostmaster. names. */
const SOA_SVC_REV =
  "19.198.in-addr.arpa. 30 IN SOA ns.dns.19.198.in-addr.arpa. hostmaster.19.198.in-addr.arpa. 1700000000 7200 1800 86400 30";
const SOA_POD_REV =
  "18.198.in-addr.arpa. 30 IN SOA ns.dns.18.198.in-addr.arpa. hostmaster.18.198.in-addr.arpa. 1700000000 7200 1800 86400 30";
/** The same SOAs strict: every apex names the cluster domain's server (svcgate before CoreDNS's). */
const STRICT_SOA_SVC_REV =
  "19.198.in-addr.arpa. 30 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. 1700000000 7200 1800 86400 30";
const STRICT_SOA_POD_REV =
  "18.198.in-addr.arpa. 30 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. 1700000000 7200 1800 86400 30";

interface Ask {
  name: string;
  type: string | number;
  class?: number;
  opcode?: number;
  edns?: { udpSize: number; version: number };
  questions?: number;
}

function query(a: Ask): Message {
  const type = typeof a.type === "number" ? a.type : typeFromName(a.type)!;
  const q = { name: a.name, type, class: a.class ?? RRClass.IN };
  return queryMessage(Array.from({ length: a.questions ?? 1 }, () => q), {
    id: 4242,
    opcode: a.opcode ?? 0,
    ...(a.edns ? { edns: { ...a.edns, dnssecOk: false, options: [] } } : {}),
  });
}

interface Rendered {
  kind: string;
  name?: string;
  rcode?: string;
  aa?: boolean;
  question?: string[];
  answer?: string[];
  authority?: string[];
  additional?: string[];
  chase?: string;
}

/** Runs the pure handler, then a wire round trip, and renders the reply as zone-file text. */
function run(zone: Zone | null, a: Ask, recursionAllowed = true): Rendered {
  const result: AnswerResult = answerQuery(zone, query(a), { recursionAllowed }, ZONE);
  if (result.kind === "drop") return { kind: "drop" };
  if (result.kind === "forward") return { kind: "forward", name: result.question.name };
  const decoded = decodeMessage(encodeMessage(result.message));
  if (!decoded.ok) throw new Error(decoded.error);
  const m = decoded.message;
  return {
    kind: result.kind,
    rcode: rcodeName(m.rcode),
    aa: m.aa,
    question: m.questions.map((q) => `${q.name} ${q.type}`),
    answer: m.answers.map(formatRecord),
    authority: m.authority.map(formatRecord),
    additional: m.additional.map(formatRecord),
    ...(result.kind === "chase" ? { chase: result.target } : {}),
  };
}

interface Case {
  name: string;
  ask: Ask;
  rcode: string;
  answer?: string[];
  authority?: string[];
  additional?: string[];
  aa?: boolean;
}

const CASES: Case[] = [
  {
    name: "ClusterIP A",
    ask: { name: "web.default.svc.cluster.local", type: "A" },
    rcode: "NOERROR",
    answer: ["web.default.svc.cluster.local. 30 IN A 198.19.0.10"],
  },
  {
    name: "ClusterIP AAAA (dual stack)",
    ask: { name: "web.default.svc.cluster.local", type: "AAAA" },
    rcode: "NOERROR",
    answer: ["web.default.svc.cluster.local. 30 IN AAAA 2001:db8:ffff::10"],
  },
  {
    name: "IPv4-only service asked AAAA is NODATA with SOA",
    ask: { name: "api.prod.svc.cluster.local", type: "AAAA" },
    rcode: "NOERROR",
    answer: [],
    authority: [SOA],
  },
  {
    name: "existing name, other type: NODATA",
    ask: { name: "web.default.svc.cluster.local", type: "TXT" },
    rcode: "NOERROR",
    answer: [],
    authority: [SOA],
  },
  {
    name: "unknown type on an existing name is NODATA (RFC 3597)",
    ask: { name: "web.default.svc.cluster.local", type: 65280 },
    rcode: "NOERROR",
    answer: [],
    authority: [SOA],
  },
  {
    name: "SRV for a named TCP port, A/AAAA in additional",
    ask: { name: "_http._tcp.web.default.svc.cluster.local", type: "SRV" },
    rcode: "NOERROR",
    answer: [
      "_http._tcp.web.default.svc.cluster.local. 30 IN SRV 0 100 80 web.default.svc.cluster.local.",
    ],
    additional: [
      "web.default.svc.cluster.local. 30 IN A 198.19.0.10",
      "web.default.svc.cluster.local. 30 IN AAAA 2001:db8:ffff::10",
    ],
  },
  {
    name: "SRV for a named UDP port",
    ask: { name: "_dns._udp.web.default.svc.cluster.local", type: "SRV" },
    rcode: "NOERROR",
    answer: [
      "_dns._udp.web.default.svc.cluster.local. 30 IN SRV 0 100 53 web.default.svc.cluster.local.",
    ],
    additional: [
      "web.default.svc.cluster.local. 30 IN A 198.19.0.10",
      "web.default.svc.cluster.local. 30 IN AAAA 2001:db8:ffff::10",
    ],
  },
  {
    name: "SRV with the wrong protocol does not exist",
    ask: { name: "_http._udp.web.default.svc.cluster.local", type: "SRV" },
    rcode: "NXDOMAIN",
    authority: [SOA],
  },
  {
    name: "unnamed port has no SRV",
    ask: { name: "_tcp.plain.default.svc.cluster.local", type: "SRV" },
    rcode: "NXDOMAIN",
    authority: [SOA],
  },
  {
    name: "empty non-terminal _tcp.<svc> is NODATA",
    ask: { name: "_tcp.web.default.svc.cluster.local", type: "SRV" },
    rcode: "NOERROR",
    answer: [],
    authority: [SOA],
  },
  {
    name: "PTR for a ClusterIP",
    ask: { name: "10.0.19.198.in-addr.arpa", type: "PTR" },
    rcode: "NOERROR",
    answer: ["10.0.19.198.in-addr.arpa. 30 IN PTR web.default.svc.cluster.local."],
  },
  {
    name: "PTR for an IPv6 ClusterIP",
    ask: {
      name: "0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.f.f.f.f.8.b.d.0.1.0.0.2.ip6.arpa",
      type: "PTR",
    },
    rcode: "NOERROR",
    answer: [
      "0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.f.f.f.f.8.b.d.0.1.0.0.2.ip6.arpa. 30 IN PTR web.default.svc.cluster.local.",
    ],
  },
  {
    name: "headless A: one per ready endpoint",
    ask: { name: "db.default.svc.cluster.local", type: "A" },
    rcode: "NOERROR",
    answer: [
      "db.default.svc.cluster.local. 30 IN A 198.18.0.101",
      "db.default.svc.cluster.local. 30 IN A 198.18.0.102",
      "db.default.svc.cluster.local. 30 IN A 198.18.0.103",
    ],
  },
  {
    name: "headless AAAA",
    ask: { name: "db.default.svc.cluster.local", type: "AAAA" },
    rcode: "NOERROR",
    answer: ["db.default.svc.cluster.local. 30 IN AAAA 2001:db8::a1"],
  },
  {
    name: "endpoint hostname A",
    ask: { name: "db-0.db.default.svc.cluster.local", type: "A" },
    rcode: "NOERROR",
    answer: ["db-0.db.default.svc.cluster.local. 30 IN A 198.18.0.101"],
  },
  {
    name: "endpoint hostname AAAA (same pod, other family)",
    ask: { name: "db-0.db.default.svc.cluster.local", type: "AAAA" },
    rcode: "NOERROR",
    answer: ["db-0.db.default.svc.cluster.local. 30 IN AAAA 2001:db8::a1"],
  },
  {
    name: "endpoint without hostname gets its dashed IP",
    ask: { name: "198-18-0-103.db.default.svc.cluster.local", type: "A" },
    rcode: "NOERROR",
    answer: ["198-18-0-103.db.default.svc.cluster.local. 30 IN A 198.18.0.103"],
  },
  {
    name: "not-ready endpoint is not published",
    ask: { name: "db-3.db.default.svc.cluster.local", type: "A" },
    rcode: "NXDOMAIN",
    authority: [SOA],
  },
  {
    name: "PTR for an endpoint selected by two headless services: two PTRs",
    ask: { name: "101.0.18.198.in-addr.arpa", type: "PTR" },
    rcode: "NOERROR",
    answer: [
      "101.0.18.198.in-addr.arpa. 30 IN PTR db-0.db.default.svc.cluster.local.",
      "101.0.18.198.in-addr.arpa. 30 IN PTR db-0.db-alt.default.svc.cluster.local.",
    ],
  },
  {
    name: "PTR for an endpoint IP outside the reverse zones is still answered",
    ask: {
      name: "1.a.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa",
      type: "PTR",
    },
    rcode: "NOERROR",
    answer: [
      "1.a.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa. 30 IN PTR db-0.db.default.svc.cluster.local.",
    ],
  },
  {
    name: "headless without ready endpoints is NXDOMAIN",
    ask: { name: "empty.default.svc.cluster.local", type: "A" },
    rcode: "NXDOMAIN",
    authority: [SOA],
  },
  {
    name: "publishNotReadyAddresses publishes not-ready endpoints",
    ask: { name: "early.default.svc.cluster.local", type: "A" },
    rcode: "NOERROR",
    answer: ["early.default.svc.cluster.local. 30 IN A 198.18.0.110"],
  },
  {
    name: "ClusterIP service without an allocated IP is NODATA",
    ask: { name: "pending.default.svc.cluster.local", type: "A" },
    rcode: "NOERROR",
    answer: [],
    authority: [SOA],
  },
  {
    name: "ExternalName CNAME asked directly",
    ask: { name: "ext.default.svc.cluster.local", type: "CNAME" },
    rcode: "NOERROR",
    answer: ["ext.default.svc.cluster.local. 30 IN CNAME example.org."],
  },
  {
    name: "ExternalName to an in-cluster name is chased in the zone",
    ask: { name: "alias.default.svc.cluster.local", type: "A" },
    rcode: "NOERROR",
    answer: [
      "alias.default.svc.cluster.local. 30 IN CNAME web.default.svc.cluster.local.",
      "web.default.svc.cluster.local. 30 IN A 198.19.0.10",
    ],
  },
  {
    name: "apex SOA",
    ask: { name: "cluster.local", type: "SOA" },
    rcode: "NOERROR",
    answer: [SOA],
  },
  {
    name: "apex A is NODATA",
    ask: { name: "cluster.local", type: "A" },
    rcode: "NOERROR",
    answer: [],
    authority: [SOA],
  },
  {
    name: "svc.<zone> is NODATA",
    ask: { name: "svc.cluster.local", type: "A" },
    rcode: "NOERROR",
    answer: [],
    authority: [SOA],
  },
  {
    name: "existing namespace is NODATA",
    ask: { name: "kube-system.svc.cluster.local", type: "A" },
    rcode: "NOERROR",
    answer: [],
    authority: [SOA],
  },
  {
    name: "unknown namespace is NXDOMAIN",
    ask: { name: "nope.svc.cluster.local", type: "A" },
    rcode: "NXDOMAIN",
    authority: [SOA],
  },
  {
    name: "service in an unknown namespace is NXDOMAIN",
    ask: { name: "web.nope.svc.cluster.local", type: "A" },
    rcode: "NXDOMAIN",
    authority: [SOA],
  },
  {
    name: "unknown service is NXDOMAIN",
    ask: { name: "nosuch.default.svc.cluster.local", type: "A" },
    rcode: "NXDOMAIN",
    authority: [SOA],
  },
  {
    name: "ndots search-path miss is NXDOMAIN",
    ask: { name: "web.default.svc.cluster.local.default.svc.cluster.local", type: "A" },
    rcode: "NXDOMAIN",
    authority: [SOA],
  },
  {
    name: "pods insecure: dashed IPv4",
    ask: { name: "1-2-3-4.default.pod.cluster.local", type: "A" },
    rcode: "NOERROR",
    answer: ["1-2-3-4.default.pod.cluster.local. 30 IN A 1.2.3.4"],
  },
  {
    name: "pods insecure: dashed IPv6",
    ask: { name: "2001-db8--5.default.pod.cluster.local", type: "AAAA" },
    rcode: "NOERROR",
    answer: ["2001-db8--5.default.pod.cluster.local. 30 IN AAAA 2001:db8::5"],
  },
  {
    name: "pods insecure: IPv4 pod asked AAAA is NODATA",
    ask: { name: "1-2-3-4.default.pod.cluster.local", type: "AAAA" },
    rcode: "NOERROR",
    answer: [],
    authority: [SOA],
  },
  {
    name: "pods insecure: unknown namespace is NXDOMAIN",
    ask: { name: "1-2-3-4.nope.pod.cluster.local", type: "A" },
    rcode: "NXDOMAIN",
    authority: [SOA],
  },
  {
    name: "pods insecure: not an IP is NXDOMAIN",
    ask: { name: "web.default.pod.cluster.local", type: "A" },
    rcode: "NXDOMAIN",
    authority: [SOA],
  },
  {
    name: "AXFR is REFUSED",
    ask: { name: "cluster.local", type: "AXFR" },
    rcode: "REFUSED",
    aa: false,
  },
  {
    name: "IXFR is REFUSED",
    ask: { name: "cluster.local", type: "IXFR" },
    rcode: "REFUSED",
    aa: false,
  },
  {
    name: "opcode STATUS is NOTIMP",
    ask: { name: "cluster.local", type: "SOA", opcode: 2 },
    rcode: "NOTIMP",
    aa: false,
  },
  {
    name: "class CH is NOTIMP",
    ask: { name: "version.bind", type: "TXT", class: RRClass.CH },
    rcode: "NOTIMP",
    aa: false,
  },
  {
    name: "two questions are FORMERR",
    ask: { name: "web.default.svc.cluster.local", type: "A", questions: 2 },
    rcode: "FORMERR",
    aa: false,
  },
  {
    name: "qtype 0 is FORMERR",
    ask: { name: "cluster.local", type: 0 },
    rcode: "FORMERR",
    aa: false,
  },
  {
    name: "MAILA is NOTIMP",
    ask: { name: "cluster.local", type: "MAILA" },
    rcode: "NOTIMP",
    aa: false,
  },
  {
    name: "EDNS version 1 is BADVERS",
    ask: { name: "web.default.svc.cluster.local", type: "A", edns: { udpSize: 1232, version: 1 } },
    rcode: "BADVERS",
    aa: false,
  },
  {
    name: "question case is echoed, matching is case-insensitive",
    ask: { name: "WeB.Default.SVC.cluster.LOCAL", type: "A" },
    rcode: "NOERROR",
    answer: ["WeB.Default.SVC.cluster.LOCAL. 30 IN A 198.19.0.10"],
  },
];

/** Checks one reply against a case's expectation. */
function check(zone: Zone, c: Case): void {
  const got = run(zone, c.ask);
  assertEquals(got.kind, "reply");
  if (got.kind !== "reply") return;
  assertEquals(got.rcode, c.rcode);
  assertEquals(got.aa, c.aa ?? true);
  const type = typeof c.ask.type === "number" ? c.ask.type : typeFromName(c.ask.type);
  assertEquals(got.question?.[0], `${c.ask.name} ${type}`);
  if (c.answer) assertEquals(got.answer, c.answer);
  if (c.authority) assertEquals(got.authority, c.authority);
  else if (c.rcode === "NOERROR" && c.answer?.length) assertEquals(got.authority, []);
  if (c.additional) assertEquals(got.additional, c.additional);
}

// Where the spec and CoreDNS agree, both flavours answer alike.
for (const c of CASES) {
  Deno.test(`answerQuery: ${c.name}`, () => {
    check(ZONE, c);
    check(STRICT, c);
  });
}

type Expect = Omit<Case, "name" | "ask">;

/**
 * Where the spec allows two answers: what CoreDNS answers (svcgate's default, each checked
 * against CoreDNS's plugin/kubernetes tests: handler_test.go, handler_case_test.go, ns.go,
 * reverse.go) and what the letter of the spec gives (--dns-strict-spec, svcgate's answers
 * before).
 */
const DIFFERENCES: { name: string; ask: Ask; coredns: Expect; strict: Expect }[] = [
  {
    name: "SRV at the bare name of a ClusterIP service: one per port, weights over ports x VIPs",
    ask: { name: "web.default.svc.cluster.local", type: "SRV" },
    coredns: {
      rcode: "NOERROR",
      answer: [
        "web.default.svc.cluster.local. 30 IN SRV 0 25 80 web.default.svc.cluster.local.",
        "web.default.svc.cluster.local. 30 IN SRV 0 25 53 web.default.svc.cluster.local.",
      ],
      additional: [
        "web.default.svc.cluster.local. 30 IN A 198.19.0.10",
        "web.default.svc.cluster.local. 30 IN AAAA 2001:db8:ffff::10",
      ],
    },
    strict: { rcode: "NOERROR", answer: [], authority: [SOA] },
  },
  {
    name: "SRV at the bare name: one port, one VIP",
    ask: { name: "api.prod.svc.cluster.local", type: "SRV" },
    coredns: {
      rcode: "NOERROR",
      answer: ["api.prod.svc.cluster.local. 30 IN SRV 0 100 9000 api.prod.svc.cluster.local."],
      additional: ["api.prod.svc.cluster.local. 30 IN A 198.19.0.20"],
    },
    strict: { rcode: "NOERROR", answer: [], authority: [SOA] },
  },
  {
    name: "SRV at the bare name includes an unnamed port",
    ask: { name: "plain.default.svc.cluster.local", type: "SRV" },
    coredns: {
      rcode: "NOERROR",
      answer: [
        "plain.default.svc.cluster.local. 30 IN SRV 0 100 8000 plain.default.svc.cluster.local.",
      ],
      additional: ["plain.default.svc.cluster.local. 30 IN A 198.19.0.30"],
    },
    strict: { rcode: "NOERROR", answer: [], authority: [SOA] },
  },
  {
    name: "SRV at the bare name of a headless service: one per endpoint name and port",
    ask: { name: "db.default.svc.cluster.local", type: "SRV" },
    coredns: {
      rcode: "NOERROR",
      answer: [
        "db.default.svc.cluster.local. 30 IN SRV 0 25 5432 db-0.db.default.svc.cluster.local.",
        "db.default.svc.cluster.local. 30 IN SRV 0 25 5432 db-1.db.default.svc.cluster.local.",
        "db.default.svc.cluster.local. 30 IN SRV 0 25 5432 198-18-0-103.db.default.svc.cluster.local.",
      ],
      additional: [
        "db-0.db.default.svc.cluster.local. 30 IN A 198.18.0.101",
        "db-0.db.default.svc.cluster.local. 30 IN AAAA 2001:db8::a1",
        "db-1.db.default.svc.cluster.local. 30 IN A 198.18.0.102",
        "198-18-0-103.db.default.svc.cluster.local. 30 IN A 198.18.0.103",
      ],
    },
    strict: { rcode: "NOERROR", answer: [], authority: [SOA] },
  },
  {
    name: "headless SRV weights: CoreDNS shares 100 over every address (db-0 has two)",
    ask: { name: "_pg._tcp.db.default.svc.cluster.local", type: "SRV" },
    coredns: {
      rcode: "NOERROR",
      answer: [
        "_pg._tcp.db.default.svc.cluster.local. 30 IN SRV 0 25 5432 db-0.db.default.svc.cluster.local.",
        "_pg._tcp.db.default.svc.cluster.local. 30 IN SRV 0 25 5432 db-1.db.default.svc.cluster.local.",
        "_pg._tcp.db.default.svc.cluster.local. 30 IN SRV 0 25 5432 198-18-0-103.db.default.svc.cluster.local.",
      ],
      additional: [
        "db-0.db.default.svc.cluster.local. 30 IN A 198.18.0.101",
        "db-0.db.default.svc.cluster.local. 30 IN AAAA 2001:db8::a1",
        "db-1.db.default.svc.cluster.local. 30 IN A 198.18.0.102",
        "198-18-0-103.db.default.svc.cluster.local. 30 IN A 198.18.0.103",
      ],
    },
    strict: {
      rcode: "NOERROR",
      answer: [
        "_pg._tcp.db.default.svc.cluster.local. 30 IN SRV 0 33 5432 db-0.db.default.svc.cluster.local.",
        "_pg._tcp.db.default.svc.cluster.local. 30 IN SRV 0 33 5432 db-1.db.default.svc.cluster.local.",
        "_pg._tcp.db.default.svc.cluster.local. 30 IN SRV 0 33 5432 198-18-0-103.db.default.svc.cluster.local.",
      ],
      additional: [
        "db-0.db.default.svc.cluster.local. 30 IN A 198.18.0.101",
        "db-0.db.default.svc.cluster.local. 30 IN AAAA 2001:db8::a1",
        "db-1.db.default.svc.cluster.local. 30 IN A 198.18.0.102",
        "198-18-0-103.db.default.svc.cluster.local. 30 IN A 198.18.0.103",
      ],
    },
  },
  {
    name: "SRV at a headless endpoint's name",
    ask: { name: "db-0.db.default.svc.cluster.local", type: "SRV" },
    coredns: {
      rcode: "NOERROR",
      answer: [
        "db-0.db.default.svc.cluster.local. 30 IN SRV 0 50 5432 db-0.db.default.svc.cluster.local.",
      ],
      additional: [
        "db-0.db.default.svc.cluster.local. 30 IN A 198.18.0.101",
        "db-0.db.default.svc.cluster.local. 30 IN AAAA 2001:db8::a1",
      ],
    },
    strict: { rcode: "NOERROR", answer: [], authority: [SOA] },
  },
  {
    name: "headless service without Service ports: SRV ports from its EndpointSlices",
    ask: { name: "_http._tcp.portless.default.svc.cluster.local", type: "SRV" },
    coredns: {
      rcode: "NOERROR",
      answer: [
        "_http._tcp.portless.default.svc.cluster.local. 30 IN SRV 0 50 8080 p-0.portless.default.svc.cluster.local.",
        "_http._tcp.portless.default.svc.cluster.local. 30 IN SRV 0 50 8080 2001-db8-1--0.portless.default.svc.cluster.local.",
      ],
      additional: [
        "p-0.portless.default.svc.cluster.local. 30 IN A 198.18.0.70",
        "2001-db8-1--0.portless.default.svc.cluster.local. 30 IN AAAA 2001:db8:1::",
      ],
    },
    strict: { rcode: "NXDOMAIN", authority: [SOA] },
  },
  {
    name: "headless service without Service ports: bare-name SRV from its EndpointSlices",
    ask: { name: "portless.default.svc.cluster.local", type: "SRV" },
    coredns: {
      rcode: "NOERROR",
      answer: [
        "portless.default.svc.cluster.local. 30 IN SRV 0 50 8080 p-0.portless.default.svc.cluster.local.",
        "portless.default.svc.cluster.local. 30 IN SRV 0 50 8080 2001-db8-1--0.portless.default.svc.cluster.local.",
      ],
    },
    strict: { rcode: "NOERROR", answer: [], authority: [SOA] },
  },
  {
    name: 'an IPv6 endpoint label ending in "-" gets a "0" (CoreDNS)',
    ask: { name: "2001-db8-1--0.portless.default.svc.cluster.local", type: "AAAA" },
    coredns: {
      rcode: "NOERROR",
      answer: ["2001-db8-1--0.portless.default.svc.cluster.local. 30 IN AAAA 2001:db8:1::"],
    },
    strict: { rcode: "NXDOMAIN", authority: [SOA] },
  },
  {
    name: "PTR for an endpoint IP of a ClusterIP service (dashed name)",
    ask: { name: "50.0.18.198.in-addr.arpa", type: "PTR" },
    coredns: {
      rcode: "NOERROR",
      answer: ["50.0.18.198.in-addr.arpa. 30 IN PTR 198-18-0-50.web.default.svc.cluster.local."],
    },
    strict: { rcode: "NXDOMAIN", authority: [STRICT_SOA_POD_REV] },
  },
  {
    name: "PTR for an endpoint of a ClusterIP service with a hostname",
    ask: { name: "60.0.18.198.in-addr.arpa", type: "PTR" },
    coredns: {
      rcode: "NOERROR",
      answer: ["60.0.18.198.in-addr.arpa. 30 IN PTR named-0.named.default.svc.cluster.local."],
    },
    strict: { rcode: "NXDOMAIN", authority: [STRICT_SOA_POD_REV] },
  },
  {
    name: "a ClusterIP service's endpoint hostname has an A record",
    ask: { name: "named-0.named.default.svc.cluster.local", type: "A" },
    coredns: {
      rcode: "NOERROR",
      answer: ["named-0.named.default.svc.cluster.local. 30 IN A 198.18.0.60"],
    },
    strict: { rcode: "NXDOMAIN", authority: [SOA] },
  },
  {
    name: "a ClusterIP service's endpoint without a hostname answers at its dashed IP",
    ask: { name: "198-18-0-61.named.default.svc.cluster.local", type: "A" },
    coredns: {
      rcode: "NOERROR",
      answer: ["198-18-0-61.named.default.svc.cluster.local. 30 IN A 198.18.0.61"],
    },
    strict: { rcode: "NXDOMAIN", authority: [SOA] },
  },
  {
    name: "a ClusterIP service's endpoint name asked AAAA is NODATA (the name exists)",
    ask: { name: "named-0.named.default.svc.cluster.local", type: "AAAA" },
    coredns: { rcode: "NOERROR", answer: [], authority: [SOA] },
    strict: { rcode: "NXDOMAIN", authority: [SOA] },
  },
  {
    name: "SRV at a ClusterIP service's endpoint name: its ports",
    ask: { name: "named-0.named.default.svc.cluster.local", type: "SRV" },
    coredns: {
      rcode: "NOERROR",
      answer: [
        "named-0.named.default.svc.cluster.local. 30 IN SRV 0 100 8080 named-0.named.default.svc.cluster.local.",
      ],
      additional: ["named-0.named.default.svc.cluster.local. 30 IN A 198.18.0.60"],
    },
    strict: { rcode: "NXDOMAIN", authority: [SOA] },
  },
  {
    name: "ns.dns.<zone> answers svcgate's own address",
    ask: { name: "ns.dns.cluster.local", type: "A" },
    coredns: { rcode: "NOERROR", answer: ["ns.dns.cluster.local. 30 IN A 169.254.20.10"] },
    strict: { rcode: "NXDOMAIN", authority: [SOA] },
  },
  {
    name: "apex NS, with the name server's address as glue",
    ask: { name: "cluster.local", type: "NS" },
    coredns: {
      rcode: "NOERROR",
      answer: ["cluster.local. 30 IN NS ns.dns.cluster.local."],
      additional: ["ns.dns.cluster.local. 30 IN A 169.254.20.10"],
    },
    strict: {
      rcode: "NOERROR",
      answer: ["cluster.local. 30 IN NS ns.dns.cluster.local."],
      additional: [],
    },
  },
  {
    name: "reverse zone apex SOA names the reverse zone's own ns.dns.",
    ask: { name: "19.198.in-addr.arpa", type: "SOA" },
    coredns: { rcode: "NOERROR", answer: [SOA_SVC_REV] },
    strict: { rcode: "NOERROR", answer: [STRICT_SOA_SVC_REV] },
  },
  {
    name: "reverse zone apex NS",
    ask: { name: "19.198.in-addr.arpa", type: "NS" },
    coredns: {
      rcode: "NOERROR",
      answer: ["19.198.in-addr.arpa. 30 IN NS ns.dns.19.198.in-addr.arpa."],
      additional: ["ns.dns.19.198.in-addr.arpa. 30 IN A 169.254.20.10"],
    },
    strict: { rcode: "NOERROR", answer: ["19.198.in-addr.arpa. 30 IN NS ns.dns.cluster.local."] },
  },
  {
    name: "unknown IP in the service CIDR: NXDOMAIN with the reverse zone's SOA",
    ask: { name: "99.99.19.198.in-addr.arpa", type: "PTR" },
    coredns: { rcode: "NXDOMAIN", authority: [SOA_SVC_REV] },
    strict: { rcode: "NXDOMAIN", authority: [STRICT_SOA_SVC_REV] },
  },
  {
    name: "a not-ready endpoint of a ClusterIP service has no PTR",
    ask: { name: "62.0.18.198.in-addr.arpa", type: "PTR" },
    coredns: { rcode: "NXDOMAIN", authority: [SOA_POD_REV] },
    strict: { rcode: "NXDOMAIN", authority: [STRICT_SOA_POD_REV] },
  },
  {
    name: "reverse empty non-terminal is NODATA",
    ask: { name: "0.19.198.in-addr.arpa", type: "PTR" },
    coredns: { rcode: "NOERROR", answer: [], authority: [SOA_SVC_REV] },
    strict: { rcode: "NOERROR", answer: [], authority: [STRICT_SOA_SVC_REV] },
  },
  {
    name: "dns-version TXT: TTL 28800 as CoreDNS",
    ask: { name: "dns-version.cluster.local", type: "TXT" },
    coredns: { rcode: "NOERROR", answer: ['dns-version.cluster.local. 28800 IN TXT "1.1.0"'] },
    strict: { rcode: "NOERROR", answer: ['dns-version.cluster.local. 30 IN TXT "1.1.0"'] },
  },
  {
    name: "SRV target keeps the zone part of the question's case (handler_case_test.go)",
    ask: { name: "_HtTp._TcP.wEb.DeFaUlT.SvC.cLuStEr.LoCaL", type: "SRV" },
    coredns: {
      rcode: "NOERROR",
      answer: [
        "_HtTp._TcP.wEb.DeFaUlT.SvC.cLuStEr.LoCaL. 30 IN SRV 0 100 80 web.default.svc.cLuStEr.LoCaL.",
      ],
      // Name compression is case-blind (as knotd's), so the addresses' owner points into the
      // question; CoreDNS (case-sensitive compression) writes it as the target.
      additional: [
        "wEb.DeFaUlT.SvC.cLuStEr.LoCaL. 30 IN A 198.19.0.10",
        "wEb.DeFaUlT.SvC.cLuStEr.LoCaL. 30 IN AAAA 2001:db8:ffff::10",
      ],
    },
    strict: {
      rcode: "NOERROR",
      answer: [
        "_HtTp._TcP.wEb.DeFaUlT.SvC.cLuStEr.LoCaL. 30 IN SRV 0 100 80 web.default.svc.cluster.local.",
      ],
    },
  },
  {
    name: "headless SRV targets keep the zone part of the question's case",
    ask: { name: "_pg._tcp.db.default.svc.Cluster.Local", type: "SRV" },
    coredns: {
      rcode: "NOERROR",
      answer: [
        "_pg._tcp.db.default.svc.Cluster.Local. 30 IN SRV 0 25 5432 db-0.db.default.svc.Cluster.Local.",
        "_pg._tcp.db.default.svc.Cluster.Local. 30 IN SRV 0 25 5432 db-1.db.default.svc.Cluster.Local.",
        "_pg._tcp.db.default.svc.Cluster.Local. 30 IN SRV 0 25 5432 198-18-0-103.db.default.svc.Cluster.Local.",
      ],
    },
    strict: {
      rcode: "NOERROR",
      answer: [
        "_pg._tcp.db.default.svc.Cluster.Local. 30 IN SRV 0 33 5432 db-0.db.default.svc.cluster.local.",
        "_pg._tcp.db.default.svc.Cluster.Local. 30 IN SRV 0 33 5432 db-1.db.default.svc.cluster.local.",
        "_pg._tcp.db.default.svc.Cluster.Local. 30 IN SRV 0 33 5432 198-18-0-103.db.default.svc.cluster.local.",
      ],
    },
  },
];

for (const d of DIFFERENCES) {
  Deno.test(`answerQuery, CoreDNS's answer: ${d.name}`, () => {
    check(ZONE, { name: d.name, ask: d.ask, ...d.coredns });
  });
  Deno.test(`answerQuery, --dns-strict-spec: ${d.name}`, () => {
    check(STRICT, { name: d.name, ask: d.ask, ...d.strict });
  });
}

Deno.test("answerQuery: ANY returns every record of the name", () => {
  // SRV at the bare name is read on ask, not a record of the name (CoreDNS answers ANY NODATA).
  for (const zone of [ZONE, STRICT]) {
    const got = run(zone, { name: "web.default.svc.cluster.local", type: "ANY" });
    assertEquals(got.rcode, "NOERROR");
    assertEquals(got.answer, [
      "web.default.svc.cluster.local. 30 IN A 198.19.0.10",
      "web.default.svc.cluster.local. 30 IN AAAA 2001:db8:ffff::10",
    ]);
  }
});

Deno.test("answerQuery: CoreDNS's SOA TTL is at most 300 s, its minimum the zone TTL", () => {
  const soa = (zone: Zone) =>
    run(zone, { name: "nosuch.default.svc.cluster.local", type: "A" }).authority;
  assertEquals(soa(buildZone(fixtureSnapshot(), { ...OPTIONS, ttl: 600 })), [
    "cluster.local. 300 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. 1700000000 7200 1800 86400 600",
  ]);
  assertEquals(soa(buildZone(fixtureSnapshot(), { ...OPTIONS, ttl: 600, strictSpec: true })), [
    "cluster.local. 600 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. 1700000000 7200 1800 86400 600",
  ]);
});

Deno.test("answerQuery: a ClusterIP endpoint's PTR is answered outside the reverse zones too", () => {
  // 2001:db8::/32 pod addresses are no reverse zone of the fixture: CoreDNS's fallthrough.
  const snapshot = fixtureSnapshot();
  const zone = buildZone(snapshot, { ...OPTIONS, reverseCidrs: [] });
  const got = run(zone, { name: "50.0.18.198.in-addr.arpa", type: "PTR" });
  assertEquals(got.answer, [
    "50.0.18.198.in-addr.arpa. 30 IN PTR 198-18-0-50.web.default.svc.cluster.local.",
  ]);
  assertEquals(run(zone, { name: "51.0.18.198.in-addr.arpa", type: "PTR" }).kind, "forward");
});

Deno.test("answerQuery: ExternalName to an outside name is chased upstream for recursive clients", () => {
  const got = run(ZONE, { name: "ext.default.svc.cluster.local", type: "A" }, true);
  assertEquals(got.kind, "chase");
  assertEquals(got.answer, ["ext.default.svc.cluster.local. 30 IN CNAME example.org."]);
  assertEquals(got.chase, "example.org");
  const other = run(ZONE, { name: "ext.default.svc.cluster.local", type: "A" }, false);
  assertEquals(other.kind, "reply");
  assertEquals(other.answer, ["ext.default.svc.cluster.local. 30 IN CNAME example.org."]);
});

Deno.test("answerQuery: outside names forward only for clients allowed to recurse", () => {
  assertEquals(run(ZONE, { name: "example.org", type: "A" }, true), {
    kind: "forward",
    name: "example.org",
  });
  const refused = run(ZONE, { name: "example.org", type: "A" }, false);
  assertEquals(refused.rcode, "REFUSED");
  assertEquals(refused.aa, false);
  assertEquals(refused.answer, []);
  // A PTR outside the reverse zones that svcgate does not know is forwarded too.
  assertEquals(run(ZONE, { name: "4.3.2.1.in-addr.arpa", type: "PTR" }, true).kind, "forward");
  // A known PTR name asked with another type is not ours to answer.
  assertEquals(
    run(ZONE, {
      name: "1.a.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa",
      type: "A",
    }, true).kind,
    "forward",
  );
});

Deno.test("answerQuery: before the first snapshot, cluster names are SERVFAIL, never NXDOMAIN", () => {
  for (
    const name of [
      "web.default.svc.cluster.local",
      "nosuch.cluster.local",
      "10.0.19.198.in-addr.arpa",
    ]
  ) {
    const got = run(null, { name, type: "A" });
    assertEquals(got.rcode, "SERVFAIL", name);
  }
  assertEquals(run(null, { name: "example.org", type: "A" }).kind, "forward");
  assertEquals(run(null, { name: "example.org", type: "A" }, false).rcode, "REFUSED");
});

Deno.test("answerQuery: an empty snapshot has the apex and NXDOMAIN below it", () => {
  const zone = buildZone(EMPTY_SNAPSHOT, OPTIONS);
  assertEquals(run(zone, { name: "cluster.local", type: "SOA" }).answer, [SOA]);
  assertEquals(run(zone, { name: "web.default.svc.cluster.local", type: "A" }).rcode, "NXDOMAIN");
});

Deno.test("answerQuery: the TTL option applies to every record and the SOA minimum", () => {
  const zone = buildZone(fixtureSnapshot(), { ...OPTIONS, ttl: 5 });
  assertEquals(run(zone, { name: "web.default.svc.cluster.local", type: "A" }).answer, [
    "web.default.svc.cluster.local. 5 IN A 198.19.0.10",
  ]);
  assertEquals(run(zone, { name: "nosuch.default.svc.cluster.local", type: "A" }).authority, [
    "cluster.local. 5 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. 1700000000 7200 1800 86400 5",
  ]);
});

Deno.test("answerQuery: another cluster domain", () => {
  const zone = buildZone(fixtureSnapshot(), { ...OPTIONS, clusterDomain: "k8s.example." });
  assertEquals(run(zone, { name: "web.default.svc.k8s.example", type: "A" }).answer, [
    "web.default.svc.k8s.example. 30 IN A 198.19.0.10",
  ]);
  assertEquals(run(zone, { name: "web.default.svc.cluster.local", type: "A" }).kind, "forward");
});

Deno.test("answerQuery: a response is dropped, never answered", () => {
  const q = { ...query({ name: "cluster.local", type: "SOA" }), qr: true };
  assertEquals(answerQuery(ZONE, q, { recursionAllowed: true }).kind, "drop");
});

Deno.test("reverseZoneApexes: rounds up to octet/nibble boundaries", () => {
  assertEquals(reverseZoneApexes(cidr("198.19.0.0/16")), ["19.198.in-addr.arpa"]);
  assertEquals(reverseZoneApexes(cidr("10.96.0.0/12")).length, 16);
  assertEquals(reverseZoneApexes(cidr("10.96.0.0/12"))[0], "96.10.in-addr.arpa");
  assertEquals(reverseZoneApexes(cidr("10.96.0.0/12"))[15], "111.10.in-addr.arpa");
  assertEquals(reverseZoneApexes(cidr("2001:db8:ffff::/112")), [
    "0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.f.f.f.f.8.b.d.0.1.0.0.2.ip6.arpa".split(".").slice(4)
      .join("."),
  ]);
  assertEquals(reverseZoneApexes(cidr("2001:db8::/33")).length, 8);
});

Deno.test("buildZone: bad options are rejected with the value quoted", () => {
  let msg = "";
  try {
    buildZone(EMPTY_SNAPSHOT, { ...OPTIONS, ttl: 4000 });
  } catch (e) {
    msg = (e as Error).message;
  }
  assertEquals(msg, 'Cannot use DNS TTL "4000": it must be an integer from 0 to 3600');
});

Deno.test("answerQuery: --pod-records verified answers only pods svcgate knows, disabled none", () => {
  const pod = (zone: Zone, name: string, nodePods?: Map<string, string>) => {
    const r = answerQuery(zone, query({ name, type: "A" }), {
      recursionAllowed: true,
      ...(nodePods ? { nodePods: { namespaceOf: (a: string) => nodePods.get(a) } } : {}),
    });
    if (r.kind !== "reply") throw new Error(r.kind);
    return `${rcodeName(r.message.rcode)} ${r.message.answers.map(formatRecord).join(" ")}`.trim();
  };
  const nodePods = new Map([["198.18.0.11", "default"]]);
  for (const strictSpec of [false, true]) {
    const verified = buildZone(fixtureSnapshot(), {
      ...OPTIONS,
      strictSpec,
      podRecords: "verified",
      indexEndpoints: true,
    });
    // 198.18.0.50 is an endpoint of web.default; 198.18.0.11 this node's pod in default.
    assertEquals(
      pod(verified, "198-18-0-50.default.pod.cluster.local"),
      "NOERROR 198-18-0-50.default.pod.cluster.local. 30 IN A 198.18.0.50",
    );
    assertEquals(pod(verified, "198-18-0-50.prod.pod.cluster.local"), "NXDOMAIN");
    assertEquals(pod(verified, "1-2-3-4.default.pod.cluster.local"), "NXDOMAIN");
    assertEquals(
      pod(verified, "198-18-0-11.default.pod.cluster.local", nodePods),
      "NOERROR 198-18-0-11.default.pod.cluster.local. 30 IN A 198.18.0.11",
    );
    assertEquals(pod(verified, "198-18-0-11.prod.pod.cluster.local", nodePods), "NXDOMAIN");
    // A not-ready endpoint is still a pod that exists.
    assertEquals(
      pod(verified, "198-18-0-62.default.pod.cluster.local"),
      "NOERROR 198-18-0-62.default.pod.cluster.local. 30 IN A 198.18.0.62",
    );
  }
  const disabled = buildZone(fixtureSnapshot(), { ...OPTIONS, podRecords: "disabled" });
  assertEquals(pod(disabled, "198-18-0-50.default.pod.cluster.local"), "NXDOMAIN");
  assertEquals(pod(disabled, "default.pod.cluster.local"), "NOERROR", "the namespace still exists");
  const insecure = buildZone(fixtureSnapshot(), OPTIONS);
  assertEquals(
    pod(insecure, "1-2-3-4.default.pod.cluster.local"),
    "NOERROR 1-2-3-4.default.pod.cluster.local. 30 IN A 1.2.3.4",
  );
});

Deno.test("answerQuery: --endpoint-pod-names names endpoints without a hostname after their pod", () => {
  const store = new ModelStore();
  store.setService(makeService({
    namespace: "default",
    name: "db",
    headless: true,
    ports: [port("pg", "TCP", 5432)],
  }));
  store.setEndpointSet(endpointSet("default", "db", [{ name: "pg", protocol: "TCP", port: 5432 }], [
    ep("198.18.0.101", { podName: "db-7f9c-x2" }),
    ep("198.18.0.102", { hostname: "db-1", podName: "db-1" }),
  ]));
  store.setService(
    makeService({ namespace: "default", name: "web", clusterIPs: [ip("198.19.0.10")] }),
  );
  store.setEndpointSet(
    endpointSet("default", "web", [], [ep("198.18.0.50", { podName: "web-abc" })]),
  );
  store.setNamespaces(["default"]);
  const snapshot = store.commit().snapshot;
  const named = buildZone(snapshot, { ...OPTIONS, endpointPodNames: true });
  assertEquals(run(named, { name: "_pg._tcp.db.default.svc.cluster.local", type: "SRV" }).answer, [
    "_pg._tcp.db.default.svc.cluster.local. 30 IN SRV 0 50 5432 db-7f9c-x2.db.default.svc.cluster.local.",
    "_pg._tcp.db.default.svc.cluster.local. 30 IN SRV 0 50 5432 db-1.db.default.svc.cluster.local.",
  ]);
  assertEquals(run(named, { name: "101.0.18.198.in-addr.arpa", type: "PTR" }).answer, [
    "101.0.18.198.in-addr.arpa. 30 IN PTR db-7f9c-x2.db.default.svc.cluster.local.",
  ]);
  assertEquals(run(named, { name: "web-abc.web.default.svc.cluster.local", type: "A" }).answer, [
    "web-abc.web.default.svc.cluster.local. 30 IN A 198.18.0.50",
  ]);
  // Without the option, the dashed IP (as before).
  const plain = buildZone(snapshot, OPTIONS);
  assertEquals(run(plain, { name: "101.0.18.198.in-addr.arpa", type: "PTR" }).answer, [
    "101.0.18.198.in-addr.arpa. 30 IN PTR 198-18-0-101.db.default.svc.cluster.local.",
  ]);
});
