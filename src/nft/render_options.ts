/**
 * What the renderer knows about this node ({@link RenderOptions}), and the per-family views of it
 * that the skeleton and the fragments share. Pure.
 * @module
 */

import {
  bigIntToIp,
  canonicalIp,
  type Cidr,
  cidrContains,
  ipFamilyOf,
  type IpText,
  parseCidr,
} from "../model/ip.ts";
import type { Family } from "./ruleset.ts";
import type { NodeFacts } from "../model/types.ts";

/**
 * How traffic from this node's pods is told apart from other traffic (kube-proxy's
 * `--detect-local-mode`): by source address in the pod CIDRs (ClusterCIDR: `--cluster-cidr`;
 * NodeCIDR: this node's `spec.podCIDRs`), or by the interface it came in on (a bridge, or
 * interfaces whose names start with a prefix).
 */
export type LocalDetect =
  | { readonly mode: "ClusterCIDR" }
  | { readonly mode: "NodeCIDR" }
  | { readonly mode: "BridgeInterface"; readonly bridge: string }
  | { readonly mode: "InterfaceNamePrefix"; readonly prefix: string };

/** What the renderer needs to know about this node. */
export interface RenderOptions {
  /**
   * Pod CIDRs: ClusterIP traffic from outside them is masqueraded; empty disables that. With
   * `localDetect` NodeCIDR, this node's pod CIDRs (from its Node object) take their place.
   */
  readonly clusterCidrs: readonly Cidr[];
  /** How pod traffic is recognised (default ClusterCIDR). */
  readonly localDetect?: LocalDetect;
  /** `--masquerade-all`: every connection to a ClusterIP is masqueraded, as kube-proxy's. */
  readonly masqueradeAll?: boolean;
  /**
   * `--nodeport-addresses primary`: NodePorts on this node's primary addresses only (one per
   * family); `nodePortAddresses` holds them as host CIDRs, and the Node object's addresses take
   * their place in Kubernetes mode.
   */
  readonly nodePortPrimary?: boolean;
  /** This node's name; endpoints with this nodeName are local (traffic policy Local). */
  readonly nodeName: string;
  /**
   * This node's zone (`topology.kubernetes.io/zone`), for topology-aware routing; in Kubernetes
   * mode the Node object's label (the snapshot's node) takes its place, see
   * {@link effectiveRenderOptions}.
   */
  readonly zone?: string;
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
  /**
   * This node's own addresses. When a service's `loadBalancerSourceRanges` include one of them,
   * its load-balancer IPs are allowed sources too, as kube-proxy does: a node reaching a VIP-like
   * LB IP that is one of its local addresses loops back with that LB IP as the source.
   */
  readonly nodeIps?: readonly IpText[];
}

/**
 * The options a snapshot renders with: what its node's facts say (Kubernetes mode: this node's
 * Node object) in place of the static ones. Returns `options` itself when nothing differs, so
 * callers can compare by identity.
 *
 * @example
 * ```ts
 * const options = effectiveRenderOptions(base, snapshot.node);
 * ```
 */
export function effectiveRenderOptions(
  options: RenderOptions,
  node: NodeFacts | undefined,
  serviceCidrs?: readonly Cidr[],
): RenderOptions {
  let out: RenderOptions = options;
  const change = (patch: Partial<RenderOptions>) => (out = { ...out, ...patch });
  if (serviceCidrs !== undefined) change({ serviceCidrs });
  if (options.localDetect?.mode === "NodeCIDR") change({ clusterCidrs: node?.podCidrs ?? [] });
  if (!node) return out;
  if (node.zone !== options.zone) {
    const { zone: _, ...rest } = out;
    out = node.zone === undefined ? rest : { ...rest, zone: node.zone };
  }
  if (options.nodePortPrimary && node.addresses.length > 0) {
    change({ nodePortAddresses: primaryCidrs(node.addresses) });
  }
  return out;
}

/**
 * The first address of each family, as host CIDRs (kube-proxy's "primary" node IPs).
 *
 * @example
 * ```ts
 * primaryCidrs(["198.18.0.1", "198.18.100.1", "2001:db8::1"]); // 198.18.0.1/32, 2001:db8::1/128
 * ```
 */
export function primaryCidrs(addresses: readonly string[]): Cidr[] {
  const out: Cidr[] = [];
  for (const family of [4, 6] as const) {
    const first = addresses.find((a) =>
      canonicalIp(a) !== null && ipFamilyOf(a as IpText) === family
    );
    if (first === undefined) continue;
    const cidr = parseCidr(`${first}/${family === 4 ? 32 : 128}`);
    if (typeof cidr !== "string") out.push(cidr);
  }
  return out;
}

/** A text that differs exactly when two options render differently (for change detection). */
export function renderOptionsKey(options: RenderOptions): string {
  return JSON.stringify(options, (_k, v) => typeof v === "bigint" ? v.toString() : v);
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
