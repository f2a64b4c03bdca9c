/**
 * Snapshot -> desired nftables ruleset. Pure.
 *
 * Shape (per family, table `ip svcgate` / `ip6 svcgate`): a fixed handful of chains, and big maps
 * keyed by `address . protocol . port` (or `protocol . port` for NodePorts):
 *
 * - `vip-dispatch` sends a new connection to a shared chain `lb-vip-tcp-N` chosen by protocol and
 *   the number N of endpoints; that chain's single rule is
 *   `meta l4proto tcp dnat to ip daddr . th dport . numgen random mod N map @vip-backends-tcp`, and
 *   `vip-backends-tcp` holds one element per endpoint (slot i -> endpoint i). Every endpoint owns
 *   exactly one of the N slots, so load balancing is even by construction, and the number of
 *   chains grows with the number of *distinct* endpoint counts, not with services.
 * - Changing one service is a handful of element adds and deletes; no chain is rewritten unless a
 *   new endpoint count appears (one small chain) or disappears.
 * - No endpoints: an element in `no-endpoint-services` (filter hooks) rejects at once; an unknown
 *   port on a live ClusterIP is rejected by the `cluster-ips` set.
 * - Masquerade: the packet mark bit (0x4000 by default, like kube-proxy) for traffic from outside
 *   the cluster CIDRs and external traffic with policy Cluster; hairpin by the `hairpin` set of
 *   `endpoint . endpoint` pairs, checked after DNAT.
 * - Session affinity: dynamic maps (client . service -> endpoint) written in nat postrouting by
 *   `affinity-record-T` chains (one per distinct timeout) and read first in `aff-…-N` chains. IPv4
 *   has one map per protocol (`affinity-tcp`, …). nft 1.0.6 cannot compile a map update whose key
 *   or value exceeds 16 bytes, so IPv6 has one map keyed by two 32-bit jhashes of
 *   client . service, stores the endpoint address only, and takes the port from the static
 *   `affinity-vip-ports` map (affinity over IPv6 thus needs all endpoints of a port on one target
 *   port; otherwise it is rendered off, with a warning).
 * - Map values are typed `typeof ip daddr . tcp dport` (one map per protocol) rather than
 *   `ip daddr . th dport`: nft 1.0.6 refuses any rule added later that looks up a map whose stored
 *   `typeof` value mixes `ip` and `th` ("conflicting protocols specified"), and a `tcp dport` value
 *   makes nft add an implicit `meta l4proto tcp` to the lookup rule.
 *
 * {@link TableBuilder} keeps a table incrementally (per-service fragments, reference-counted chains
 * and shared elements) and journals what changed, so a sync touches O(changed) data.
 * @module
 */

import { canonicalIp, type Cidr, cidrContains, ipFamilyOf, parseCidr } from "../model/ip.ts";
import {
  type Backend,
  type ServiceEntry,
  type Snapshot,
  usableBackends,
} from "../model/snapshot.ts";
import type { ServiceKey, ServicePort } from "../model/types.ts";
import {
  type ChainSpec,
  cidrAtom,
  type Expr,
  FAMILIES,
  type Family,
  type Key,
  L4_PROTOS,
  type L4Proto,
  type Match,
  type Rule,
  type Ruleset,
  type SetSpec,
  type Stmt,
  type TableSpec,
} from "./ruleset.ts";
import { PackedStringMap } from "./packed_map.ts";

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
const DEFAULT_AFFINITY_SIZE = 1_048_576;
/** jhash seeds of the IPv6 affinity key; constants so prerouting and postrouting agree. */
const AFFINITY_SEEDS = [0x53474131, 0x53474132] as const;
const KUBE_DEFAULT_AFFINITY_SECONDS = 10800;

/** Names of the sets and maps, in one place. */
export const SETS = {
  clusterCidrs: "cluster-cidrs",
  nodePortCidrs: "nodeport-cidrs",
  serviceCidrs: "service-cidrs",
  clusterIps: "cluster-ips",
  serviceAddrs: "service-addrs",
  externalMasq: "external-masq",
  nodePortMasq: "nodeport-masq",
  vipDispatch: "vip-dispatch",
  vipClusterDispatch: "vip-cluster-dispatch",
  vipLocalDispatch: "vip-local-dispatch",
  nodePortDispatch: "nodeport-dispatch",
  nodePortClusterDispatch: "nodeport-cluster-dispatch",
  nodePortLocalDispatch: "nodeport-local-dispatch",
  noEndpointServices: "no-endpoint-services",
  noEndpointNodePorts: "no-endpoint-nodeports",
  firewallIps: "firewall-ips",
  firewallAllow: "firewall-allow",
  hairpin: "hairpin",
  affinity: "affinity",
  affinityVipTimeouts: "affinity-vip-timeouts",
  affinityNodePortTimeouts: "affinity-nodeport-timeouts",
  affinityVipPorts: "affinity-vip-ports",
  affinityNodePortPorts: "affinity-nodeport-ports",
  dnsNotrack: "dns-notrack",
} as const;

/** Where a backend map is used. */
export interface BackendMapInfo {
  readonly kind: "vip" | "np";
  readonly local: boolean;
  readonly proto: L4Proto;
}

/**
 * Name of a backend map: `vip-backends-tcp`, `nodeport-local-backends-udp`. One map per protocol
 * because nft 1.0.6 can only type a map value's port as `tcp dport`/`udp dport`/`sctp dport`
 * (see the module notes), and such a map then only serves that protocol.
 */
export function backendMap(kind: "vip" | "np", local: boolean, proto: L4Proto): string {
  return `${kind === "vip" ? "vip" : "nodeport"}${local ? "-local" : ""}-backends-${proto}`;
}

/** Every backend map (elements `address . port . slot` or `port . slot` -> `address . port`). */
export const BACKEND_MAPS: ReadonlyMap<string, BackendMapInfo> = new Map(
  (["vip", "np"] as const).flatMap((kind) =>
    [false, true].flatMap((local) =>
      L4_PROTOS.map((
        proto,
      ): [string, BackendMapInfo] => [backendMap(kind, local, proto), { kind, local, proto }])
    )
  ),
);

/** The dynamic affinity map of a protocol: per protocol for IPv4, one for IPv6 (hashed key). */
export function affinityMap(family: Family, proto: L4Proto): string {
  return family === "ip" ? `${SETS.affinity}-${proto}` : SETS.affinity;
}

const SADDR: Expr = { e: "saddr" };
const DADDR: Expr = { e: "daddr" };
const PROTO: Expr = { e: "l4proto" };
const DPORT: Expr = { e: "dport" };
const SPORT: Expr = { e: "sport" };
const ORIG_DADDR: Expr = { e: "ct-orig-daddr" };
const ORIG_DPORT: Expr = { e: "ct-orig-dport" };
const VIP_KEY: Key = [DADDR, PROTO, DPORT];
const NP_KEY: Key = [PROTO, DPORT];

function addrType(family: Family): string {
  return family === "ip" ? "ipv4_addr" : "ipv6_addr";
}

function familyNumber(family: Family): 4 | 6 {
  return family === "ip" ? 4 : 6;
}

function cidrsOf(cidrs: readonly Cidr[] | undefined, family: Family): Cidr[] {
  return (cidrs ?? []).filter((c) => c.family === familyNumber(family));
}

/**
 * Drops CIDRs contained in another of the list (nft refuses overlapping intervals) and sorts.
 * Two CIDRs either nest or are disjoint, so this leaves a disjoint list.
 */
export function disjointCidrs(cidrs: readonly Cidr[]): Cidr[] {
  const sorted = [...cidrs].sort((a, b) => a.prefix - b.prefix);
  const kept: Cidr[] = [];
  for (const c of sorted) {
    const within = kept.some((k) =>
      k.family === c.family && k.prefix <= c.prefix &&
      cidrContains(k, { family: c.family, bytes: bigToBytes(c.network, c.family) })
    );
    if (!within) kept.push(c);
  }
  return kept.sort((a, b) => (a.text < b.text ? -1 : a.text > b.text ? 1 : 0));
}

function bigToBytes(n: bigint, family: 4 | 6): Uint8Array {
  const len = family === 4 ? 4 : 16;
  const out = new Uint8Array(len);
  for (let i = len - 1; i >= 0; i--) {
    out[i] = Number(n & 0xffn);
    n >>= 8n;
  }
  return out;
}

/** True when this family serves NodePorts under the options. */
export function nodePortsEnabled(family: Family, options: RenderOptions): boolean {
  return options.nodePortAddresses.length === 0 ||
    cidrsOf(options.nodePortAddresses, family).length > 0;
}

function masqBit(options: RenderOptions): number {
  return options.masqueradeBit ?? DEFAULT_MASQUERADE_BIT;
}

function dnsBinds(family: Family, options: RenderOptions): { address: string; port: number }[] {
  const out: { address: string; port: number }[] = [];
  for (const b of options.dnsNotrack ?? []) {
    const address = canonicalIp(b.address);
    if (address && ipFamilyOf(address) === familyNumber(family)) {
      out.push({ address, port: b.port });
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Declarations

function set(
  name: string,
  decl: string,
  keyTypes: SetSpec["keyTypes"],
  extra: Partial<SetSpec> = {},
): SetSpec {
  return { name, kind: "set", decl, keyTypes, ...extra };
}

function map(
  name: string,
  decl: string,
  keyTypes: SetSpec["keyTypes"],
  valueTypes: SetSpec["valueTypes"],
  extra: Partial<SetSpec> = {},
): SetSpec {
  return { name, kind: "map", decl, keyTypes, valueTypes, ...extra };
}

function affinityKey(family: Family, daddr: Expr, dport: Expr): Key {
  if (family === "ip") return [SADDR, daddr, dport];
  const input: Key = [SADDR, daddr, PROTO, dport];
  return AFFINITY_SEEDS.map((seed): Expr => ({ e: "jhash", input, seed }));
}

/** Every set and map of a family's table under the options. */
export function setSpecs(family: Family, options: RenderOptions): SetSpec[] {
  const A = addrType(family);
  const f = family;
  const vipVerdict = (name: string) =>
    map(
      name,
      `type ${A} . inet_proto . inet_service : verdict`,
      ["addr", "proto", "port"],
      "verdict",
    );
  const npVerdict = (name: string) =>
    map(name, "type inet_proto . inet_service : verdict", ["proto", "port"], "verdict");
  const specs: SetSpec[] = [
    set(SETS.clusterCidrs, `type ${A}`, ["cidr"], { flags: ["interval"] }),
    set(SETS.clusterIps, `type ${A}`, ["addr"], { commentValue: true }),
    set(SETS.serviceAddrs, `type ${A}`, ["addr"]),
    set(SETS.externalMasq, `type ${A} . inet_proto . inet_service`, ["addr", "proto", "port"]),
    set(SETS.nodePortMasq, "type inet_proto . inet_service", ["proto", "port"]),
    vipVerdict(SETS.vipDispatch),
    vipVerdict(SETS.vipClusterDispatch),
    vipVerdict(SETS.vipLocalDispatch),
    vipVerdict(SETS.noEndpointServices),
    vipVerdict(SETS.affinityVipTimeouts),
    npVerdict(SETS.nodePortDispatch),
    npVerdict(SETS.nodePortClusterDispatch),
    npVerdict(SETS.nodePortLocalDispatch),
    npVerdict(SETS.noEndpointNodePorts),
    npVerdict(SETS.affinityNodePortTimeouts),
    ...[...BACKEND_MAPS].map(([name, info]) =>
      info.kind === "vip"
        ? map(
          name,
          `typeof ${f} daddr . th dport . numgen random mod 1 : ${f} daddr . ${info.proto} dport`,
          ["addr", "port", "int"],
          ["addr", "port"],
        )
        : map(
          name,
          `typeof th dport . numgen random mod 1 : ${f} daddr . ${info.proto} dport`,
          ["port", "int"],
          ["addr", "port"],
        )
    ),
    set(SETS.firewallIps, `type ${A} . inet_proto . inet_service`, ["addr", "proto", "port"]),
    set(SETS.firewallAllow, `type ${A} . inet_proto . inet_service . ${A}`, [
      "addr",
      "proto",
      "port",
      "cidr",
    ], { flags: ["interval"] }),
    set(SETS.hairpin, `type ${A} . ${A}`, ["addr", "addr"]),
  ];
  const affinityCommon: Partial<SetSpec> = {
    size: options.affinityMapSize ?? DEFAULT_AFFINITY_SIZE,
    flags: ["dynamic", "timeout"],
    timeoutSeconds: KUBE_DEFAULT_AFFINITY_SECONDS,
    dynamic: true,
  };
  if (family === "ip") {
    for (const p of L4_PROTOS) {
      specs.push(map(
        affinityMap(family, p),
        `typeof ip saddr . ip daddr . th dport : ip daddr . ${p} dport`,
        ["addr", "addr", "port"],
        ["addr", "port"],
        affinityCommon,
      ));
    }
  } else {
    specs.push(
      map(
        SETS.affinity,
        // Declared by numgen's type (a 32-bit integer, like jhash): nft 1.0.6 crashes when it
        // lists a map declared `typeof jhash …`.
        "typeof numgen random mod 1 . numgen random mod 1 : ip6 daddr",
        ["int", "int"],
        ["addr"],
        affinityCommon,
      ),
      map(
        SETS.affinityVipPorts,
        "typeof ip6 daddr . meta l4proto . th dport : th dport",
        ["addr", "proto", "port"],
        ["port"],
      ),
      map(
        SETS.affinityNodePortPorts,
        "typeof meta l4proto . th dport : th dport",
        ["proto", "port"],
        ["port"],
      ),
    );
  }
  if (nodePortsEnabled(family, options) && options.nodePortAddresses.length > 0) {
    specs.push(set(SETS.nodePortCidrs, `type ${A}`, ["cidr"], { flags: ["interval"] }));
  }
  if (cidrsOf(options.serviceCidrs, family).length > 0) {
    specs.push(set(SETS.serviceCidrs, `type ${A}`, ["cidr"], { flags: ["interval"] }));
  }
  if (dnsBinds(family, options).length > 0) {
    specs.push(set(SETS.dnsNotrack, `type ${A} . inet_proto . inet_service`, [
      "addr",
      "proto",
      "port",
    ]));
  }
  return specs;
}

// ---------------------------------------------------------------------------------------------
// Chains

function rule(matches: Match[], stmts: Stmt[]): Rule {
  return { matches, stmts };
}

const NEW: Match = { m: "ct-state-new" };

function inSet(key: Key, name: string, negate = false): Match {
  return negate ? { m: "in", key, set: name, negate: true } : { m: "in", key, set: name };
}

/** The chains every table has under the options (everything except lb/aff/record chains). */
export function fixedChains(family: Family, options: RenderOptions): ChainSpec[] {
  const bit = masqBit(options);
  const markMasq: Stmt = { s: "mark-or", bit };
  const nodePorts = nodePortsEnabled(family, options);
  const npAddrMatches: Match[] = [
    { m: "fib-local", addr: "daddr" },
    { m: "not-loopback" },
    ...(options.nodePortAddresses.length > 0 ? [inSet([DADDR], SETS.nodePortCidrs)] : []),
  ];
  const chains: ChainSpec[] = [
    {
      name: "firewall-prerouting",
      base: { type: "filter", hook: "prerouting", priority: -110 },
      rules: [rule([NEW], [{ s: "jump", chain: "firewall-check" }])],
    },
    {
      name: "firewall-output",
      base: { type: "filter", hook: "output", priority: -110 },
      rules: [rule([NEW], [{ s: "jump", chain: "firewall-check" }])],
    },
    {
      name: "firewall-check",
      rules: [
        rule([
          inSet(VIP_KEY, SETS.firewallIps),
          inSet([DADDR, PROTO, DPORT, SADDR], SETS.firewallAllow, true),
        ], [{ s: "drop" }]),
      ],
    },
    {
      name: "filter-input",
      base: { type: "filter", hook: "input", priority: 0 },
      rules: [
        ...(nodePorts ? [rule([NEW], [{ s: "jump", chain: "nodeport-endpoints-check" }])] : []),
        rule([NEW], [{ s: "jump", chain: "service-endpoints-check" }]),
      ],
    },
    {
      name: "filter-forward",
      base: { type: "filter", hook: "forward", priority: 0 },
      rules: [rule([NEW], [{ s: "jump", chain: "service-endpoints-check" }])],
    },
    {
      name: "filter-output",
      base: { type: "filter", hook: "output", priority: 0 },
      rules: [
        rule([NEW], [{ s: "jump", chain: "service-endpoints-check" }]),
        ...(nodePorts ? [rule([NEW], [{ s: "jump", chain: "nodeport-endpoints-check" }])] : []),
      ],
    },
    {
      name: "service-endpoints-check",
      rules: [
        rule([], [{ s: "vmap", key: VIP_KEY, map: SETS.noEndpointServices }]),
        rule([inSet([DADDR], SETS.clusterIps)], [{ s: "goto", chain: "reject-chain" }]),
        ...(cidrsOf(options.serviceCidrs, family).length > 0
          ? [rule([inSet([DADDR], SETS.serviceCidrs)], [{ s: "drop" }])]
          : []),
      ],
    },
    {
      name: "reject-chain",
      rules: [
        rule([{ m: "l4proto", protos: ["tcp"] }], [{ s: "reject", tcpReset: true }]),
        rule([], [{ s: "reject" }]),
      ],
    },
    {
      name: "nat-prerouting",
      base: { type: "nat", hook: "prerouting", priority: -100 },
      rules: [rule([], [{ s: "jump", chain: "services" }])],
    },
    {
      name: "nat-output",
      base: { type: "nat", hook: "output", priority: -100 },
      rules: [rule([], [{ s: "jump", chain: "services" }])],
    },
    {
      name: "nat-postrouting",
      base: { type: "nat", hook: "postrouting", priority: 100 },
      rules: [
        rule([{ m: "ct-status-dnat" }], [{ s: "jump", chain: "affinity-record" }]),
        rule([], [{ s: "jump", chain: "masquerading" }]),
      ],
    },
    {
      name: "services",
      rules: [
        ...(cidrsOf(options.clusterCidrs, family).length > 0
          ? [rule([inSet([SADDR], SETS.clusterCidrs, true), inSet([DADDR], SETS.clusterIps)], [
            markMasq,
          ])]
          : []),
        rule([inSet(VIP_KEY, SETS.externalMasq)], [markMasq]),
        rule([], [{ s: "vmap", key: VIP_KEY, map: SETS.vipDispatch }]),
        ...(nodePorts ? [rule(npAddrMatches, [{ s: "goto", chain: "nodeports" }])] : []),
      ],
    },
    {
      name: "external-local",
      rules: [
        rule([inSet([SADDR], SETS.clusterCidrs)], [{
          s: "vmap",
          key: VIP_KEY,
          map: SETS.vipClusterDispatch,
        }]),
        rule([{ m: "fib-local", addr: "saddr" }], [markMasq, {
          s: "vmap",
          key: VIP_KEY,
          map: SETS.vipClusterDispatch,
        }]),
        rule([], [{ s: "vmap", key: VIP_KEY, map: SETS.vipLocalDispatch }]),
      ],
    },
    {
      name: "affinity-record",
      rules: [
        ...L4_PROTOS.map((p) =>
          rule([{ m: "l4proto", protos: [p] }], [{
            s: "vmap",
            key: [ORIG_DADDR, PROTO, ORIG_DPORT],
            map: SETS.affinityVipTimeouts,
          }])
        ),
        ...(nodePorts
          ? L4_PROTOS.map((p) =>
            rule([{ m: "l4proto", protos: [p] }, inSet([ORIG_DADDR], SETS.serviceAddrs, true)], [{
              s: "vmap",
              key: [PROTO, ORIG_DPORT],
              map: SETS.affinityNodePortTimeouts,
            }])
          )
          : []),
      ],
    },
    {
      name: "masquerading",
      rules: [
        rule([{ m: "mark-bit", bit }], [{ s: "mark-xor", bit }, { s: "masquerade" }]),
        rule([{ m: "ct-status-dnat" }, inSet([SADDR, DADDR], SETS.hairpin)], [{ s: "masquerade" }]),
      ],
    },
  ];
  if (nodePorts) {
    chains.push(
      {
        name: "nodeport-endpoints-check",
        rules: [rule(npAddrMatches, [{ s: "vmap", key: NP_KEY, map: SETS.noEndpointNodePorts }])],
      },
      {
        name: "nodeports",
        rules: [
          rule([inSet(NP_KEY, SETS.nodePortMasq)], [markMasq]),
          rule([], [{ s: "vmap", key: NP_KEY, map: SETS.nodePortDispatch }]),
        ],
      },
      {
        name: "nodeport-local",
        rules: [
          rule([inSet([SADDR], SETS.clusterCidrs)], [{
            s: "vmap",
            key: NP_KEY,
            map: SETS.nodePortClusterDispatch,
          }]),
          rule([{ m: "fib-local", addr: "saddr" }], [markMasq, {
            s: "vmap",
            key: NP_KEY,
            map: SETS.nodePortClusterDispatch,
          }]),
          rule([], [{ s: "vmap", key: NP_KEY, map: SETS.nodePortLocalDispatch }]),
        ],
      },
    );
  }
  if (dnsBinds(family, options).length > 0) {
    const notrack = [
      rule([inSet(VIP_KEY, SETS.dnsNotrack)], [{ s: "notrack" }]),
      rule([inSet([SADDR, PROTO, SPORT], SETS.dnsNotrack)], [{ s: "notrack" }]),
    ];
    chains.push(
      {
        name: "raw-prerouting",
        base: { type: "filter", hook: "prerouting", priority: -300 },
        rules: notrack,
      },
      {
        name: "raw-output",
        base: { type: "filter", hook: "output", priority: -300 },
        rules: notrack,
      },
    );
  }
  return chains;
}

/** Load-balancing chain names: `lb-vip-3`, `aff-np-local-2`, …; `affinity-record-10800`. */
const DYNAMIC_CHAIN = /^(lb|aff)-(vip|np)(-local)?-(tcp|udp|sctp)-(\d+)$/;
const RECORD_CHAIN = /^affinity-record-(\d+)$/;

/** Name of the chain that picks one of n endpoints of a protocol: `lb-vip-tcp-3`, `aff-np-local-udp-1`. */
export function lbChainName(
  kind: "vip" | "np",
  local: boolean,
  proto: L4Proto,
  n: number,
  affinity: boolean,
): string {
  return `${affinity ? "aff" : "lb"}-${kind}${local ? "-local" : ""}-${proto}-${n}`;
}

/**
 * The spec of a chain created on demand (`lb-…`, `aff-…`, `affinity-record-…`), from its name.
 * Throws on a name that is not one.
 */
export function dynamicChain(name: string, family: Family): ChainSpec {
  const record = RECORD_CHAIN.exec(name);
  if (record) {
    const timeoutSeconds = Number(record[1]);
    const key = affinityKey(family, ORIG_DADDR, ORIG_DPORT);
    const value: Key = family === "ip" ? [DADDR, DPORT] : [DADDR];
    // `ct original proto-dst` only has a type after a protocol match: one rule per protocol.
    return {
      name,
      rules: L4_PROTOS.map((p) =>
        rule([{ m: "l4proto", protos: [p] }], [{
          s: "update",
          map: affinityMap(family, p),
          key,
          timeoutSeconds,
          value,
        }])
      ),
    };
  }
  const m = DYNAMIC_CHAIN.exec(name);
  if (!m) throw new Error(`Cannot build chain "${name}": not a svcgate load-balancing chain`);
  const [, flavour, kindText, local, protoText, nText] = m;
  const kind = kindText as "vip" | "np", proto = protoText as L4Proto, n = Number(nText);
  const isProto: Match = { m: "l4proto", protos: [proto] };
  const base: Key = kind === "vip" ? [DADDR, DPORT] : [DPORT];
  const pick = rule([isProto], [{
    s: "dnat",
    key: [...base, { e: "numgen", mod: n }],
    map: backendMap(kind, local !== undefined, proto),
  }]);
  if (flavour === "lb") return { name, rules: [pick] };
  const lookup: Rule = family === "ip"
    ? rule([isProto], [{
      s: "dnat",
      key: affinityKey(family, DADDR, DPORT),
      map: affinityMap(family, proto),
    }])
    : rule([isProto], [{
      s: "dnat",
      key: affinityKey(family, DADDR, DPORT),
      map: affinityMap(family, proto),
      portKey: kind === "vip" ? VIP_KEY : NP_KEY,
      portMap: kind === "vip" ? SETS.affinityVipPorts : SETS.affinityNodePortPorts,
    }]);
  return { name, rules: [lookup, pick] };
}

/** True when a chain name is one {@link dynamicChain} builds. */
export function isDynamicChain(name: string): boolean {
  return DYNAMIC_CHAIN.test(name) || RECORD_CHAIN.test(name);
}

// ---------------------------------------------------------------------------------------------
// Fragments: what one service contributes

/** One element a fragment contributes: set name, key text, value text ("" for sets). */
export type ElementContribution = readonly [set: string, key: string, value: string];

/** Everything one service (or the options) contributes to one family's table. */
export interface Fragment {
  readonly elements: readonly ElementContribution[];
  /** Dynamic chains the elements refer to. */
  readonly chains: readonly string[];
  readonly warnings: readonly string[];
}

/** A fragment that contributes nothing. */
export const EMPTY_FRAGMENT: Fragment = Object.freeze({ elements: [], chains: [], warnings: [] });

/** Owner key of the options' own elements (sorts before every service key). */
export const OPTIONS_OWNER = "\u0000options";

/** The elements the options contribute (CIDR sets, DNS notrack binds). */
export function optionsFragment(family: Family, options: RenderOptions): Fragment {
  const elements: ElementContribution[] = [];
  for (const c of disjointCidrs(cidrsOf(options.clusterCidrs, family))) {
    elements.push([SETS.clusterCidrs, cidrAtom(c), ""]);
  }
  if (options.nodePortAddresses.length > 0) {
    for (const c of disjointCidrs(cidrsOf(options.nodePortAddresses, family))) {
      elements.push([SETS.nodePortCidrs, cidrAtom(c), ""]);
    }
  }
  for (const c of disjointCidrs(cidrsOf(options.serviceCidrs, family))) {
    elements.push([SETS.serviceCidrs, cidrAtom(c), ""]);
  }
  const seen = new Set<string>();
  for (const b of dnsBinds(family, options)) {
    for (const p of ["udp", "tcp"]) {
      const key = `${b.address} . ${p} . ${b.port}`;
      if (!seen.has(key)) elements.push([SETS.dnsNotrack, key, ""]);
      seen.add(key);
    }
  }
  return { elements, chains: [], warnings: [] };
}

/** True when two ports share a protocol and port, or a protocol and NodePort. */
function portsRepeat(ports: readonly ServicePort[]): boolean {
  if (ports.length < 2) return false;
  const numbers = ports.map((p) => `${p.protocol} ${p.port}`);
  const nodePorts = ports.filter((p) => p.nodePort).map((p) => `${p.protocol} ${p.nodePort}`);
  return new Set(numbers).size < numbers.length || new Set(nodePorts).size < nodePorts.length;
}

function clampAffinityTimeout(seconds: number): number {
  if (!Number.isInteger(seconds) || seconds < 1) return KUBE_DEFAULT_AFFINITY_SECONDS;
  return Math.min(seconds, 86400);
}

/**
 * Renders what one service contributes to one family's table. Services owned by another proxy,
 * ExternalName and headless services, and services without a ClusterIP of the family contribute
 * nothing.
 *
 * @example
 * ```ts
 * const fragment = renderServiceFragment(entry, "ip", options);
 * fragment.elements; // [["vip-dispatch", "198.19.0.10 . tcp . 80", "goto lb-vip-2"], …]
 * ```
 */
export function renderServiceFragment(
  entry: ServiceEntry,
  family: Family,
  options: RenderOptions,
): Fragment {
  const svc = entry.service;
  if (entry.ownedByOtherProxy || svc.type === "ExternalName" || svc.headless) return EMPTY_FRAGMENT;
  const fnum = familyNumber(family);
  const vip = svc.clusterIPs.map((ip) => canonicalIp(ip)).find((ip) =>
    ip !== null && ipFamilyOf(ip) === fnum
  );
  if (!vip) return EMPTY_FRAGMENT;
  const elements: ElementContribution[] = [];
  const chains = new Set<string>();
  const warnings: string[] = [];
  // A fragment holds each element once. Hairpin pairs repeat whenever ports share endpoints, and
  // are checked by address; anything else repeats only when two ports share a protocol and port
  // (or NodePort), which the parser rejects, so only such a service has every element checked
  // (that check is most of the time of a render).
  const seen = portsRepeat(svc.ports) ? new Set<string>() : null;
  const add = (set: string, key: string, value = "") => {
    if (seen) {
      const id = `${set}\n${key}`;
      if (seen.has(id)) return;
      seen.add(id);
    }
    elements.push([set, key, value]);
  };
  const hairpins = new Set<string>();
  const where = `service "${entry.key}"`;

  const lbIps = new Set<string>();
  const externals: string[] = [];
  for (const [list, isLb] of [[svc.externalIPs, false], [svc.loadBalancerIPs, true]] as const) {
    for (const raw of list) {
      const ip = canonicalIp(raw);
      if (!ip) {
        warnings.push(
          `${where}: ignoring ${
            isLb ? "load-balancer" : "external"
          } IP "${raw}": not an IP address`,
        );
        continue;
      }
      if (ipFamilyOf(ip) !== fnum || ip === vip) continue;
      if (isLb) lbIps.add(ip);
      if (!externals.includes(ip)) externals.push(ip);
    }
  }
  const ranges: Cidr[] = [];
  for (const raw of svc.loadBalancerSourceRanges) {
    const c = parseCidr(raw.trim());
    if (typeof c === "string") {
      warnings.push(`${where}: ignoring loadBalancerSourceRange: ${c}`);
      continue;
    }
    if (c.family === fnum) ranges.push(c);
  }
  const firewall = svc.loadBalancerSourceRanges.length > 0;
  const allowed = disjointCidrs(ranges);
  const affinity = svc.sessionAffinity === "ClientIP";
  const timeout = clampAffinityTimeout(svc.sessionAffinityTimeoutSeconds);
  const recordChain = `affinity-record-${timeout}`;
  const nodePorts = (svc.type === "NodePort" || svc.type === "LoadBalancer") &&
    nodePortsEnabled(family, options);

  // The comment names the owner, so a restart can read which service serves which VIP.
  add(SETS.clusterIps, vip, entry.key);
  add(SETS.serviceAddrs, vip);
  for (const ip of externals) add(SETS.serviceAddrs, ip);

  const backendsAt = (set: string, key: string, list: readonly Backend[]) => {
    // Joined, not a template literal: V8 keeps a concatenation as a tree of its parts (64 bytes
    // here) for as long as the element lives, and a join as one flat string (40 bytes).
    list.forEach((b, i) => add(set, `${key} . ${i}`, [b.address, b.port].join(" . ")));
  };

  for (const rp of entry.ports) {
    const sp = rp.servicePort;
    const proto = sp.protocol.toLowerCase();
    const ofFamily = rp.backends.filter((b) => b.family === fnum);
    const cluster = usableBackends(ofFamily);
    const local = usableBackends(ofFamily.filter((b) => b.nodeName === options.nodeName));
    for (const b of cluster) {
      if (hairpins.has(b.address)) continue;
      hairpins.add(b.address);
      add(SETS.hairpin, `${b.address} . ${b.address}`);
    }
    let portAffinity = affinity;
    if (affinity && family === "ip6" && cluster.some((b) => b.port !== cluster[0].port)) {
      portAffinity = false;
      const ports = [...new Set(cluster.map((b) => b.port))].sort((a, b) => a - b).join(", ");
      warnings.push(
        `${where} port ${sp.port}/${sp.protocol}: ClientIP affinity over IPv6 needs every endpoint on one target port (found ${ports}); affinity is off for this port`,
      );
    }
    const targetPort = cluster.length > 0 ? String(cluster[0].port) : "";
    const l4 = proto as L4Proto;
    const useChain = (name: string) => {
      chains.add(name);
      return `goto ${name}`;
    };

    // ClusterIP: internal traffic policy picks the endpoints.
    const key = `${vip} . ${proto} . ${sp.port}`;
    const internal = svc.internalTrafficPolicy === "Local" ? local : cluster;
    if (internal.length > 0) {
      add(
        SETS.vipDispatch,
        key,
        useChain(lbChainName("vip", false, l4, internal.length, portAffinity)),
      );
      backendsAt(backendMap("vip", false, l4), `${vip} . ${sp.port}`, internal);
      if (portAffinity) {
        add(SETS.affinityVipTimeouts, key, useChain(recordChain));
        if (family === "ip6") add(SETS.affinityVipPorts, key, String(internal[0].port));
      }
    } else {
      // No endpoints at all: refuse. Local policy with endpoints elsewhere only: drop, as kube-proxy.
      add(SETS.noEndpointServices, key, cluster.length === 0 ? "goto reject-chain" : "drop");
    }

    // External traffic (external IPs, load-balancer IPs, NodePorts): external traffic policy.
    const external = (kind: "vip" | "np", ekey: string, bkey: string) => {
      const m = kind === "vip"
        ? {
          dispatch: SETS.vipDispatch,
          clusterDispatch: SETS.vipClusterDispatch,
          localDispatch: SETS.vipLocalDispatch,
          noEndpoints: SETS.noEndpointServices,
          masq: SETS.externalMasq,
          timeouts: SETS.affinityVipTimeouts,
          ports: SETS.affinityVipPorts,
          localChain: "external-local",
        }
        : {
          dispatch: SETS.nodePortDispatch,
          clusterDispatch: SETS.nodePortClusterDispatch,
          localDispatch: SETS.nodePortLocalDispatch,
          noEndpoints: SETS.noEndpointNodePorts,
          masq: SETS.nodePortMasq,
          timeouts: SETS.affinityNodePortTimeouts,
          ports: SETS.affinityNodePortPorts,
          localChain: "nodeport-local",
        };
      if (cluster.length === 0) {
        add(m.noEndpoints, ekey, "goto reject-chain");
        return;
      }
      backendsAt(backendMap(kind, false, l4), bkey, cluster);
      const clusterPick = useChain(lbChainName(kind, false, l4, cluster.length, portAffinity));
      if (portAffinity) {
        add(m.timeouts, ekey, useChain(recordChain));
        if (family === "ip6") add(m.ports, ekey, targetPort);
      }
      if (svc.externalTrafficPolicy !== "Local") {
        add(m.dispatch, ekey, clusterPick);
        add(m.masq, ekey);
        return;
      }
      // Local: pods and the host itself still reach every endpoint; others only local ones.
      add(m.dispatch, ekey, `goto ${m.localChain}`);
      add(m.clusterDispatch, ekey, clusterPick);
      if (local.length > 0) {
        add(
          m.localDispatch,
          ekey,
          useChain(lbChainName(kind, true, l4, local.length, portAffinity)),
        );
        backendsAt(backendMap(kind, true, l4), bkey, local);
      } else {
        add(m.noEndpoints, ekey, "drop");
      }
    };
    for (const ip of externals) {
      const ekey = `${ip} . ${proto} . ${sp.port}`;
      if (lbIps.has(ip) && firewall) {
        add(SETS.firewallIps, ekey);
        for (const c of allowed) add(SETS.firewallAllow, `${ekey} . ${cidrAtom(c)}`);
      }
      external("vip", ekey, `${ip} . ${sp.port}`);
    }
    if (nodePorts && sp.nodePort) external("np", `${proto} . ${sp.nodePort}`, String(sp.nodePort));
  }
  return { elements, chains: [...chains].sort(), warnings };
}

// ---------------------------------------------------------------------------------------------
// Incremental table

/** What changed in a table since the journal was last cleared: the value before the first change. */
export interface Journal {
  /** Set name -> key -> value before (null: absent before). */
  readonly elements: ReadonlyMap<string, ReadonlyMap<string, string | null>>;
  /** Chain name -> spec before (null: absent before). */
  readonly chains: ReadonlyMap<string, ChainSpec | null>;
}

interface Contender {
  readonly owner: string;
  readonly value: string;
}

/**
 * Small integer ids for the owners (service keys) of valued elements, so an element stores an
 * int, not a pointer to a string; an id is freed with the last element that names it.
 */
class OwnerIds {
  readonly #ids = new Map<string, number>();
  readonly #names: string[] = [""];
  readonly #refs: number[] = [0];
  readonly #free: number[] = [];

  /** The owner's id, counting one more element that names it. */
  ref(owner: string): number {
    let id = this.#ids.get(owner);
    if (id === undefined) {
      id = this.#free.pop() ?? this.#names.length;
      this.#ids.set(owner, id);
      this.#names[id] = owner;
      this.#refs[id] = 0;
    }
    this.#refs[id]++;
    return id;
  }

  /** One element fewer names this id. */
  unref(id: number): void {
    if (--this.#refs[id] > 0) return;
    this.#ids.delete(this.#names[id]);
    this.#names[id] = "";
    this.#free.push(id);
  }

  name(id: number): string {
    return this.#names[id];
  }
}

/**
 * One family's desired table, maintained incrementally from per-owner fragments. An element
 * contributed by several owners (shared hairpin pairs, conflicting services) is held by the
 * smallest owner key, and passes to the next one when that owner goes. Dynamic chains are
 * reference-counted. Every change is journaled with its value before the first change.
 *
 * The builder does not keep fragments (at 10,000 services they would double its memory): whoever
 * replaces an owner's fragment hands back the one it gave before, e.g. by rendering the previous
 * entry again ({@link renderServiceFragment} is deterministic).
 *
 * @example
 * ```ts
 * const builder = new TableBuilder("ip", options);
 * builder.setService("default/web", renderServiceFragment(entry, "ip", options), null);
 * const journal = builder.journal(); // what a transaction must change
 * ```
 */
export class TableBuilder {
  readonly family: Family;
  readonly #sets = new Map<string, SetSpec>();
  readonly #chains = new Map<string, ChainSpec>();
  /**
   * Elements per set, packed (packed_map.ts: ~70 bytes an element where a Map of strings took
   * ~130). In sets whose elements carry a value (maps, comments) each element's tag is the id
   * of the owner whose value holds; an element of any other set is the same whoever claims it,
   * so there its tag counts the owners that claim it (pods behind several services share
   * their elements: a Map of counts beside took ~3 MB at 10,000 services).
   */
  readonly #elements = new Map<string, PackedStringMap>();
  readonly #owners = new OwnerIds();
  /** Valued sets: `set\nkey` -> the claimants other than the holder. */
  readonly #contested = new Map<string, Contender[]>();
  /** Sets without values, whose element tags count claims. */
  readonly #counted = new Set<string>();
  readonly #chainRefs = new Map<string, number>();
  /** Owner -> the warnings of its fragment, for the few owners that have any. */
  readonly #warnings = new Map<string, readonly string[]>();
  #journalElements = new Map<string, Map<string, string | null>>();
  #journalChains = new Map<string, ChainSpec | null>();
  readonly #table: TableSpec;

  constructor(family: Family, options: RenderOptions) {
    this.family = family;
    for (const s of setSpecs(family, options)) {
      this.#sets.set(s.name, s);
      this.#elements.set(s.name, new PackedStringMap());
      if (s.kind !== "map" && !s.commentValue) this.#counted.add(s.name);
    }
    for (const c of fixedChains(family, options)) this.#chains.set(c.name, c);
    this.#table = { family, sets: this.#sets, chains: this.#chains, elements: this.#elements };
    this.setService(OPTIONS_OWNER, optionsFragment(family, options), null);
    // The initial content is the baseline, not a change.
    this.clearJournal();
  }

  /** The live desired table (do not mutate). */
  get table(): TableSpec {
    return this.#table;
  }

  /**
   * Replaces what one owner contributes: `previous` is the fragment last given for it (null when
   * none) and `next` its new one (null removes it).
   */
  setService(owner: ServiceKey, next: Fragment | null, previous: Fragment | null): void {
    if (next === previous) return;
    // New chain references first so a chain kept by both versions is never dropped and re-added.
    for (const c of next?.chains ?? []) this.#refChain(c, 1);
    for (const [s, k] of previous?.elements ?? []) this.#remove(s, k, owner);
    for (const [s, k, v] of next?.elements ?? []) this.#add(s, k, v, owner);
    for (const c of previous?.chains ?? []) this.#refChain(c, -1);
    if (next && next.warnings.length > 0) this.#warnings.set(owner, next.warnings);
    else this.#warnings.delete(owner);
  }

  /** Warnings of every fragment, plus elements claimed with different values by several owners. */
  warnings(): string[] {
    const out: string[] = [];
    for (const w of this.#warnings.values()) out.push(...w);
    for (const [id, others] of this.#contested) {
      const [set, key] = id.split("\n");
      const els = this.#elements.get(set)!;
      const winner = this.#owners.name(els.tagOf(key)!);
      const value = els.get(key)!;
      const losers = others.filter((o) => o.value !== value).map((o) => o.owner);
      if (losers.length > 0) {
        out.push(
          `services ${
            [winner, ...losers].map((o) => `"${o}"`).join(", ")
          } all claim ${set} element "${key}"; "${winner}" wins`,
        );
      }
    }
    return out.sort();
  }

  /** Everything changed since the last {@link clearJournal}. */
  journal(): Journal {
    return { elements: this.#journalElements, chains: this.#journalChains };
  }

  /** True when the journal records any change (some may cancel out). */
  get dirty(): boolean {
    return this.#journalElements.size > 0 || this.#journalChains.size > 0;
  }

  /** Forgets the journal (after the changes reached the kernel, or after a full reconcile). */
  clearJournal(): void {
    this.#journalElements = new Map();
    this.#journalChains = new Map();
  }

  #touch(set: string, key: string): void {
    let j = this.#journalElements.get(set);
    if (!j) this.#journalElements.set(set, j = new Map());
    if (!j.has(key)) j.set(key, this.#elements.get(set)!.get(key) ?? null);
  }

  #add(set: string, key: string, value: string, owner: string): void {
    const els = this.#elements.get(set);
    if (!els) throw new Error(`Cannot add element "${key}": unknown set "${set}"`);
    if (this.#counted.has(set)) {
      if (value !== "") {
        throw new Error(
          `Cannot add element "${key}" with value "${value}" to set "${set}": it holds no values`,
        );
      }
      const claims = els.tagOf(key);
      if (claims !== undefined) els.setTag(key, claims + 1);
      else {
        this.#touch(set, key);
        els.set(key, value, 1);
      }
      return;
    }
    const currentId = els.tagOf(key);
    if (currentId === undefined) {
      this.#touch(set, key);
      els.set(key, value, this.#owners.ref(owner));
      return;
    }
    const current = this.#owners.name(currentId);
    const id = `${set}\n${key}`;
    let list = this.#contested.get(id);
    if (!list) this.#contested.set(id, list = []);
    if (owner < current) {
      list.push({ owner: current, value: els.get(key)! });
      if (els.get(key) !== value) this.#touch(set, key);
      els.set(key, value, this.#owners.ref(owner));
      this.#owners.unref(currentId);
    } else {
      list.push({ owner, value });
    }
  }

  #remove(set: string, key: string, owner: string): void {
    const els = this.#elements.get(set)!;
    if (this.#counted.has(set)) {
      const claims = els.tagOf(key);
      if (claims === undefined) return;
      if (claims > 1) els.setTag(key, claims - 1);
      else {
        this.#touch(set, key);
        els.delete(key);
      }
      return;
    }
    const holderId = els.tagOf(key);
    const id = `${set}\n${key}`;
    const list = this.#contested.get(id);
    if (holderId === undefined || this.#owners.name(holderId) !== owner) {
      const i = list?.findIndex((c) => c.owner === owner) ?? -1;
      if (list && i >= 0) list.splice(i, 1);
      if (list && list.length === 0) this.#contested.delete(id);
      return;
    }
    if (list && list.length > 0) {
      let best = 0;
      for (let i = 1; i < list.length; i++) if (list[i].owner < list[best].owner) best = i;
      const next = list.splice(best, 1)[0];
      if (list.length === 0) this.#contested.delete(id);
      if (els.get(key) !== next.value) this.#touch(set, key);
      els.set(key, next.value, this.#owners.ref(next.owner));
      this.#owners.unref(holderId);
      return;
    }
    this.#touch(set, key);
    els.delete(key);
    this.#owners.unref(holderId);
  }

  #refChain(name: string, delta: 1 | -1): void {
    const n = (this.#chainRefs.get(name) ?? 0) + delta;
    if (n > 0) {
      this.#chainRefs.set(name, n);
      if (n === 1 && delta === 1) {
        if (!this.#journalChains.has(name)) {
          this.#journalChains.set(name, this.#chains.get(name) ?? null);
        }
        this.#chains.set(name, dynamicChain(name, this.family));
      }
      return;
    }
    this.#chainRefs.delete(name);
    if (!this.#journalChains.has(name)) {
      this.#journalChains.set(name, this.#chains.get(name) ?? null);
    }
    this.#chains.delete(name);
  }
}

/**
 * Renders the whole desired ruleset of a snapshot: tables `ip svcgate` and `ip6 svcgate`.
 *
 * @example
 * ```ts
 * const ruleset = renderRuleset(store.snapshot, {
 *   clusterCidrs: [parseCidr("198.18.0.0/16") as Cidr],
 *   nodeName: "node-1",
 *   nodePortAddresses: [],
 * });
 * console.log(formatRuleset(ruleset));
 * ```
 */
export function renderRuleset(snapshot: Snapshot, options: RenderOptions): Ruleset {
  const warnings = new Set<string>();
  const tables = FAMILIES.map((family) => {
    const builder = new TableBuilder(family, options);
    const keys = [...snapshot.services.keys()].sort();
    for (const key of keys) {
      builder.setService(
        key,
        renderServiceFragment(snapshot.services.get(key)!, family, options),
        null,
      );
    }
    for (const w of builder.warnings()) warnings.add(w);
    return builder.table;
  });
  return { tables, warnings: [...warnings].sort() };
}
