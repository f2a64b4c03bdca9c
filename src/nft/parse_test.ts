import {
  cidr,
  endpointSet,
  ep,
  LAB_OPTIONS,
  port,
  service,
  snapshotOf,
} from "../../tests/support/nft_fixtures.ts";
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { opText, planFull } from "./diff.ts";
import { atomText, elementFromJson, parseDynamicMap, parseTable, verdictText } from "./parse.ts";
import { renderRuleset } from "./render.ts";
import { SETS } from "./skeleton.ts";
import { ip } from "../../tests/support/model_values.ts";

// The tests/fixtures/nft/nft106_*.json files are real `nft -j list` output of nft 1.0.6 (kernel 6.18) for
// the ruleset rendered below, loaded with `nft -f`; the affinity files were listed after traffic
// went through an affinity service.
function rendered() {
  const web = service("web", ["198.19.0.10", "2001:db8:ffff::10"], [], {
    type: "LoadBalancer",
    externalIPs: [ip("198.19.1.1"), ip("2001:db8:1::1")],
    loadBalancerIPs: [ip("198.19.2.1")],
    loadBalancerSourceRanges: [
      cidr("198.18.100.0/24"),
      cidr("198.18.7.7/32"),
      cidr("2001:db8::/32"),
    ],
    sessionAffinity: "ClientIP",
    sessionAffinityTimeoutSeconds: 5,
    externalTrafficPolicy: "Local",
    ports: [port(80, 8080, "TCP", "http", 30080), port(53, 9090, "UDP", "dns", 30053)],
  });
  const snap = snapshotOf([web], [
    endpointSet(web, [
      ep("198.18.0.10"),
      ep("198.18.0.11", { nodeName: "node-b" }),
      ep("2001:db8::a"),
    ]),
  ]);
  return renderRuleset(snap, {
    ...LAB_OPTIONS,
    dnsNotrack: [{ address: "198.18.0.1", port: 53 }],
    serviceCidrs: [cidr("198.19.0.0/16"), cidr("198.19.0.7/32")],
  });
}

for (const family of ["ip", "ip6"] as const) {
  Deno.test(`parse: real nft 1.0.6 JSON of the ${family} table reads back as exactly the rendered table`, async () => {
    const table = rendered().tables.find((t) => t.family === family)!;
    const json = await Deno.readTextFile(
      new URL(`../../tests/fixtures/nft/nft106_${family}.json`, import.meta.url),
    );
    const observed = parseTable(json, table);
    assertEquals(observed.problems, [], "problems");
    assertEquals(planFull(observed, table).map(opText), [], "difference");
    // And the comparison is not vacuous: the read-back holds the elements.
    assertEquals(
      observed.elements.get(SETS.vipDispatch)?.size,
      table.elements.get(SETS.vipDispatch)?.size,
      "vip-dispatch size",
    );
    assert((observed.elements.get(SETS.vipDispatch)?.size ?? 0) > 0, "elements were read");
  });
}

Deno.test("parse: real affinity map listings (IPv4 exact key, IPv6 hashed key) read as element text", async () => {
  const [v4, v6] = rendered().tables;
  const j4 = await Deno.readTextFile(
    new URL("../../tests/fixtures/nft/nft106_affinity_ip.json", import.meta.url),
  );
  const j6 = await Deno.readTextFile(
    new URL("../../tests/fixtures/nft/nft106_affinity_ip6.json", import.meta.url),
  );
  assertEquals(parseDynamicMap(j4, v4.sets.get("affinity-tcp")!), [
    ["198.18.100.2 . 198.19.0.11 . 80", "198.18.0.11 . 8080"],
  ], "ip");
  assertEquals(parseDynamicMap(j6, v6.sets.get(SETS.affinity)!), [
    ["3987166311 . 1247061755", "2001:db8::a"],
    ["577070119 . 1280811201", "2001:db8::a"],
  ], "ip6");
});

Deno.test("parse: element parts of every shape", () => {
  const rows: [unknown, Parameters<typeof atomText>[1], string][] = [
    ["198.19.0.1", "addr", "198.19.0.1"],
    ["2001:0db8:0:0::1", "addr", "2001:db8::1"],
    [{ prefix: { addr: "198.18.0.0", len: 16 } }, "cidr", "198.18.0.0/16"],
    [{ prefix: { addr: "198.18.7.7", len: 32 } }, "cidr", "198.18.7.7"],
    [{ range: ["198.18.0.5", "198.18.0.9"] }, "cidr", "198.18.0.5-198.18.0.9"],
    ["tcp", "proto", "tcp"],
    [17, "proto", "udp"],
    [132, "proto", "sctp"],
    [80, "port", "80"],
    ["8080", "port", "8080"],
    [3, "int", "3"],
  ];
  assertEquals(rows.map(([v, t]) => atomText(v, t)), rows.map((r) => r[2]), "atoms");
  assertEquals(
    [{ goto: { target: "lb-vip-2" } }, { jump: { target: "x" } }, { drop: null }].map(verdictText),
    ["goto lb-vip-2", "jump x", "drop"],
    "verdicts",
  );
});

Deno.test("parse: unreadable input becomes a problem (forcing a replace), never an exception", () => {
  const table = rendered().tables[0];
  assertEquals(parseTable("not json", table).problems.length, 1, "bad JSON");
  const bad = JSON.stringify({
    nftables: [{
      map: {
        family: "ip",
        table: "svcgate",
        name: SETS.vipDispatch,
        comment: "x",
        elem: [[{ concat: ["198.19.0.1", "tcp"] }, { goto: { target: "a" } }]],
      },
    }],
  });
  const observed = parseTable(bad, table);
  assertEquals(observed.problems.length, 1, "one unreadable element");
  assert(/has 2 parts, expected 3/.test(observed.problems[0]), observed.problems[0]);
  let threw = false;
  try {
    elementFromJson(
      [{ concat: ["x", "tcp", 80] }, { goto: { target: "a" } }],
      table.sets.get(SETS.vipDispatch)!,
    );
  } catch (e) {
    threw = /expected an address, got "x"/.test((e as Error).message);
  }
  assert(threw, "elementFromJson quotes the bad value");
});
