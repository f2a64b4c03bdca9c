/**
 * What one service contributes to a family's table: a {@link Fragment}, its elements (set, key,
 * value) and the load-balancing chains they point at. Also the node options' own elements. Pure.
 * @module
 */

import { cidrContains, ipFamilyOf } from "../model/ip.ts";
import type { Backend, ServiceEntry } from "../model/snapshot.ts";
import { categorizeEndpoints } from "../model/topology.ts";
import type { ServicePort } from "../model/types.ts";
import { cidrAtom, type Family, type L4Proto } from "./ruleset.ts";
import {
  cidrsOf,
  disjointCidrs,
  dnsBinds,
  familyNumber,
  nodePortsEnabled,
  type RenderOptions,
} from "./render_options.ts";
import { lbChainName } from "./lb_chains.ts";
import { backendMap, DEFAULT_AFFINITY_SECONDS, SETS } from "./skeleton.ts";

/** One element a fragment contributes: set name, key text, value text ("" for sets). */
export type ElementContribution = readonly [set: string, key: string, value: string];

/** Everything one service (or the options) contributes to one family's table. */
export interface Fragment {
  readonly elements: readonly ElementContribution[];
  /** Dynamic chains the elements refer to. */
  readonly chains: readonly string[];
  readonly warnings: readonly string[];
  /**
   * Ports with a Local traffic policy and endpoints elsewhere only, by policy (kube-proxy's
   * `sync_proxy_rules_no_local_endpoints_total`); absent when none.
   */
  readonly noLocalEndpoints?: { readonly internal: number; readonly external: number };
}

/** A fragment that contributes nothing. */
export const EMPTY_FRAGMENT: Fragment = Object.freeze({ elements: [], chains: [], warnings: [] });

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
  if (!Number.isInteger(seconds) || seconds < 1) return DEFAULT_AFFINITY_SECONDS;
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
  const vip = svc.clusterIPs.find((ip) => ipFamilyOf(ip) === fnum);
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
  let noLocalInternal = 0, noLocalExternal = 0;

  const lbIps = new Set<string>();
  const externals: string[] = [];
  for (const [list, isLb] of [[svc.externalIPs, false], [svc.loadBalancerIPs, true]] as const) {
    for (const ip of list) {
      if (ipFamilyOf(ip) !== fnum || ip === vip) continue;
      if (isLb) lbIps.add(ip);
      if (!externals.includes(ip)) externals.push(ip);
    }
  }
  const ranges = svc.loadBalancerSourceRanges.filter((c) => c.family === fnum);
  const firewall = svc.loadBalancerSourceRanges.length > 0;
  const allowed = disjointCidrs(ranges);
  // kube-proxy's TestLoadBalancer: when a range holds one of the node's addresses, the LB IPs
  // themselves are allowed sources (the node reaching its own local LB IP loops back from it).
  const allowFromNode = (options.nodeIps ?? []).some((n) =>
    ipFamilyOf(n) === fnum && allowed.some((c) => cidrContains(c, n))
  );
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
    // Joined, not a template literal: V8 keeps a concatenation as a tree of its parts for as
    // long as the element lives, a join as one flat string (README.md, Memory).
    list.forEach((b, i) => add(set, `${key} . ${i}`, [b.address, b.port].join(" . ")));
  };

  for (const rp of entry.ports) {
    const sp = rp.servicePort;
    const proto = sp.protocol.toLowerCase();
    const ofFamily = rp.backends.filter((b) => b.family === fnum);
    // The options carry this node's name and zone: topology and the Local policies read them.
    const { cluster, local, internal, hasAny } = categorizeEndpoints(ofFamily, svc, options);
    // As kube-proxy counts them: a Local policy whose traffic is dropped for want of a local
    // endpoint while the service has endpoints elsewhere.
    if (hasAny && local.length === 0) {
      if (svc.internalTrafficPolicy === "Local") noLocalInternal++;
      if (
        svc.externalTrafficPolicy === "Local" &&
        (externals.length > 0 || (nodePorts && sp.nodePort !== undefined))
      ) noLocalExternal++;
    }
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
      add(SETS.noEndpointServices, key, hasAny ? "drop" : "goto reject-chain");
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
      if (!hasAny) {
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
        if (allowFromNode) {
          for (const lb of lbIps) {
            // An LB IP inside an allowed range is allowed already (nft refuses overlaps).
            if (!allowed.some((c) => cidrContains(c, lb))) {
              add(SETS.firewallAllow, `${ekey} . ${lb}`);
            }
          }
        }
      }
      external("vip", ekey, `${ip} . ${sp.port}`);
    }
    if (nodePorts && sp.nodePort) external("np", `${proto} . ${sp.nodePort}`, String(sp.nodePort));
  }
  const fragment = { elements, chains: [...chains].sort(), warnings };
  return noLocalInternal + noLocalExternal === 0 ? fragment : {
    ...fragment,
    noLocalEndpoints: { internal: noLocalInternal, external: noLocalExternal },
  };
}
