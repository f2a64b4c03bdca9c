/**
 * What the renderer knows about this node ({@link RenderOptions}), and the per-family views of it
 * that the skeleton and the fragments share. Pure.
 * @module
 */

import { bigIntToIp, canonicalIp, type Cidr, cidrContains, ipFamilyOf } from "../model/ip.ts";
import type { Family } from "./ruleset.ts";

/** What the renderer needs to know about this node. */
export interface RenderOptions {
  /** Pod CIDRs: ClusterIP traffic from outside them is masqueraded; empty disables that. */
  readonly clusterCidrs: readonly Cidr[];
  /** This node's name; endpoints with this nodeName are local (traffic policy Local). */
  readonly nodeName: string;
  /**
   * CIDRs whose local addresses accept NodePorts; empty means every local address (but never
   * loopback). When non-empty and no CIDR is of a family, that family serves no NodePorts.
   */
  readonly nodePortAddresses: readonly Cidr[];
  /** Node-local DNS binds: packets to and from them skip conntrack (raw hooks, priority -300). */
  readonly dnsNotrack?: readonly { readonly address: string; readonly port: number }[];
  /** Service CIDRs: traffic to an address in them that is no live ClusterIP is dropped. */
  readonly serviceCidrs?: readonly Cidr[];
  /** Packet mark bit that requests masquerade (default 0x4000, as kube-proxy). */
  readonly masqueradeBit?: number;
  /** Capacity of the dynamic affinity map (default 1,048,576 client/service pairs). */
  readonly affinityMapSize?: number;
}

/** Default masquerade mark bit. */
export const DEFAULT_MASQUERADE_BIT = 0x4000;

/** The IP family number of a table family. */
export function familyNumber(family: Family): 4 | 6 {
  return family === "ip" ? 4 : 6;
}

/** The CIDRs of a list that are of the family. */
export function cidrsOf(cidrs: readonly Cidr[] | undefined, family: Family): Cidr[] {
  return (cidrs ?? []).filter((c) => c.family === familyNumber(family));
}

/**
 * Drops CIDRs contained in another of the list (nft refuses overlapping intervals) and sorts.
 * Two CIDRs either nest or are disjoint, so this leaves a disjoint list.
 *
 * @example
 * ```ts
 * disjointCidrs([cidr("198.18.0.0/24"), cidr("198.18.0.0/16")]); // [198.18.0.0/16]
 * ```
 */
export function disjointCidrs(cidrs: readonly Cidr[]): Cidr[] {
  const sorted = [...cidrs].sort((a, b) => a.prefix - b.prefix);
  const kept: Cidr[] = [];
  for (const c of sorted) {
    const within = kept.some((k) =>
      k.family === c.family && k.prefix <= c.prefix &&
      cidrContains(k, bigIntToIp(c.network, c.family))
    );
    if (!within) kept.push(c);
  }
  return kept.sort((a, b) => (a.text < b.text ? -1 : a.text > b.text ? 1 : 0));
}

/** True when this family serves NodePorts under the options. */
export function nodePortsEnabled(family: Family, options: RenderOptions): boolean {
  return options.nodePortAddresses.length === 0 ||
    cidrsOf(options.nodePortAddresses, family).length > 0;
}

/** The packet mark bit that requests masquerade. */
export function masqueradeBit(options: RenderOptions): number {
  return options.masqueradeBit ?? DEFAULT_MASQUERADE_BIT;
}

/** The node-local DNS binds of the family, addresses in canonical form. */
export function dnsBinds(
  family: Family,
  options: RenderOptions,
): { address: string; port: number }[] {
  const out: { address: string; port: number }[] = [];
  for (const b of options.dnsNotrack ?? []) {
    const address = canonicalIp(b.address);
    if (address && ipFamilyOf(address) === familyNumber(family)) {
      out.push({ address, port: b.port });
    }
  }
  return out;
}
