/**
 * The cluster DNS zone, indexed from a {@link Snapshot}: every name with its record sets, the
 * empty non-terminals between them, and the reverse zones svcgate is authoritative for. Pure.
 *
 * Records follow the Kubernetes DNS-Based Service Discovery spec 1.1.0 and CoreDNS's kubernetes
 * plugin (see docs/reference): ClusterIP A/AAAA, SRV per named port, headless A/AAAA per
 * published endpoint, endpoint hostnames (hostname field, else the dashed IP), PTR for VIPs and
 * headless endpoint IPs, ExternalName CNAME, `dns-version` TXT, SOA and NS at the apexes.
 * @module
 */

import { bigIntToIp, type Cidr, formatIp, parseIp, reverseName } from "../model/ip.ts";
import { publishedEndpoints, type ServiceEntry, type Snapshot } from "../model/snapshot.ts";
import type { IpFamily } from "../model/types.ts";
import {
  isValidName,
  nameKey,
  nameToLabels,
  type ResourceRecord,
  RRClass,
  RRType,
  type SoaData,
} from "./wire.ts";

/** How the zone is built. */
export interface ZoneOptions {
  /** Cluster domain, e.g. `cluster.local` (a trailing dot is ignored). */
  readonly clusterDomain: string;
  /** TTL of every record, 0-3600 seconds. */
  readonly ttl: number;
  /** Service and cluster CIDRs: svcgate is authoritative for their reverse zones. */
  readonly reverseCidrs: readonly Cidr[];
  /** SOA serial, e.g. the time of the last change in seconds. */
  readonly serial: number;
}

/** One owner name and what it holds; a node without records is an empty non-terminal. */
export interface ZoneNode {
  /** Records by type, owner name in canonical (lower) case. */
  readonly records: ReadonlyMap<number, readonly ResourceRecord[]>;
  /** Additional-section records that go with a type's answer (A/AAAA of SRV targets). */
  readonly additional: ReadonlyMap<number, readonly ResourceRecord[]>;
}

/** An indexed zone, ready for {@link answerQuery} in answer.ts. */
export interface Zone {
  readonly options: ZoneOptions;
  /** Cluster domain in canonical form (lower case, no trailing dot). */
  readonly domain: string;
  /** Canonical apex names of the reverse zones. */
  readonly reverseApexes: readonly string[];
  /** Canonical name -> node, for every name that exists (including empty non-terminals). */
  readonly nodes: ReadonlyMap<string, ZoneNode>;
  /** Namespaces known to exist. */
  readonly namespaces: ReadonlySet<string>;
  /** Number of records, for logs and metrics. */
  readonly recordCount: number;
}

/** SOA timers, as CoreDNS uses them. */
const SOA_REFRESH = 7200;
const SOA_RETRY = 1800;
const SOA_EXPIRE = 86400;

/** Checks zone options; returns an error message naming the bad value, or null. */
export function validateZoneOptions(options: ZoneOptions): string | null {
  const domain = nameKey(options.clusterDomain);
  const labels = nameToLabels(domain);
  if (typeof labels === "string") {
    return `Cannot use cluster domain "${options.clusterDomain}": ${labels}`;
  }
  if (labels.length === 0) {
    return `Cannot use cluster domain "${options.clusterDomain}": it is the root`;
  }
  if (!Number.isInteger(options.ttl) || options.ttl < 0 || options.ttl > 3600) {
    return `Cannot use DNS TTL "${options.ttl}": it must be an integer from 0 to 3600`;
  }
  if (!Number.isInteger(options.serial) || options.serial < 0 || options.serial > 0xffffffff) {
    return `Cannot use SOA serial "${options.serial}": it must be an integer from 0 to 4294967295`;
  }
  return null;
}

/**
 * Canonical apex names of the reverse zones covering a CIDR: the prefix is rounded up to the
 * next octet (IPv4) or nibble (IPv6) boundary, so a /12 gives sixteen /16 zones and nothing
 * outside the CIDR is claimed.
 *
 * @example
 * ```ts
 * reverseZoneApexes(parseCidr("198.19.0.0/16") as Cidr); // ["19.198.in-addr.arpa"]
 * ```
 */
export function reverseZoneApexes(cidr: Cidr): string[] {
  const step = cidr.family === 4 ? 8 : 4;
  const bits = cidr.family === 4 ? 32 : 128;
  const rounded = Math.ceil(cidr.prefix / step) * step;
  const count = 1 << (rounded - cidr.prefix);
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    const network = cidr.network + (BigInt(i) << BigInt(bits - rounded));
    const ip = bigIntToIp(network, cidr.family);
    if (cidr.family === 4) {
      const octets = [...ip.bytes.slice(0, rounded / 8)].reverse();
      out.push([...octets.map(String), "in-addr", "arpa"].join("."));
    } else {
      const nibbles: string[] = [];
      for (let n = 0; n < rounded / 4; n++) {
        const byte = ip.bytes[n >> 1];
        nibbles.push(((n & 1) === 0 ? byte >> 4 : byte & 0xf).toString(16));
      }
      out.push([...nibbles.reverse(), "ip6", "arpa"].join("."));
    }
  }
  return out;
}

/** The label CoreDNS gives an endpoint without a hostname: its IP with `.`/`:` as `-`. */
export function dashedIp(address: string): string {
  return address.replace(/[.:]/g, "-");
}

/** Parses a dashed-IP label (`1-2-3-4`, `2001-db8--1`) back to canonical address text. */
export function parseDashedIp(label: string): { address: string; family: IpFamily } | null {
  if (/^\d{1,3}(-\d{1,3}){3}$/.test(label)) {
    const ip = parseIp(label.replace(/-/g, "."));
    return ip ? { address: formatIp(ip), family: 4 } : null;
  }
  if (/^[0-9a-f-]+$/i.test(label) && label.includes("-")) {
    const ip = parseIp(label.replace(/-/g, ":"));
    return ip && ip.family === 6 ? { address: formatIp(ip), family: 6 } : null;
  }
  return null;
}

/** The SOA record of an apex. */
export function soaRecord(zone: Pick<Zone, "domain" | "options">, apex: string): ResourceRecord {
  const data: SoaData = {
    mname: `ns.dns.${zone.domain}`,
    rname: `hostmaster.${zone.domain}`,
    serial: zone.options.serial >>> 0,
    refresh: SOA_REFRESH,
    retry: SOA_RETRY,
    expire: SOA_EXPIRE,
    minimum: zone.options.ttl,
  };
  return { name: apex, type: RRType.SOA, class: RRClass.IN, ttl: zone.options.ttl, data };
}

/** Which authoritative zone a canonical name falls in: its apex, or null when not ours. */
export function findApex(zone: Pick<Zone, "domain" | "reverseApexes">, key: string): string | null {
  if (key === zone.domain || key.endsWith("." + zone.domain)) return zone.domain;
  if (key.endsWith(".arpa")) {
    for (const apex of zone.reverseApexes) {
      if (key === apex || key.endsWith("." + apex)) return apex;
    }
  }
  return null;
}

const NO_RECORDS: ReadonlyMap<number, readonly ResourceRecord[]> = new Map();

/** The one node object every empty non-terminal shares (fewer objects, shorter GC pauses). */
const EMPTY_NODE: ZoneNode = Object.freeze({ records: NO_RECORDS, additional: NO_RECORDS });

class NodeBuilder implements ZoneNode {
  records = NO_RECORDS as Map<number, ResourceRecord[]>;
  additional = NO_RECORDS as Map<number, ResourceRecord[]>;
}

/**
 * Builds the zone from a snapshot. Pure; cost is linear in services plus endpoints.
 *
 * @example
 * ```ts
 * const zone = buildZone(snapshot, {
 *   clusterDomain: "cluster.local", ttl: 30, serial: 1, reverseCidrs: [serviceCidr],
 * });
 * ```
 */
export function buildZone(snapshot: Snapshot, options: ZoneOptions): Zone {
  const steps = buildZoneSteps(snapshot, options);
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
  }
}

/**
 * {@link buildZone} in steps: yields after every `chunk` services (and node batches), so a
 * server can keep answering from the previous zone between steps. Still pure.
 */
export function* buildZoneSteps(
  snapshot: Snapshot,
  options: ZoneOptions,
  chunk = 64,
  cache?: ContributionCache,
): Generator<void, Zone> {
  const problem = validateZoneOptions(options);
  if (problem) throw new Error(problem);
  const domain = nameKey(options.clusterDomain);
  const ttl = options.ttl;
  const reverseApexes = [...new Set(options.reverseCidrs.flatMap(reverseZoneApexes))];
  const base = { domain, options, reverseApexes };
  const nodes = new Map<string, ZoneNode>();
  const contributions = cache?.matches(domain, ttl) ? cache : new ContributionCache(domain, ttl);
  let recordCount = 0;

  /** Marks a name as existing (an empty node unless records arrive). */
  const node = (key: string): void => {
    if (!nodes.has(key)) nodes.set(key, EMPTY_NODE);
  };
  const writable = (key: string): NodeBuilder => {
    const n = nodes.get(key);
    if (n instanceof NodeBuilder) return n;
    const b = new NodeBuilder();
    nodes.set(key, b);
    return b;
  };
  const add = (rr: ResourceRecord): void => {
    const n = writable(rr.name);
    if (n.records === NO_RECORDS) n.records = new Map();
    let list = n.records.get(rr.type);
    if (!list) n.records.set(rr.type, list = []);
    // Duplicates (two services with one VIP) collapse into one record. Long lists come from
    // sources that are unique already (endpoints merged per address), so only short ones scan.
    if (list.length <= 16 && list.some((x) => sameData(x, rr))) return;
    list.push(rr);
    recordCount++;
  };
  const addAdditional = (owner: string, type: number, rr: ResourceRecord): void => {
    const n = writable(owner);
    if (n.additional === NO_RECORDS) n.additional = new Map();
    let list = n.additional.get(type);
    if (!list) n.additional.set(type, list = []);
    if (list.length <= 16 && list.some((x) => x.name === rr.name && sameData(x, rr))) return;
    list.push(rr);
  };

  // Apex, fixed names and namespaces.
  add(soaRecord(base, domain));
  add(nameRecord(domain, RRType.NS, `ns.dns.${domain}`, ttl));
  add({
    name: `dns-version.${domain}`,
    type: RRType.TXT,
    class: RRClass.IN,
    ttl,
    data: { texts: ["1.1.0"] },
  });
  node(`svc.${domain}`);
  node(`pod.${domain}`);
  for (const apex of reverseApexes) {
    add(soaRecord(base, apex));
    add(nameRecord(apex, RRType.NS, `ns.dns.${domain}`, ttl));
  }
  const namespaces = new Set<string>();
  for (const ns of snapshot.namespaces) namespaces.add(ns.toLowerCase());
  for (const entry of snapshot.services.values()) {
    namespaces.add(entry.service.namespace.toLowerCase());
  }
  for (const ns of namespaces) {
    if (!isValidName(ns)) continue;
    node(`${ns}.svc.${domain}`);
    node(`${ns}.pod.${domain}`);
  }

  let done = 0;
  for (const entry of snapshot.services.values()) {
    if (++done % chunk === 0) yield;
    const c = contributions.get(entry);
    for (const name of c.names) node(name);
    for (const rr of c.records) add(rr);
    for (const [owner, type, rr] of c.additional) addAdditional(owner, type, rr);
  }

  // Empty non-terminals: every ancestor of an owner name, up to its apex, exists.
  done = 0;
  for (const key of [...nodes.keys()]) {
    if (++done % (chunk * 16) === 0) yield;
    const apex = findApex(base, key);
    if (!apex) continue;
    let k = key;
    while (k !== apex) {
      const dot = k.indexOf(".");
      if (dot < 0) break;
      k = k.slice(dot + 1);
      node(k);
    }
  }

  return { options, domain, reverseApexes, nodes, namespaces, recordCount };
}

/** What one service puts into the zone: a pure function of its entry, the domain and the TTL. */
export interface Contribution {
  /** Records, PTRs included, owner names canonical. */
  readonly records: readonly ResourceRecord[];
  /** Additional-section records: owner, the type they go with, the record. */
  readonly additional: readonly (readonly [string, number, ResourceRecord])[];
  /** Names that exist even without records (a ClusterIP service without an IP yet). */
  readonly names: readonly string[];
}

/**
 * Remembers each entry's {@link Contribution} by object identity. The store keeps the same
 * entry object while a service is unchanged, so a rebuild reuses its records instead of
 * allocating them again (less garbage, shorter GC pauses in a server rebuilding every second).
 */
export class ContributionCache {
  readonly #map = new WeakMap<ServiceEntry, Contribution>();
  constructor(readonly domain: string, readonly ttl: number) {}

  /** True when built for this domain and TTL. */
  matches(domain: string, ttl: number): boolean {
    return this.domain === domain && this.ttl === ttl;
  }

  /** The entry's contribution, computed once per entry object. */
  get(entry: ServiceEntry): Contribution {
    let c = this.#map.get(entry);
    if (!c) this.#map.set(entry, c = serviceContribution(entry, this.domain, this.ttl));
    return c;
  }
}

const nameRecord = (name: string, type: number, target: string, ttl: number): ResourceRecord => ({
  name,
  type,
  class: RRClass.IN,
  ttl,
  data: { target },
});

const addressRecord = (
  name: string,
  address: string,
  family: IpFamily,
  ttl: number,
): ResourceRecord => ({
  name,
  type: family === 4 ? RRType.A : RRType.AAAA,
  class: RRClass.IN,
  ttl,
  data: { address },
});

/** The records of one service (see the module doc for what the spec asks). */
export function serviceContribution(
  entry: ServiceEntry,
  domain: string,
  ttl: number,
): Contribution {
  const records: ResourceRecord[] = [];
  const additional: [string, number, ResourceRecord][] = [];
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
      const ip = parseIp(vip);
      if (!ip) continue;
      const rr = addressRecord(svcName, formatIp(ip), ip.family, ttl);
      addrs.push(rr);
      records.push(rr);
      ptrs.push(nameRecord(reverseName(ip), RRType.PTR, svcName, ttl));
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
      for (const a of addrs) additional.push([srvName, RRType.SRV, a]);
    }
    records.push(...ptrs);
    return out;
  }
  // Headless: one A/AAAA per published endpoint; without any, the name does not exist.
  const eps = publishedEndpoints(entry);
  if (eps.length === 0) return out;
  const hostNames = new Map<string, string>();
  for (const ep of eps) {
    const ip = parseIp(ep.address);
    if (!ip) continue;
    const address = formatIp(ip);
    records.push(addressRecord(svcName, address, ip.family, ttl));
    const host = (ep.hostname && ep.hostname !== "" ? ep.hostname : dashedIp(address))
      .toLowerCase();
    const hostName = `${host}.${svcName}`;
    if (!isValidName(hostName)) continue;
    hostNames.set(address, hostName);
    records.push(addressRecord(hostName, address, ip.family, ttl));
    ptrs.push(nameRecord(reverseName(ip), RRType.PTR, hostName, ttl));
  }
  for (const port of namedPorts) {
    const srvName = `_${port.name}._${port.protocol}.${svcName}`.toLowerCase();
    if (!isValidName(srvName)) continue;
    const resolved = entry.ports.find((p) => p.servicePort === port) ??
      entry.ports.find((p) =>
        p.servicePort.name === port.name && p.servicePort.protocol === port.protocol
      );
    const portOf = new Map<string, number>();
    for (const b of resolved?.backends ?? []) {
      if (!portOf.has(b.address)) portOf.set(b.address, b.port);
    }
    const targets: { port: number; host: string; addresses: string[] }[] = [];
    const byTarget = new Map<string, { port: number; host: string; addresses: string[] }>();
    for (const ep of eps) {
      const address = canonical(ep.address);
      const host = address ? hostNames.get(address) : undefined;
      const backendPort = address ? portOf.get(address) : undefined;
      if (!address || !host || backendPort === undefined) continue;
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
        additional.push([
          srvName,
          RRType.SRV,
          addressRecord(t.host, a, a.includes(":") ? 6 : 4, ttl),
        ]);
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

/** True when two records of one type carry the same data. */
export function sameData(a: ResourceRecord, b: ResourceRecord): boolean {
  if (a.type !== b.type) return false;
  const x = a.data as unknown as Record<string, unknown>;
  const y = b.data as unknown as Record<string, unknown>;
  if (typeof x.address === "string") return x.address === y.address;
  if (typeof x.target === "string") {
    return x.target === y.target && x.port === y.port && x.weight === y.weight &&
      x.priority === y.priority;
  }
  return JSON.stringify(x) === JSON.stringify(y);
}

function canonical(address: string): string | null {
  const ip = parseIp(address);
  return ip ? formatIp(ip) : null;
}
