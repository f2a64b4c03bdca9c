import { deepStrictEqual as assertEquals, ok as assert, throws } from "node:assert/strict";
import { dynamicChain, isDynamicChain, lbChainName } from "./lb_chains.ts";
import { ruleBody } from "./ruleset.ts";

Deno.test("lb chains: names and the chains built from them", () => {
  const name = lbChainName("vip", false, "tcp", 3, true);
  assertEquals(name, "aff-vip-tcp-3", "name");
  assert(isDynamicChain(name) && isDynamicChain("affinity-record-60"), "dynamic");
  assert(!isDynamicChain("services") && !isDynamicChain("lb-vip-icmp-3"), "not dynamic");
  assertEquals(
    dynamicChain(name, "ip").rules.map((r) => ruleBody(r, "ip")),
    [
      "meta l4proto tcp dnat ip to ip saddr . ip daddr . th dport map @affinity-tcp",
      "meta l4proto tcp dnat ip to ip daddr . th dport . numgen random mod 3 map @vip-backends-tcp",
    ],
    "affinity lookup, then the pick",
  );
  assertEquals(
    dynamicChain("affinity-record-60", "ip").rules.map((r) => ruleBody(r, "ip")).length,
    3,
    "one record rule per protocol",
  );
  throws(() => dynamicChain("services", "ip"), /not a svcgate load-balancing chain/);
});
