import { deepStrictEqual as assertEquals } from "node:assert/strict";
import {
  type ForwardZone,
  ForwardZones,
  parseForwardZone,
  shadowedZones,
} from "./forward_zones.ts";

Deno.test("parseForwardZone: ZONE=IP[:PORT][,IP[:PORT]...] and what is wrong, quoted", () => {
  const cases: [string, string | { zone: string; upstreams: string[] }][] = [
    ["corp.example=198.18.5.53", { zone: "corp.example", upstreams: ["198.18.5.53:53"] }],
    [
      "Corp.Example.=198.18.5.53:5353, [2001:db8::53]:53,2001:db8::54",
      {
        zone: "corp.example",
        upstreams: ["198.18.5.53:5353", "[2001:db8::53]:53", "[2001:db8::54]:53"],
      },
    ],
    ["5.18.198.in-addr.arpa=198.18.5.53", {
      zone: "5.18.198.in-addr.arpa",
      upstreams: ["198.18.5.53:53"],
    }],
    ["corp.example", "expected ZONE=IP[:PORT][,IP[:PORT]...]"],
    ["=198.18.5.53", "the root zone is not a forward zone (use --upstream for every other name)"],
    [".=198.18.5.53", "the root zone is not a forward zone (use --upstream for every other name)"],
    ["bad..zone=198.18.5.53", '"bad..zone" is not a DNS zone name'],
    [
      "corp.example=",
      'zone "corp.example" needs at least one IP[:PORT] after "=" and no empty entries',
    ],
    [
      "corp.example=198.18.5.53,",
      'zone "corp.example" needs at least one IP[:PORT] after "=" and no empty entries',
    ],
    ["corp.example=dns.corp.example", '"dns.corp.example" is not IP[:PORT]'],
    ["corp.example=198.18.5.53:0", '"198.18.5.53:0" is not IP[:PORT]'],
    ["corp.example=198.18.5.300", '"198.18.5.300" is not IP[:PORT]'],
  ];
  for (const [text, want] of cases) {
    const r = parseForwardZone(text);
    const got = typeof r === "string"
      ? r
      : { zone: r.zone, upstreams: r.upstreams.map((u) => u.text) };
    assertEquals(got, want, text);
  }
});

Deno.test("ForwardZones.match: the longest zone wins, any case, reverse zones too", () => {
  const z = (text: string) => parseForwardZone(text) as ForwardZone;
  const zones = new ForwardZones([
    z("corp.example=198.18.5.53"),
    z("ad.corp.example=198.18.5.54"),
    z("18.198.in-addr.arpa=198.18.5.55"),
    z("corp.example=198.18.5.99"), // a repeat loses to the first
  ]);
  const cases: [string, string | null][] = [
    ["corp.example", "corp.example"],
    ["www.corp.example.", "corp.example"],
    ["DC1.AD.Corp.Example", "ad.corp.example"],
    ["ad.corp.example", "ad.corp.example"],
    ["xad.corp.example", "corp.example"],
    ["notcorp.example", null],
    ["example", null],
    ["7.5.18.198.in-addr.arpa", "18.198.in-addr.arpa"],
    ["7.5.19.198.in-addr.arpa", null],
  ];
  for (const [name, want] of cases) assertEquals(zones.match(name)?.zone ?? null, want, name);
  assertEquals(zones.match("www.corp.example")?.upstreams[0].text, "198.18.5.53:53");
  assertEquals(new ForwardZones([]).match("corp.example"), null);
});

Deno.test("shadowedZones: zones svcgate answers itself are named", () => {
  const z = (text: string) => parseForwardZone(text) as ForwardZone;
  assertEquals(
    shadowedZones(
      [
        z("svc.cluster.local=198.18.5.53"),
        z("19.198.in-addr.arpa=198.18.5.53"),
        z("in-addr.arpa=198.18.5.53"),
      ],
      "cluster.local",
      ["0.19.198.in-addr.arpa", "19.198.in-addr.arpa"],
    ),
    [
      '--forward-zone "svc.cluster.local" is never used: svcgate answers for "cluster.local" itself',
      '--forward-zone "19.198.in-addr.arpa" is never used: svcgate answers for "19.198.in-addr.arpa" itself',
    ],
  );
});
