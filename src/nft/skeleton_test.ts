import { cidr } from "../../tests/support/nft_fixtures.ts";
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { renderRuleset } from "./render.ts";
import type { RenderOptions } from "./render_options.ts";
import { ruleBody } from "./ruleset.ts";
import { EMPTY_SNAPSHOT } from "../model/snapshot.ts";

/** Options without CIDRs, so the golden lines show only what services contribute. */
const BARE: RenderOptions = { clusterCidrs: [], nodeName: "node-a", nodePortAddresses: [] };

Deno.test("render: options decide the fixed part (CIDRs, notrack chains, NodePorts per family)", () => {
  const options: RenderOptions = {
    clusterCidrs: [cidr("198.18.0.0/16"), cidr("198.18.5.0/24"), cidr("198.18.7.7/32")],
    nodeName: "node-a",
    nodePortAddresses: [cidr("198.18.100.0/24")],
    dnsNotrack: [{ address: "198.18.0.1", port: 53 }],
    serviceCidrs: [cidr("198.19.0.0/16")],
  };
  const [v4, v6] = renderRuleset(EMPTY_SNAPSHOT, options).tables;
  assertEquals([...v4.elements.get("cluster-cidrs")!.keys()], ["198.18.0.0/16"], "merged CIDRs");
  assertEquals(
    [...v4.elements.get("nodeport-cidrs")!.keys()],
    ["198.18.100.0/24"],
    "NodePort CIDRs",
  );
  assertEquals([...v4.elements.get("service-cidrs")!.keys()], ["198.19.0.0/16"], "service CIDRs");
  assertEquals(
    [...v4.elements.get("dns-notrack")!.keys()].sort(),
    ["198.18.0.1 . tcp . 53", "198.18.0.1 . udp . 53"],
    "notrack binds",
  );
  assert(v4.chains.has("raw-prerouting") && v4.chains.has("raw-output"), "v4 has raw chains");
  assert(!v6.chains.has("raw-prerouting"), "v6 has no raw chains: no v6 DNS bind");
  assert(v4.chains.has("nodeports"), "v4 serves NodePorts");
  assert(!v6.chains.has("nodeports") && !v6.sets.has("nodeport-cidrs"), "v6 serves no NodePorts");
  assertEquals(
    v4.chains.get("services")!.rules.map((r) => ruleBody(r, "ip")),
    [
      "ip saddr != @cluster-cidrs ip daddr @cluster-ips meta mark set meta mark | 0x00004000",
      "ip daddr . meta l4proto . th dport @external-masq meta mark set meta mark | 0x00004000",
      "ip daddr . meta l4proto . th dport vmap @vip-dispatch",
      "fib daddr type local ip daddr != 127.0.0.0/8 ip daddr @nodeport-cidrs goto nodeports",
    ],
    "services chain",
  );
  assertEquals(
    v4.chains.get("service-endpoints-check")!.rules.map((r) => ruleBody(r, "ip")),
    [
      "ip daddr . meta l4proto . th dport vmap @no-endpoint-services",
      "ip daddr @cluster-ips goto reject-chain",
      "ip daddr @service-cidrs drop",
    ],
    "endpoint checks",
  );
  // Without cluster CIDRs nothing is masqueraded for coming from outside them.
  const bare = renderRuleset(EMPTY_SNAPSHOT, BARE).tables[0];
  assertEquals(bare.chains.get("services")!.rules.length, 3, "no off-cluster masquerade rule");
});
