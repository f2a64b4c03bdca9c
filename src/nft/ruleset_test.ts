import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { cidr, LAB_OPTIONS } from "../../tests/support/nft_fixtures.ts";
import { opText } from "./diff.ts";
import { dynamicChain } from "./lb_chains.ts";
import { fixedChains, setSpecs } from "./skeleton.ts";
import { cidrAtom, fnv1a, naturalCompare, ruleBody, ruleText } from "./ruleset.ts";

Deno.test("ruleset: natural order puts 198.19.0.2 before 198.19.0.10", () => {
  assertEquals(
    ["198.19.0.10", "198.19.0.2", "198.19.0.1", "a-10", "a-9"].sort(naturalCompare),
    ["198.19.0.1", "198.19.0.2", "198.19.0.10", "a-9", "a-10"],
    "order",
  );
});

Deno.test("ruleset: host CIDRs are written as bare addresses, as nft lists them", () => {
  assertEquals(
    [cidr("198.18.7.7/32"), cidr("198.18.0.0/16"), cidr("2001:db8::1/128"), cidr("2001:db8::/64")]
      .map(cidrAtom),
    ["198.18.7.7", "198.18.0.0/16", "2001:db8::1", "2001:db8::/64"],
    "atoms",
  );
});

Deno.test("ruleset: rule tags hash the rule text", () => {
  const rule = fixedChains("ip", LAB_OPTIONS).find((c) => c.name === "reject-chain")!.rules[0];
  assertEquals(ruleBody(rule, "ip"), "meta l4proto tcp reject with tcp reset", "body");
  assertEquals(
    ruleText(rule, "ip"),
    `meta l4proto tcp reject with tcp reset comment "sg:${fnv1a(ruleBody(rule, "ip"))}"`,
    "text",
  );
  assertEquals(fnv1a(""), "811c9dc5", "FNV-1a offset basis");
});

Deno.test("ruleset: transaction lines for declarations", () => {
  const sets = new Map(setSpecs("ip6", LAB_OPTIONS).map((s) => [s.name, s]));
  const chains = new Map(fixedChains("ip", LAB_OPTIONS).map((c) => [c.name, c]));
  assertEquals(
    [
      opText({ op: "add-set", family: "ip6", set: sets.get("affinity")! }),
      opText({ op: "add-set", family: "ip6", set: sets.get("vip-backends-udp")! }),
      opText({ op: "add-chain", family: "ip", chain: chains.get("nat-prerouting")! }),
      opText({ op: "add-chain", family: "ip", chain: dynamicChain("lb-np-local-sctp-4", "ip") }),
      opText({
        op: "delete-elements",
        family: "ip",
        set: "hairpin",
        elements: [["198.18.0.1 . 198.18.0.1", ""]],
      }),
    ],
    [
      'add map ip6 svcgate affinity { typeof numgen random mod 1 . numgen random mod 1 : ip6 daddr; size 1048576; flags dynamic,timeout; timeout 10800s; comment "sg:a66b62bd"; }',
      'add map ip6 svcgate vip-backends-udp { typeof ip6 daddr . th dport . numgen random mod 1 : ip6 daddr . udp dport; comment "sg:a4408d70"; }',
      "add chain ip svcgate nat-prerouting { type nat hook prerouting priority -100; policy accept; }",
      "add chain ip svcgate lb-np-local-sctp-4",
      "delete element ip svcgate hairpin { 198.18.0.1 . 198.18.0.1 }",
    ],
    "lines",
  );
  assertEquals(
    ruleBody(dynamicChain("lb-np-local-sctp-4", "ip").rules[0], "ip"),
    "meta l4proto sctp dnat ip to th dport . numgen random mod 4 map @nodeport-local-backends-sctp",
    "lb chain rule",
  );
});
