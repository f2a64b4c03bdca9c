/**
 * Topology-aware routing costs nothing per packet: new TCP connections per second through a VIP
 * whose endpoints are narrowed by topology (trafficDistribution PreferClose, this node in zone-a)
 * against a VIP without topology, in the same table of N services that all use topology, same
 * run, slices interleaved. Topology is applied when a service is rendered (only the chosen
 * endpoints get selection slots), so both VIPs go through the same rules: one map lookup, one
 * numgen slot.
 *
 *   deno run -A tests/bench/topology_bench.ts [--services 10000] [--endpoints 10] [--seconds 1]
 *     [--rounds 11]
 *
 * Each round measures one slice of each VIP, back to back in alternating order; besides the
 * medians, the median of the per-round ratios is reported, which cancels most of a shared
 * machine's drift between rounds.
 *
 * The plain VIP lands on pod-1, the topology VIP on pod-2 (its zone-a endpoint; pod-1 is its
 * zone-b one), both servers pinned to the same CPU: two VIPs on one server met each other's
 * TIME_WAIT tuples and decayed round by round. Everything runs in network namespaces it creates
 * and deletes.
 * @module
 */

import { Lab, runCommand } from "../lab/lab.ts";
import { NftDataplane } from "../../src/nft/dataplane.ts";
import { NftCommandExecutor } from "../../src/nft/executor.ts";
import { ModelStore } from "../../src/model/store.ts";
import { cidr, endpointSet, ep, port, service } from "../support/nft_fixtures.ts";
import { endpointOf, median, syntheticService, tuneForConnectionRates } from "./nft_bench_lib.ts";

function flag(name: string, fallback: number): number {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 ? Number(Deno.args[i + 1]) : fallback;
}
const SERVICES = flag("services", 10000);
const ENDPOINTS = flag("endpoints", 10);
const SECONDS = flag("seconds", 1);
const ROUNDS = flag("rounds", 11);
const CLIENT_CPU = 0, SERVER_CPU = 1;
const HERE = new URL(".", import.meta.url).pathname;
const PLAIN_VIP = "198.19.250.1", NEAR_VIP = "198.19.250.2";

async function must(cmd: string[]): Promise<string> {
  const r = await runCommand(cmd);
  if (r.code !== 0) throw new Error(`"${cmd.join(" ")}" failed: ${r.stderr.trim()}`);
  return r.stdout;
}

/** Connections per second from the client host to vip:80 over one slice, and who answered. */
async function connRate(lab: Lab, vip: string): Promise<{ rate: number; pods: string }> {
  const r = await lab.exec(lab.client!.ns, [
    ...["taskset", "-c", String(CLIENT_CPU), Deno.execPath(), "run", "--allow-net"],
    `${HERE}../nft/probe.ts`,
    ...["load", vip, "80", String(Math.round(SECONDS * 1000)), "4"],
  ]);
  const out = JSON.parse(r.stdout.trim().split("\n").at(-1)!);
  if (out.failed > 0) {
    console.error(`    (${out.failed} failed to ${vip}: ${JSON.stringify(out.errors)})`);
  }
  return { rate: out.ok / SECONDS, pods: Object.keys(out.answers).sort().join(",") };
}

console.error(`topology benchmark: ${SERVICES} services x ${ENDPOINTS} endpoints, PreferClose`);
const lab = await Lab.create({ pods: 3, clientHost: true });
try {
  await lab.startPodServers();
  await tuneForConnectionRates(lab, [1, 2], SERVER_CPU);
  const store = new ModelStore();
  // N services with topology: half of each one's endpoints in this node's zone.
  for (let i = 0; i < SERVICES; i++) {
    const s = { ...syntheticService(i), trafficDistribution: "PreferClose" as const };
    store.setService(s);
    store.setEndpointSet(endpointSet(
      s,
      Array.from(
        { length: ENDPOINTS },
        (_, j) => ep(endpointOf(i, j, ENDPOINTS), { zone: j % 2 === 0 ? "zone-a" : "zone-b" }),
      ),
    ));
  }
  const plain = service("plain", [PLAIN_VIP], [port(80, 8080)]);
  const near = service("near", [NEAR_VIP], [port(80, 8080)], {
    trafficDistribution: "PreferClose",
  });
  store.setService(plain);
  store.setEndpointSet(endpointSet(plain, [ep(lab.pods[1].ip, { zone: "zone-a" })]));
  store.setService(near);
  // Topology sends near's connections to its zone-a endpoint, pod-2: never the pod plain's go
  // to, since a connection from a client port whose server-side tuple still sits in the other
  // VIP's TIME_WAIT is refused and retried a second later (both on pod-1 decayed every round).
  store.setEndpointSet(endpointSet(near, [
    ep(lab.pods[2].ip, { zone: "zone-a" }),
    ep(lab.pods[1].ip, { zone: "zone-b" }),
  ]));
  const argvPrefix = ["ip", "netns", "exec", lab.node.ns];
  const dataplane = new NftDataplane({
    executor: new NftCommandExecutor({ argvPrefix }),
    renderOptions: {
      clusterCidrs: [cidr("198.18.0.0/16")],
      nodeName: "node-a",
      nodePortAddresses: [],
      zone: "zone-a",
    },
  });
  const t0 = performance.now();
  await dataplane.apply(store.commit().snapshot);
  console.error(`  loaded ${SERVICES + 2} services in ${Math.round(performance.now() - t0)} ms`);
  // The same rules serve both VIPs: one dispatch element each, to a one-slot chain each.
  const dispatch = (await must([
    "ip",
    "netns",
    "exec",
    lab.node.ns,
    "nft",
    "list",
    "map",
    "ip",
    "svcgate",
    "vip-dispatch",
  ]))
    .split("\n").filter((l) => l.includes("198.19.250."));
  console.error(`  dispatch elements: ${dispatch.map((l) => l.trim()).join(" | ")}`);
  const plainRates: number[] = [], nearRates: number[] = [], ratios: number[] = [];
  const seen = { plain: new Set<string>(), near: new Set<string>() };
  for (let round = 0; round < ROUNDS; round++) {
    // Alternate which goes first, so neither always meets the other's TIME_WAIT leftovers.
    const [first, second] = round % 2 === 0 ? [PLAIN_VIP, NEAR_VIP] : [NEAR_VIP, PLAIN_VIP];
    const a = await connRate(lab, first), b = await connRate(lab, second);
    const [p, n] = first === PLAIN_VIP ? [a, b] : [b, a];
    plainRates.push(p.rate);
    nearRates.push(n.rate);
    ratios.push(n.rate / p.rate);
    seen.plain.add(p.pods);
    seen.near.add(n.pods);
  }
  console.log(`\ntopology benchmark (${new Date().toISOString().slice(0, 10)})`);
  console.log(
    `new TCP connections/s at ${SERVICES} services (every one PreferClose), ${ROUNDS} rounds of ${SECONDS} s slices, 4 parallel clients:`,
  );
  console.log(
    `  VIP without topology  median ${Math.round(median(plainRates))}  (${
      plainRates.map(Math.round)
    }; answered by ${[...seen.plain]})`,
  );
  console.log(
    `  VIP with topology     median ${Math.round(median(nearRates))}  (${
      nearRates.map(Math.round)
    }; answered by ${[...seen.near]})`,
  );
  console.log(
    `  with / without: ratio of medians ${
      (median(nearRates) / median(plainRates)).toFixed(2)
    }, median of per-round ratios ${median(ratios).toFixed(2)} (target >= 0.95)`,
  );
  const loadavg = (await Deno.readTextFile("/proc/loadavg")).split(" ").slice(0, 3).join(" ");
  console.log(`  machine load average during the run: ${loadavg}`);
} finally {
  await lab.destroy();
}
