/**
 * What one service puts into the cluster zone, a pure function of its entry: records per the
 * Kubernetes DNS-Based Service Discovery spec 1.1.0 and CoreDNS's kubernetes plugin (ClusterIP
 * A/AAAA, SRV per named port, headless A/AAAA per published endpoint, endpoint hostnames (the
 * hostname field, else the dashed IP), PTR for VIPs and headless endpoint IPs, ExternalName
 * CNAME), and the fingerprint that says when those records may have changed. Pure.
 * @module
 */

import { ipFamilyOf, reverseName } from "../../model/ip.ts";
import { publishedEndpoints, type ServiceEntry } from "../../model/snapshot.ts";
import { isValidName, nameKey } from "../codec/names.ts";
import { type ResourceRecord, RRClass, RRType } from "../codec/records.ts";
import { addressRecord, dashedIp, nameRecord } from "./zone.ts";

/** What one service puts into the zone: a pure function of its entry, the domain and the TTL. */
export interface Contribution {
  /** Records, PTRs included, owner names canonical. */
  readonly records: readonly ResourceRecord[];
  /** Addresses of SRV targets, for the additional section of their owner's SRV answer. */
  readonly additional: readonly (readonly [owner: string, rr: ResourceRecord])[];
  /** Names that exist even without records (a ClusterIP service without an IP yet). */
  readonly names: readonly string[];
}

/** The records of one service (see the module doc for what the spec asks). */
export function serviceContribution(
  entry: ServiceEntry,
  domain: string,
  ttl: number,
): Contribution {
  const records: ResourceRecord[] = [];
  const additional: [string, ResourceRecord][] = [];
  const names: string[] = [];
  const ptrs: ResourceRecord[] = [];
  const out = { records, additional, names };
  const svc = entry.service;
  const svcName = `${svc.name}.${svc.namespace}.svc.${domain}`.toLowerCase();
  if (!isValidName(svcName)) return out;
  if (svc.type === "ExternalName") {
    const target = svc.externalName ? nameKey(svc.externalName) : "";
    if (target && isValidName(target)) records.push(nameRecord(svcName, RRType.CNAME, target, ttl));
    else names.push(svcName);
    return out;
  }
  const namedPorts = svc.ports.filter((p) => p.name !== "");
  if (!svc.headless) {
    const addrs: ResourceRecord[] = [];
    for (const vip of svc.clusterIPs) {
      const rr = addressRecord(svcName, vip, ipFamilyOf(vip), ttl);
      addrs.push(rr);
      records.push(rr);
      ptrs.push(nameRecord(reverseName(vip), RRType.PTR, svcName, ttl));
    }
    names.push(svcName);
    for (const port of namedPorts) {
      const srvName = `_${port.name}._${port.protocol}.${svcName}`.toLowerCase();
      if (!isValidName(srvName)) continue;
      records.push({
        name: srvName,
        type: RRType.SRV,
        class: RRClass.IN,
        ttl,
        data: { priority: 0, weight: 100, port: port.port, target: svcName },
      });
      for (const a of addrs) additional.push([srvName, a]);
    }
    records.push(...ptrs);
    return out;
  }
  // Headless: one A/AAAA per published endpoint; without any, the name does not exist.
  const eps = publishedEndpoints(entry);
  if (eps.length === 0) return out;
  const hostNames = new Map<string, string>();
  for (const ep of eps) {
    const address = ep.address;
    const family = ipFamilyOf(address);
    records.push(addressRecord(svcName, address, family, ttl));
    const host = (ep.hostname && ep.hostname !== "" ? ep.hostname : dashedIp(address))
      .toLowerCase();
    const hostName = `${host}.${svcName}`;
    if (!isValidName(hostName)) continue;
    hostNames.set(address, hostName);
    records.push(addressRecord(hostName, address, family, ttl));
    ptrs.push(nameRecord(reverseName(address), RRType.PTR, hostName, ttl));
  }
  // Resolved on each read (snapshot.ts): once here.
  const resolvedPorts = entry.ports;
  for (const port of namedPorts) {
    const srvName = `_${port.name}._${port.protocol}.${svcName}`.toLowerCase();
    if (!isValidName(srvName)) continue;
    const resolved = resolvedPorts.find((p) => p.servicePort === port) ??
      resolvedPorts.find((p) =>
        p.servicePort.name === port.name && p.servicePort.protocol === port.protocol
      );
    const portOf = new Map<string, number>();
    for (const b of resolved?.backends ?? []) {
      if (!portOf.has(b.address)) portOf.set(b.address, b.port);
    }
    const targets: { port: number; host: string; addresses: string[] }[] = [];
    const byTarget = new Map<string, { port: number; host: string; addresses: string[] }>();
    for (const ep of eps) {
      const address = ep.address;
      const host = hostNames.get(address);
      const backendPort = portOf.get(address);
      if (!host || backendPort === undefined) continue;
      // A dual-stack pod is one target (one hostname) with an A and an AAAA record.
      const id = `${host}|${backendPort}`;
      const same = byTarget.get(id);
      if (same) {
        same.addresses.push(address);
        continue;
      }
      const t = { port: backendPort, host, addresses: [address] };
      byTarget.set(id, t);
      targets.push(t);
    }
    // CoreDNS's weights: records of one priority share 100 equally.
    const weight = targets.length > 0 ? Math.floor(100 / targets.length) : 0;
    for (const t of targets) {
      records.push({
        name: srvName,
        type: RRType.SRV,
        class: RRClass.IN,
        ttl,
        data: { priority: 0, weight, port: t.port, target: t.host },
      });
      for (const a of t.addresses) {
        additional.push([srvName, addressRecord(t.host, a, a.includes(":") ? 6 : 4, ttl)]);
      }
    }
  }
  records.push(...ptrs);
  return out;
}

/**
 * Text of everything {@link serviceContribution} reads from an entry: equal texts give equal
 * records. Lets a server skip rebuilding when a snapshot changed only things DNS does not show
 * (endpoint readiness behind a ClusterIP, labels, node names, traffic policies).
 */
export function dnsFingerprint(entry: ServiceEntry): string {
  const s = entry.service;
  const base = [s.type, s.namespace, s.name];
  if (s.type === "ExternalName") return JSON.stringify([...base, s.externalName ?? ""]);
  const ports = s.ports.map((p) => [p.name, p.protocol, p.port]);
  if (!s.headless) return JSON.stringify([...base, s.clusterIPs, ports]);
  const eps = publishedEndpoints(entry).map((e) => [e.address, e.hostname ?? ""]);
  const backends = entry.ports.map((p) => [
    p.servicePort.name,
    p.servicePort.protocol,
    p.backends.map((b) => [b.address, b.port]),
  ]);
  return JSON.stringify([...base, "headless", ports, eps, backends]);
}
