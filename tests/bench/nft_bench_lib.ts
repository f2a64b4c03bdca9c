/**
 * Shared pieces of the nft benchmark: synthetic clusters, the kube-proxy-shaped ruleset used as
 * the comparison, and small statistics.
 * @module
 */

import { ModelStore } from "../../src/model/store.ts";
import type { Lab } from "../lab/lab.ts";
import type { Endpoint, Service } from "../../src/model/types.ts";
import { endpointSet, ep, port, service } from "../support/nft_fixtures.ts";

/** The VIP of synthetic service i: 198.19.x.y. */
export function vipOf(i: number): string {
  return `198.19.${(i >> 8) & 255}.${i & 255}`;
}

/**
 * Endpoint j of synthetic service i. Addresses cycle through 64,000 of 198.18.1.0-198.18.250.255
 * (a /16 holds fewer than the 100,000 endpoints of 10k x 10), so some are shared by two services.
 */
export function endpointOf(i: number, j: number, perService: number): string {
  const k = (i * perService + j) % 64000;
  return `198.18.${1 + (k >> 8)}.${k & 255}`;
}

/** A synthetic service. */
export function syntheticService(i: number): Service {
  return service(`svc-${i}`, [vipOf(i)], [port(80, 8080)]);
}

/**
 * A store with `count` services of `perService` endpoints each; services listed in `real` get
 * the given (reachable) endpoints instead.
 */
export function syntheticStore(
  count: number,
  perService: number,
  real: ReadonlyMap<number, readonly string[]> = new Map(),
): ModelStore {
  const store = new ModelStore();
  for (let i = 0; i < count; i++) {
    const s = syntheticService(i);
    store.setService(s);
    const addrs = real.get(i) ??
      Array.from({ length: perService }, (_, j) => endpointOf(i, j, perService));
    store.setEndpointSet(endpointSet(s, addrs.map((a): Endpoint => ep(a))));
  }
  store.commit();
  return store;
}

/**
 * The kube-proxy nftables shape for the same cluster (pkg/proxy/nftables): a chain per service
 * with an anonymous `numgen … vmap` to a chain per endpoint, each endpoint chain marking hairpin
 * traffic and DNATing. Command-per-line text for `nft -f`.
 */
export function kubeProxyShape(count: number, perService: number): string {
  const out = [
    "add table ip kube-proxy",
    "add map ip kube-proxy service-ips { type ipv4_addr . inet_proto . inet_service : verdict; }",
    "add chain ip kube-proxy mark-for-masquerade",
    "add rule ip kube-proxy mark-for-masquerade meta mark set meta mark | 0x4000",
    "add chain ip kube-proxy services",
    "add rule ip kube-proxy services ip daddr . meta l4proto . th dport vmap @service-ips",
    "add chain ip kube-proxy nat-prerouting { type nat hook prerouting priority -100; policy accept; }",
    "add rule ip kube-proxy nat-prerouting jump services",
  ];
  for (let i = 0; i < count; i++) {
    const svc = `service-${i.toString(16).padStart(8, "0")}-default/svc-${i}/tcp/`;
    const eps: string[] = [];
    for (let j = 0; j < perService; j++) {
      const addr = endpointOf(i, j, perService);
      const chain = `endpoint-${
        (i * perService + j).toString(16).padStart(8, "0")
      }-default/svc-${i}/tcp/__${addr}/8080`;
      out.push(`add chain ip kube-proxy ${chain}`);
      out.push(`add rule ip kube-proxy ${chain} ip saddr ${addr} jump mark-for-masquerade`);
      out.push(`add rule ip kube-proxy ${chain} meta l4proto tcp dnat to ${addr}:8080`);
      eps.push(`${j} : goto ${chain}`);
    }
    out.push(`add chain ip kube-proxy ${svc}`);
    out.push(
      `add rule ip kube-proxy ${svc} numgen random mod ${perService} vmap { ${eps.join(", ")} }`,
    );
    out.push(`add element ip kube-proxy service-ips { ${vipOf(i)} . tcp . 80 : goto ${svc} }`);
  }
  return out.join("\n") + "\n";
}

/** Percentile (0..100) of a list of numbers. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

/** Median. */
export function median(values: readonly number[]): number {
  return percentile(values, 50);
}

/**
 * Readies a lab for connection-rate slices. Thousands of new connections a second for a minute
 * would fill this kernel's conntrack table (262,144 entries; closed TCP flows stay 120 s in
 * TIME_WAIT) and then drop SYNs, throttling whichever slice comes later: a 1 s TIME_WAIT in the
 * node's namespace (a per-namespace setting) keeps the table small, as a busy node tunes it. The
 * pod servers named go to `serverCpu`: left to the scheduler, the single-threaded client and
 * servers sometimes share a CPU and a slice runs at about half the rate.
 */
export async function tuneForConnectionRates(
  lab: Lab,
  serverPods: readonly number[],
  serverCpu: number,
): Promise<void> {
  // Deno.Command, not the lab's runCommand: this module is also the nft bench child's, which
  // must not load the lab.
  const must = async (cmd: string[]) => {
    const r = await new Deno.Command(cmd[0], { args: cmd.slice(1), stdout: "null" }).output();
    if (r.code !== 0) {
      throw new Error(`"${cmd.join(" ")}" failed: ${new TextDecoder().decode(r.stderr).trim()}`);
    }
  };
  await must([
    ...["ip", "netns", "exec", lab.node.ns, "sysctl", "-qw"],
    "net.netfilter.nf_conntrack_tcp_timeout_time_wait=1",
  ]);
  for (const ns of [lab.client!.ns, lab.node.ns]) {
    await must(["ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.tcp_tw_reuse=1"]);
    await must([
      ...["ip", "netns", "exec", ns, "sysctl", "-qw"],
      "net.ipv4.ip_local_port_range=1024 65000",
    ]);
  }
  for (const pod of serverPods) {
    await must(["taskset", "-a", "-p", "-c", String(serverCpu), String(lab.podServerPid(pod))]);
  }
}
