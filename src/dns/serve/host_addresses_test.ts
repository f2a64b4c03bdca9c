import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { type Cidr, parseCidr } from "../../model/ip.ts";
import { LOOPBACK_TEXT, nodeAllowList, ownAddresses, sameCidrs } from "./host_addresses.ts";

const cidrs = (...t: string[]) => t.map((x) => parseCidr(x) as Cidr);
const BASE = cidrs(...LOOPBACK_TEXT, "198.18.0.0/24");

Deno.test("nodeAllowList: base, then a host route per node address it does not cover", () => {
  const cases: { addresses: string[]; want: string[] }[] = [
    { addresses: [], want: ["127.0.0.0/8", "::1/128", "198.18.0.0/24"] },
    {
      // The bind address, the node's uplink, a pod-bridge address (covered), loopback (covered).
      addresses: ["169.254.20.10", "198.18.100.1", "198.18.0.1", "127.0.0.1", "::1"],
      want: ["127.0.0.0/8", "::1/128", "198.18.0.0/24", "169.254.20.10/32", "198.18.100.1/32"],
    },
    {
      addresses: ["2001:db8:100::1", "fe80::1%eth0", "2001:DB8:100::1", "0.0.0.0", "junk"],
      want: ["127.0.0.0/8", "::1/128", "198.18.0.0/24", "2001:db8:100::1/128", "fe80::1/128"],
    },
  ];
  for (const c of cases) {
    assertEquals(nodeAllowList(BASE, c.addresses).map((x) => x.text), c.want, c.addresses.join());
  }
});

Deno.test("ownAddresses: the bind address, or every node address for a wildcard bind", () => {
  const nics = ["127.0.0.1", "198.18.100.1", "::1", "fe80::1%eth0", "198.18.100.1"];
  assertEquals(ownAddresses("169.254.20.10", nics), ["169.254.20.10"]);
  assertEquals(ownAddresses("0.0.0.0", nics), ["127.0.0.1", "198.18.100.1", "::1", "fe80::1"]);
  assertEquals(ownAddresses("::", ["198.18.100.1"]), ["198.18.100.1"]);
});

Deno.test("sameCidrs: order and content", () => {
  assertEquals(sameCidrs(BASE, cidrs(...LOOPBACK_TEXT, "198.18.0.0/24")), true);
  assertEquals(sameCidrs(BASE, cidrs(...LOOPBACK_TEXT)), false);
  assertEquals(sameCidrs(cidrs("::1/128", "127.0.0.0/8"), cidrs(...LOOPBACK_TEXT)), false);
});
