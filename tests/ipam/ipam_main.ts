/**
 * A stand-in for the daemon's IPAM start-up, run as its own process by the restart tests:
 * load the state (reconciled with the live VIPs given), allocate, save, print the VIPs.
 *
 * Usage:
 *   deno run -A ipam_main.ts allocate STATE_DIR '{"cidrs":[..],"services":[{"key":..,"families":[4]}],"live":{}}'
 *     -> prints {"problem":..,"vips":{"ns/name":["ip",..]},"errors":[..]}
 *   deno run -A ipam_main.ts churn STATE_DIR
 *     -> saves two alternating large states forever, printing "saving" once started (to be killed)
 * @module
 */

import { allocateVips } from "../../src/ipam/allocator.ts";
import type { IpamState } from "../../src/ipam/state.ts";
import { loadIpamState, saveIpamState } from "../../src/ipam/state_file.ts";
import { type Cidr, parseCidr } from "../../src/model/ip.ts";
import type { IpFamily, Service } from "../../src/model/types.ts";
import { testService } from "../support/test_service.ts";
import type { IpText } from "../../src/model/ip.ts";
import { ip } from "../support/model_values.ts";

const [mode, stateDir, json] = Deno.args;

function service(key: string, families: IpFamily[]): Service {
  return testService(key, { ipFamilies: families });
}

if (mode === "allocate") {
  const input = JSON.parse(json) as {
    cidrs: string[];
    services: { key: string; families: IpFamily[] }[];
    live: Record<string, string[]>;
  };
  const cidrs = input.cidrs.map((c) => parseCidr(c, true) as Cidr);
  const loaded = await loadIpamState(stateDir, input.live);
  const r = allocateVips(loaded.state, input.services.map((s) => service(s.key, s.families)), {
    cidrs,
    now: Date.now(),
  });
  if (r.stateChanged || loaded.needsSave) await saveIpamState(stateDir, r.state);
  const vips: Record<string, readonly string[]> = {};
  for (const s of r.services) vips[`${s.namespace}/${s.name}`] = s.clusterIPs;
  console.log(JSON.stringify({
    problem: loaded.problem ?? null,
    vips,
    errors: r.errors.map((e) => e.message),
  }));
} else if (mode === "churn") {
  const big = (octet: number): IpamState => {
    const allocations: Record<string, { ips: IpText[] }> = {};
    for (let i = 0; i < 5000; i++) {
      allocations[`ns/svc-${i}`] = { ips: [ip(`198.19.${octet + (i >> 8)}.${i & 255}`)] };
    }
    return { version: 1, allocations, released: [] };
  };
  const states = [big(0), big(100)];
  // Announced after the first whole save: a kill from then on must leave a whole file.
  await saveIpamState(stateDir, states[1]);
  console.log("saving");
  for (let i = 0;; i++) await saveIpamState(stateDir, states[i % 2]);
} else {
  console.error(`unknown mode ${JSON.stringify(mode)}`);
  Deno.exit(2);
}
