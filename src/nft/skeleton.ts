/**
 * The fixed skeleton of a family's table: its sets and maps, the base and fixed chains every
 * table has under the options, and the small load-balancing chains (`lb-…`, `aff-…`,
 * `affinity-record-…`) that exist while some service's elements point at them. Pure.
 *
 * The shape is a handful of chains and big maps keyed by `address . protocol . port` (or
 * `protocol . port` for NodePorts); a service is only elements (service_fragment.ts). Why this
 * shape, and the nft 1.0.6 limits the declarations work around: README.md.
 * @module
 */

import {
  type ChainSpec,
  type Expr,
  type Family,
  type Key,
  L4_PROTOS,
  type L4Proto,
  type Match,
  type Rule,
  type SetSpec,
  type Stmt,
} from "./ruleset.ts";
import {
  cidrsOf,
  dnsBinds,
  masqueradeBit,
  nodePortsEnabled,
  type RenderOptions,
} from "./render_options.ts";

const DEFAULT_AFFINITY_SIZE = 1_048_576;
/** Kubernetes' default ClientIP affinity timeout (3 hours). */
export const DEFAULT_AFFINITY_SECONDS = 10800;

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
 * (README.md), and such a map then only serves that protocol.
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

// The expressions rules are made of, shared with lb_chains.ts.
export const SADDR: Expr = { e: "saddr" };
export const DADDR: Expr = { e: "daddr" };
export const PROTO: Expr = { e: "l4proto" };
export const DPORT: Expr = { e: "dport" };
const SPORT: Expr = { e: "sport" };
export const ORIG_DADDR: Expr = { e: "ct-orig-daddr" };
export const ORIG_DPORT: Expr = { e: "ct-orig-dport" };
/** The key of VIP maps: `address . protocol . port`. */
export const VIP_KEY: Key = [DADDR, PROTO, DPORT];
/** The key of NodePort maps: `protocol . port`. */
export const NP_KEY: Key = [PROTO, DPORT];

function addrType(family: Family): string {
  return family === "ip" ? "ipv4_addr" : "ipv6_addr";
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
    timeoutSeconds: DEFAULT_AFFINITY_SECONDS,
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

/** A rule of matches and statements. */
export function rule(matches: Match[], stmts: Stmt[]): Rule {
  return { matches, stmts };
}

const NEW: Match = { m: "ct-state-new" };

function inSet(key: Key, name: string, negate = false): Match {
  return negate ? { m: "in", key, set: name, negate: true } : { m: "in", key, set: name };
}

/**
 * The match for traffic from this node's pods (`negate`: from anywhere else), per the options'
 * local detection (kube-proxy's `--detect-local-mode`). The CIDR modes match the `cluster-cidrs`
 * set (always declared; empty, it matches nothing); the interface modes match `iifname`.
 */
function podSource(options: RenderOptions, negate = false): Match {
  const detect = options.localDetect;
  const not = negate ? { negate: true } : {};
  if (detect?.mode === "BridgeInterface") return { m: "iifname", name: detect.bridge, ...not };
  if (detect?.mode === "InterfaceNamePrefix") {
    return { m: "iifname", name: `${detect.prefix}*`, ...not };
  }
  return inSet([SADDR], SETS.clusterCidrs, negate);
}

/** True when pod traffic can be told apart (an interface mode, or pod CIDRs of the family). */
function detectsPods(family: Family, options: RenderOptions): boolean {
  const mode = options.localDetect?.mode ?? "ClusterCIDR";
  return mode === "BridgeInterface" || mode === "InterfaceNamePrefix" ||
    cidrsOf(options.clusterCidrs, family).length > 0;
}

/**
 * The chain behind external traffic policy Local: pods and the host itself still reach every
 * endpoint (the host's traffic masqueraded); anyone else only the local ones.
 */
function localPolicyChain(
  name: string,
  key: Key,
  clusterDispatch: string,
  localDispatch: string,
  bit: number,
  fromPods: Match,
): ChainSpec {
  return {
    name,
    rules: [
      rule([fromPods], [{ s: "vmap", key, map: clusterDispatch }]),
      rule([{ m: "fib-local", addr: "saddr" }], [{ s: "mark-or", bit }, {
        s: "vmap",
        key,
        map: clusterDispatch,
      }]),
      rule([], [{ s: "vmap", key, map: localDispatch }]),
    ],
  };
}

/** The chains every table has under the options (everything except lb/aff/record chains). */
export function fixedChains(family: Family, options: RenderOptions): ChainSpec[] {
  const bit = masqueradeBit(options);
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
        // --masquerade-all: every ClusterIP connection; else those not from this node's pods.
        ...(options.masqueradeAll
          ? [rule([inSet([DADDR], SETS.clusterIps)], [markMasq])]
          : detectsPods(family, options)
          ? [rule([podSource(options, true), inSet([DADDR], SETS.clusterIps)], [markMasq])]
          : []),
        rule([inSet(VIP_KEY, SETS.externalMasq)], [markMasq]),
        rule([], [{ s: "vmap", key: VIP_KEY, map: SETS.vipDispatch }]),
        ...(nodePorts ? [rule(npAddrMatches, [{ s: "goto", chain: "nodeports" }])] : []),
      ],
    },
    localPolicyChain(
      "external-local",
      VIP_KEY,
      SETS.vipClusterDispatch,
      SETS.vipLocalDispatch,
      bit,
      podSource(options),
    ),
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
      localPolicyChain(
        "nodeport-local",
        NP_KEY,
        SETS.nodePortClusterDispatch,
        SETS.nodePortLocalDispatch,
        bit,
        podSource(options),
      ),
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
