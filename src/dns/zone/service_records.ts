/**
 * What one service puts into the cluster zone, a pure function of its entry: records per the
 * Kubernetes DNS-Based Service Discovery spec 1.1.0 and CoreDNS's kubernetes plugin (ClusterIP
 * A/AAAA, SRV per named port, headless A/AAAA per published endpoint, endpoint hostnames (the
 * hostname field, else the dashed IP), PTR for VIPs and headless endpoint IPs, ExternalName
 * CNAME), and the fingerprint that says when those records may have changed. Unless strict
 * (zone.ts RecordOptions), also what CoreDNS answers beyond the spec: headless SRV ports from the
 * endpoint sets when the Service lists none, and CoreDNS's SRV weights. What CoreDNS answers and
 * clients ask rarely is not records here but read from the entry when asked
 * (answer/on_ask_answers.ts): SRV at the bare service name and at endpoint names, and the names
 * and PTRs of ClusterIP services' endpoints (zone_index.ts indexes their IPs). Pure.
 * @module
 */

import { ipFamilyOf, type IpText, reverseName } from "../../model/ip.ts";
import { publishedEndpoints, type ResolvedPort, type ServiceEntry } from "../../model/snapshot.ts";
import { EMPTY_LIST, type Endpoint } from "../../model/types.ts";
import { isValidName, nameKey } from "../codec/names.ts";
import { type ResourceRecord, RRClass, RRType } from "../codec/records.ts";
import { addressRecord, endpointLabel, nameRecord, type RecordOptions } from "./zone.ts";

/** What one service puts into the zone: a pure function of its entry, the domain and the TTL. */
export interface Contribution {
  /** Records, PTRs included, owner names canonical. */
  readonly records: readonly ResourceRecord[];
  /** Addresses of SRV targets, for the additional section of their owner's SRV answer. */
  readonly additional: readonly (readonly [owner: string, rr: ResourceRecord])[];
  /** Names that exist even without records (a ClusterIP service without an IP yet). */
  readonly names: readonly string[];
}

/**
 * CoreDNS's SRV weight when `items` (address, port) pairs share a priority: 100 split evenly,
 * at least 1. It counts every pair, before records with the same target and port collapse, so
 * a dual-stack ClusterIP service's one SRV gets 50.
 */
export function coreDnsWeight(items: number): number {
  return Math.max(1, Math.floor(100 / items));
}

const srvRecord = (
  name: string,
  weight: number,
  port: number,
  target: string,
  ttl: number,
): ResourceRecord => ({
  name,
  type: RRType.SRV,
  class: RRClass.IN,
  ttl,
  data: { priority: 0, weight, port, target },
});

/** One (endpoint, port) pair an SRV answer is made from. */
interface SrvItem {
  readonly host: string;
  readonly port: number;
  readonly address: IpText;
}

/**
 * SRV records at `owner` for `items` with one weight (CoreDNS's over every pair, or the spec
 * reading's over distinct targets), one record per target and port, and the targets' addresses
 * (one per target and address) for the additional section.
 */
function addSrv(
  owner: string,
  items: readonly SrvItem[],
  coreDns: boolean,
  ttl: number,
  records: ResourceRecord[],
  additional: [string, ResourceRecord][],
  /** The target's own address record, shared rather than made again (memory: one per target). */
  addressOf: (host: string, address: IpText) => ResourceRecord = (host, a) =>
    addressRecord(host, a, ipFamilyOf(a), ttl),
): void {
  const byTarget = new Map<string, { host: string; port: number }>();
  // A target's addresses together (a dual-stack pod: its A, then its AAAA).
  const addresses = new Map<string, Set<IpText>>();
  for (const it of items) {
    const id = `${it.host}|${it.port}`;
    if (!byTarget.has(id)) byTarget.set(id, { host: it.host, port: it.port });
    const set = addresses.get(it.host);
    if (set) set.add(it.address);
    else addresses.set(it.host, new Set([it.address]));
  }
  if (byTarget.size === 0) return;
  const weight = coreDns ? coreDnsWeight(items.length) : Math.floor(100 / byTarget.size);
  for (const t of byTarget.values()) records.push(srvRecord(owner, weight, t.port, t.host, ttl));
  for (const [host, set] of addresses) {
    for (const a of set) additional.push([owner, addressOf(host, a)]);
  }
}

/** The records of one service (see the module doc for what the spec and CoreDNS ask). */
export function serviceContribution(
  entry: ServiceEntry,
  domain: string,
  ttl: number,
  opts: RecordOptions,
): Contribution {
  const records: ResourceRecord[] = [];
  const additional: [string, ResourceRecord][] = [];
  const names: string[] = [];
  const ptrs: ResourceRecord[] = [];
  const out = { records, additional, names };
  const coreDns = !opts.strictSpec;
  const svc = entry.service;
  const svcName = `${svc.name}.${svc.namespace}.svc.${domain}`.toLowerCase();
  if (!isValidName(svcName)) return out;
  if (svc.type === "ExternalName") {
    const target = svc.externalName ? nameKey(svc.externalName) : "";
    if (target && isValidName(target)) records.push(nameRecord(svcName, RRType.CNAME, target, ttl));
    else names.push(svcName);
    return out;
  }
  if (!svc.headless) {
    const addrs: ResourceRecord[] = [];
    for (const vip of svc.clusterIPs) {
      const rr = addressRecord(svcName, vip, ipFamilyOf(vip), ttl);
      addrs.push(rr);
      records.push(rr);
      ptrs.push(nameRecord(reverseName(vip), RRType.PTR, svcName, ttl));
    }
    names.push(svcName);
    for (const port of svc.ports) {
      if (port.name === "") continue;
      const srvName = `_${port.name}._${port.protocol}.${svcName}`.toLowerCase();
      if (!isValidName(srvName)) continue;
      records.push(srvRecord(srvName, 100, port.port, svcName, ttl));
      for (const a of addrs) additional.push([srvName, a]);
    }
    records.push(...ptrs);
    return out;
  }
  // Headless: one A/AAAA per published endpoint; without any, the name does not exist.
  const eps = publishedEndpoints(entry);
  if (eps.length === 0) return out;
  const hostNames = new Map<string, string>();
  const hostRecords = new Map<string, ResourceRecord>();
  for (const ep of eps) {
    const address = ep.address;
    const family = ipFamilyOf(address);
    records.push(addressRecord(svcName, address, family, ttl));
    const hostName = `${endpointLabel(ep, opts)}.${svcName}`;
    if (!isValidName(hostName)) continue;
    hostNames.set(address, hostName);
    const rr = addressRecord(hostName, address, family, ttl);
    hostRecords.set(`${hostName}|${address}`, rr);
    records.push(rr);
    ptrs.push(nameRecord(reverseName(address), RRType.PTR, hostName, ttl));
  }
  const addressOf = (host: string, a: IpText) =>
    hostRecords.get(`${host}|${a}`) ?? addressRecord(host, a, ipFamilyOf(a), ttl);
  // Resolved on each read (snapshot.ts): once here. CoreDNS takes the ports of the endpoints;
  // they are the Service's ports unless the Service lists none.
  const resolved: readonly ResolvedPort[] = coreDns && svc.ports.length === 0
    ? entry.endpointPorts ?? EMPTY_LIST
    : entry.ports;
  const itemsOf = (port: ResolvedPort): SrvItem[] => {
    const portOf = new Map<string, number>();
    for (const b of port.backends) if (!portOf.has(b.address)) portOf.set(b.address, b.port);
    const items: SrvItem[] = [];
    for (const ep of eps) {
      const host = hostNames.get(ep.address);
      const p = portOf.get(ep.address);
      if (host === undefined || p === undefined) continue;
      items.push({ host, port: p, address: ep.address });
    }
    return items;
  };
  for (const port of resolved) {
    const sp = port.servicePort;
    if (sp.name === "") continue;
    const srvName = `_${sp.name}._${sp.protocol}.${svcName}`.toLowerCase();
    if (!isValidName(srvName)) continue;
    addSrv(srvName, itemsOf(port), coreDns, ttl, records, additional, addressOf);
  }
  records.push(...ptrs);
  return out;
}

/**
 * Text of everything {@link serviceContribution} (and, unless strict, the answers read from a
 * ClusterIP service's endpoints) reads from an entry: equal texts give equal answers. Lets a
 * server skip rebuilding when a snapshot changed only things DNS does not show (labels, node
 * names, traffic policies; strict, also endpoints behind a ClusterIP).
 */
export function dnsFingerprint(entry: ServiceEntry, opts: RecordOptions): string {
  const s = entry.service;
  const base = [s.type, s.namespace, s.name];
  if (s.type === "ExternalName") return JSON.stringify([...base, s.externalName ?? ""]);
  const ports = s.ports.map((p) => [p.name, p.protocol, p.port]);
  const endpoint = (e: Endpoint) => [
    e.address,
    e.ready,
    e.hostname ?? "",
    opts.endpointPodNames ? e.podName ?? "" : "",
  ];
  if (!s.headless) {
    if (!opts.indexEndpoints) return JSON.stringify([...base, s.clusterIPs, ports]);
    return JSON.stringify([
      ...base,
      s.clusterIPs,
      ports,
      s.publishNotReadyAddresses,
      entry.endpoints.map(endpoint),
    ]);
  }
  const eps = (opts.indexEndpoints ? entry.endpoints : publishedEndpoints(entry)).map(endpoint);
  const backends = (p: ResolvedPort) => [
    p.servicePort.name,
    p.servicePort.protocol,
    p.backends.map((b) => [b.address, b.port]),
  ];
  const setPorts = !opts.strictSpec && s.ports.length === 0
    ? (entry.endpointPorts ?? EMPTY_LIST).map(backends)
    : EMPTY_LIST;
  return JSON.stringify([
    ...base,
    "headless",
    s.publishNotReadyAddresses,
    ports,
    eps,
    entry.ports.map(backends),
    setPorts,
  ]);
}
