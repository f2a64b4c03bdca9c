/**
 * The load-balancing chains created on demand: `lb-vip-tcp-N` picks one of N endpoints,
 * `aff-…-N` first looks up the client's affinity entry, `affinity-record-T` writes affinity
 * entries with timeout T. A chain exists while some service's elements point at it, so their
 * number grows with the distinct endpoint counts, not with services. Pure.
 * @module
 */

import type { ChainSpec, Expr, Family, Key, L4Proto, Match, Rule } from "./ruleset.ts";
import { L4_PROTOS } from "./ruleset.ts";
import {
  affinityMap,
  backendMap,
  DADDR,
  DPORT,
  NP_KEY,
  ORIG_DADDR,
  ORIG_DPORT,
  PROTO,
  rule,
  SADDR,
  SETS,
  VIP_KEY,
} from "./skeleton.ts";

/** jhash seeds of the IPv6 affinity key; constants so prerouting and postrouting agree. */
const AFFINITY_SEEDS = [0x53474131, 0x53474132] as const;

function affinityKey(family: Family, daddr: Expr, dport: Expr): Key {
  if (family === "ip") return [SADDR, daddr, dport];
  const input: Key = [SADDR, daddr, PROTO, dport];
  return AFFINITY_SEEDS.map((seed): Expr => ({ e: "jhash", input, seed }));
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
