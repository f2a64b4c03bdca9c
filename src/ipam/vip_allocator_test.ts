import {
  deepStrictEqual as assertEquals,
  notDeepStrictEqual as assertNotEquals,
  strictEqual as assertStrictEquals,
} from "node:assert/strict";
import { type Cidr, parseCidr } from "../model/ip.ts";
import { testService as svc } from "../../tests/support/test_service.ts";
import { EMPTY_IPAM_STATE } from "./state.ts";
import { VipAllocator } from "./vip_allocator.ts";

const V4 = parseCidr("198.19.0.0/16") as Cidr;
const T0 = 1_700_000_000_000;

Deno.test("VipAllocator: keeps service identity when nothing changed (minimal diff for the store)", () => {
  const ipam = new VipAllocator(EMPTY_IPAM_STATE, { cidrs: [V4] });
  const web = svc("default/web"), api = svc("default/api");
  const r1 = ipam.allocate([web, api], T0);
  const r2 = ipam.allocate([web, api], T0 + 1);
  assertStrictEquals(r2.services[0], r1.services[0]);
  assertStrictEquals(r2.services[1], r1.services[1]);
  assertEquals(r2.stateChanged, false);
  const web2 = svc("default/web", { annotations: { a: "b" } });
  const r3 = ipam.allocate([web2, api], T0 + 2);
  assertNotEquals(r3.services[0], r1.services[0]);
  assertEquals(r3.services[0].clusterIPs, r1.services[0].clusterIPs);
  assertStrictEquals(r3.services[1], r1.services[1]);
  // Removal is remembered in the allocator's state.
  ipam.allocate([api], T0 + 3);
  assertEquals(Object.keys(ipam.state.allocations), ["default/api"]);
  assertEquals(ipam.state.released.length, 1);
});
