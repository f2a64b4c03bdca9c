import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { answerQuery } from "./answer.ts";
import {
  hostSearchDomains,
  type ResolveUpstream,
  searchCandidates,
  searchOnServer,
} from "./autopath.ts";
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
import { fixtureZone, mapForwarder, MapUpstream } from "../../../tests/support/dns_fixture.ts";

const ZONE = fixtureZone();
const SOA =
  "cluster.local. 30 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. 1 7200 1800 86400 30";
const UPSTREAM_SOA =
  "example.org. 60 IN SOA ns.example.org. hostmaster.example.org. 1 7200 1800 86400 60";

Deno.test("hostSearchDomains: resolv.conf's last search line, without the cluster's domains", () => {
  const text = [
    "# kubelet appends these to a pod's list",
    "domain old.example",
    "search corp.example default.svc.cluster.local cluster.local lab.example corp.example",
    "nameserver 198.18.0.53",
  ].join("\n");
  assertEquals(hostSearchDomains(text, "cluster.local"), ["corp.example", "lab.example"]);
  assertEquals(hostSearchDomains("nameserver 198.18.0.53\n", "cluster.local"), []);
  assertEquals(hostSearchDomains("search Corp.Example. ; comment\n", "cluster.local"), [
    "corp.example",
  ]);
});

Deno.test("searchCandidates: the rest of kubelet's list in the question's case, then the bare name", () => {
  assertEquals(
    searchCandidates(ZONE, "www.Example.org.Default.Svc.Cluster.Local", "default", [
      "corp.example",
    ]),
    [
      "www.Example.org.Svc.Cluster.Local",
      "www.Example.org.Cluster.Local",
      "www.Example.org.corp.example",
      "www.Example.org",
    ],
  );
  // Not under the client's namespace: nothing to walk.
  assertEquals(
    searchCandidates(ZONE, "www.example.org.prod.svc.cluster.local", "default", []),
    null,
  );
  assertEquals(searchCandidates(ZONE, "default.svc.cluster.local", "default", []), null);
  assertEquals(searchCandidates(ZONE, "www.example.org", "default", []), null);
});

interface Walk {
  name: string;
  /** The client's namespace. */
  namespace: string;
  ask: string;
  type?: string;
  recursionAllowed?: boolean;
  searchDomains?: string[];
  expect: {
    rcode: string;
    answer?: string[];
    authority?: string[];
    /** Questions the upstream saw. */
    upstream?: string[];
  };
}

/**
 * kubelet's resolv.conf for a pod in namespace `default`: `search default.svc.cluster.local
 * svc.cluster.local cluster.local`, ndots:5. The client asks the first name; svcgate answers
 * what the client would have found last (or NXDOMAIN, and the client searches on).
 */
const WALKS: Walk[] = [
  {
    name: "a service in another namespace (web.other): CNAME to it, its address",
    namespace: "default",
    ask: "api.prod.default.svc.cluster.local",
    expect: {
      rcode: "NOERROR",
      answer: [
        "api.prod.default.svc.cluster.local. 30 IN CNAME api.prod.svc.cluster.local.",
        "api.prod.svc.cluster.local. 30 IN A 198.19.0.20",
      ],
      upstream: [],
    },
  },
  {
    name: "a service of the client's namespace asked by its full name without a dot",
    namespace: "default",
    ask: "web.default.svc.cluster.local.default.svc.cluster.local",
    expect: {
      rcode: "NOERROR",
      answer: [
        "web.default.svc.cluster.local.default.svc.cluster.local. 30 IN CNAME web.default.svc.cluster.local.",
        "web.default.svc.cluster.local. 30 IN A 198.19.0.10",
      ],
      upstream: [],
    },
  },
  {
    name: "an external name: the upstream's answer after a CNAME",
    namespace: "default",
    ask: "www.example.org.default.svc.cluster.local",
    expect: {
      rcode: "NOERROR",
      answer: [
        "www.example.org.default.svc.cluster.local. 60 IN CNAME www.example.org.",
        "www.example.org. 60 IN A 198.18.9.1",
      ],
      upstream: ["www.example.org 1"],
    },
  },
  {
    name: "an external name without AAAA: NODATA from the upstream, no CNAME",
    namespace: "default",
    ask: "www.example.org.default.svc.cluster.local",
    type: "AAAA",
    expect: { rcode: "NOERROR", answer: [], authority: [UPSTREAM_SOA] },
  },
  {
    name: "a name that exists nowhere: the first NXDOMAIN, the asked name, the zone's SOA",
    namespace: "default",
    ask: "nosuch.default.svc.cluster.local",
    expect: { rcode: "NXDOMAIN", answer: [], authority: [SOA], upstream: ["nosuch 1"] },
  },
  {
    name: "a namespace's name: NODATA at <ns>.svc.<zone> ends the walk (as a resolver's would)",
    namespace: "default",
    ask: "kube-system.default.svc.cluster.local",
    expect: { rcode: "NOERROR", answer: [], authority: [SOA], upstream: [] },
  },
  {
    name: "the host's search domains come before the bare name",
    namespace: "default",
    ask: "db.default.svc.cluster.local",
    searchDomains: ["corp.example"],
    expect: {
      rcode: "NOERROR",
      answer: [
        "db.default.svc.cluster.local. 30 IN A 198.18.0.101",
        "db.default.svc.cluster.local. 30 IN A 198.18.0.102",
        "db.default.svc.cluster.local. 30 IN A 198.18.0.103",
      ],
    },
  },
  {
    name: "a host search domain hit",
    namespace: "default",
    ask: "intranet.default.svc.cluster.local",
    searchDomains: ["corp.example"],
    expect: {
      rcode: "NOERROR",
      answer: [
        "intranet.default.svc.cluster.local. 60 IN CNAME intranet.corp.example.",
        "intranet.corp.example. 60 IN A 198.18.9.2",
      ],
      upstream: ["intranet.corp.example 1"],
    },
  },
  {
    name: "a client in prod reaching default's service as web.default",
    namespace: "prod",
    ask: "web.default.prod.svc.cluster.local",
    expect: {
      rcode: "NOERROR",
      answer: [
        "web.default.prod.svc.cluster.local. 30 IN CNAME web.default.svc.cluster.local.",
        "web.default.svc.cluster.local. 30 IN A 198.19.0.10",
      ],
    },
  },
  {
    name: "an ExternalName service found on the way is chased",
    namespace: "prod",
    ask: "ext.default.prod.svc.cluster.local",
    expect: {
      rcode: "NOERROR",
      answer: [
        "ext.default.prod.svc.cluster.local. 30 IN CNAME ext.default.svc.cluster.local.",
        "ext.default.svc.cluster.local. 30 IN CNAME example.org.",
        "example.org. 60 IN A 198.18.9.3",
      ],
      upstream: ["example.org 1"],
    },
  },
  {
    name: "the question's case is kept in the CNAME's owner and the cluster suffixes",
    namespace: "default",
    ask: "Api.Prod.Default.Svc.Cluster.Local",
    expect: {
      rcode: "NOERROR",
      answer: [
        "Api.Prod.Default.Svc.Cluster.Local. 30 IN CNAME Api.Prod.Svc.Cluster.Local.",
        "Api.Prod.Svc.Cluster.Local. 30 IN A 198.19.0.20",
      ],
    },
  },
  {
    name: "a client that may not recurse: cluster names only, the first answer otherwise",
    namespace: "default",
    ask: "www.example.org.default.svc.cluster.local",
    recursionAllowed: false,
    expect: { rcode: "NXDOMAIN", authority: [SOA], upstream: [] },
  },
  {
    name: "an upstream failure on the way: the first answer, the client searches on",
    namespace: "default",
    ask: "broken.example.org.default.svc.cluster.local",
    expect: { rcode: "NXDOMAIN", authority: [SOA] },
  },
  {
    name: "SRV of a service in another namespace",
    namespace: "default",
    ask: "_grpc._tcp.api.prod.default.svc.cluster.local",
    type: "SRV",
    expect: {
      rcode: "NOERROR",
      answer: [
        "_grpc._tcp.api.prod.default.svc.cluster.local. 30 IN CNAME _grpc._tcp.api.prod.svc.cluster.local.",
        "_grpc._tcp.api.prod.svc.cluster.local. 30 IN SRV 0 100 9000 api.prod.svc.cluster.local.",
      ],
    },
  },
];

function render(m: Message) {
  const d = decodeMessage(encodeMessage(m));
  if (!d.ok) throw new Error(d.error);
  return {
    rcode: rcodeName(d.message.rcode),
    question: d.message.questions.map((q) => q.name),
    answer: d.message.answers.map(formatRecord),
    authority: d.message.authority.map(formatRecord),
  };
}

for (const w of WALKS) {
  Deno.test(`searchOnServer: ${w.name}`, async () => {
    const upstream = new MapUpstream({
      "www.example.org": "198.18.9.1",
      "intranet.corp.example": "198.18.9.2",
      "example.org": "198.18.9.3",
    }, ["broken.example.org"]);
    const forwarder = mapForwarder(upstream);
    const resolve: ResolveUpstream = (q) => forwarder.resolve(q);
    const query = queryMessage(
      [{ name: w.ask, type: typeFromName(w.type ?? "A")!, class: RRClass.IN }],
      { id: 9 },
    );
    const ctx = { recursionAllowed: w.recursionAllowed ?? true };
    const first = answerQuery(ZONE, query, ctx);
    let reply: Message;
    if (first.kind === "reply" && first.message.rcode === 3) {
      const candidates = searchCandidates(ZONE, w.ask, w.namespace, w.searchDomains ?? []);
      const found = candidates && await searchOnServer(ZONE, query, candidates, ctx, resolve);
      reply = found ?? first.message;
    } else {
      if (first.kind !== "reply") throw new Error(`unexpected ${first.kind}`);
      reply = first.message;
    }
    const got = render(reply);
    assertEquals(got.question, [w.ask], "the question as asked");
    assertEquals(got.rcode, w.expect.rcode);
    if (w.expect.answer) assertEquals(got.answer, w.expect.answer);
    if (w.expect.authority) assertEquals(got.authority, w.expect.authority);
    if (w.expect.upstream) assertEquals(upstream.asked, w.expect.upstream);
  });
}
