/**
 * Shared pieces of the nft benchmark: synthetic clusters, the kube-proxy-shaped ruleset used as
 * the comparison, and small statistics.
 * @module
 */

import { ModelStore } from "../../src/model/store.ts";
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
