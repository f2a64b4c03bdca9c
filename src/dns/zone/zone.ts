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

import { bigIntToIp, type Cidr, formatIp, parseIp, reverseName } from "../../model/ip.ts";
import {
  publishedEndpoints,
  type ResolvedPort,
  type ServiceEntry,
  type Snapshot,
} from "../../model/snapshot.ts";
import { EMPTY_LIST, EMPTY_RECORD, type IpFamily, type ServicePort } from "../../model/types.ts";
import { isValidName, nameKey, nameToLabels } from "../codec/names.ts";
import { type ResourceRecord, RRClass, RRType, type SoaData } from "../codec/records.ts";

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

/**
 * One owner name and what it holds; a node without records is an empty non-terminal. Plain
 * arrays, not a map per type: a 10k-service zone has ~40k nodes, nearly all of one record.
 */
export interface ZoneNode {
  /** Records, owner name in canonical (lower) case, grouped by type in the order types came. */
  readonly records: readonly ResourceRecord[];
  /** Additional-section records of the SRV answer: the A/AAAA of its targets. */
  readonly additional: readonly ResourceRecord[];
}

/** The node's records of one type (empty when none), in the order they were added. */
export function recordsOfType(node: ZoneNode, type: number): readonly ResourceRecord[] {
  const all = node.records;
  const start = all.findIndex((rr) => rr.type === type);
  if (start < 0) return NO_RECORDS;
  let end = start + 1;
  while (end < all.length && all[end].type === type) end++;
  return start === 0 && end === all.length ? all : all.slice(start, end);
}

const NO_RECORDS: readonly ResourceRecord[] = EMPTY_LIST;

/** The one node object every empty non-terminal shares (fewer objects, shorter GC pauses). */
export const EMPTY_NODE: ZoneNode = Object.freeze({ records: NO_RECORDS, additional: NO_RECORDS });

/** A node being filled; {@link trim} it once complete. */
export class MutableNode implements ZoneNode {
  records = NO_RECORDS as ResourceRecord[];
  additional = NO_RECORDS as ResourceRecord[];

  /**
   * Adds a record to its type's group (a new type goes last); returns 1 when kept. Duplicates
   * (two services with one VIP) collapse. Long groups come from sources that are unique already
   * (endpoints merged per address), so only groups of up to 16 are scanned.
   */
  add(rr: ResourceRecord): number {
    const list = this.records;
    if (list.length === 0) {
      this.records = [rr];
      return 1;
    }
    // A type's records mostly come together, so its group is mostly the last one.
    const end = list[list.length - 1].type === rr.type
      ? list.length
      : list.findLastIndex((x) => x.type === rr.type) + 1;
    if (end === 0) {
      list.push(rr);
      return 1;
    }
    let size = 0;
    while (size <= 16 && size < end && list[end - 1 - size].type === rr.type) size++;
    if (size <= 16) {
      for (let i = end - size; i < end; i++) if (sameData(list[i], rr)) return 0;
    }
    if (end === list.length) list.push(rr);
    else list.splice(end, 0, rr);
    return 1;
  }

  /** Adds an address of an SRV target (duplicates in a short list collapse). */
  addAdditional(rr: ResourceRecord): void {
    const list = this.additional;
    if (list.length === 0) {
      this.additional = [rr];
      return;
    }
    if (list.length <= 16 && list.some((x) => x.name === rr.name && sameData(x, rr))) return;
    list.push(rr);
  }

  /** Cuts the arrays to their length: a pushed-to array keeps room for 16 more records. */
  trim(): void {
    if (this.records.length > 1) this.records = this.records.slice();
    if (this.additional.length > 1) this.additional = this.additional.slice();
  }
}

/** The node at `name` being filled, made (replacing an empty one) when there is none yet. */
export function writableNode(nodes: Map<string, ZoneNode>, name: string): MutableNode {
  const n = nodes.get(name);
  if (n instanceof MutableNode) return n;
  const m = new MutableNode();
  nodes.set(name, m);
  return m;
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
): Generator<void, Zone> {
  const problem = validateZoneOptions(options);
  if (problem) throw new Error(problem);
  const domain = nameKey(options.clusterDomain);
  const ttl = options.ttl;
  const reverseApexes = [...new Set(options.reverseCidrs.flatMap(reverseZoneApexes))];
  const base = { domain, options, reverseApexes };
  const nodes = new Map<string, ZoneNode>();
  let recordCount = 0;

  /** Marks a name as existing (an empty node unless records arrive). */
  const node = (key: string): void => {
    if (!nodes.has(key)) nodes.set(key, EMPTY_NODE);
  };
  const writable = (key: string): MutableNode => writableNode(nodes, key);
  const add = (rr: ResourceRecord): void => {
    recordCount += writable(rr.name).add(rr);
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
    const c = serviceContribution(entry, domain, ttl);
    for (const name of c.names) node(name);
    for (const rr of c.records) add(rr);
    for (const [owner, rr] of c.additional) writable(owner).addAdditional(rr);
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
  /** Addresses of SRV targets, for the additional section of their owner's SRV answer. */
  readonly additional: readonly (readonly [owner: string, rr: ResourceRecord])[];
  /** Names that exist even without records (a ClusterIP service without an IP yet). */
  readonly names: readonly string[];
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
      const ip = parseIp(vip);
      if (!ip) continue;
      // The model keeps VIPs canonical already: reuse the entry's text rather than a copy.
      const address = formatIp(ip);
      const rr = addressRecord(svcName, address === vip ? vip : address, ip.family, ttl);
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

/**
 * A copy of an entry with only what {@link serviceContribution} reads, everything else blanked
 * to shared values: what crosses to a DNS worker, and what the worker holds per service.
 * Endpoints make records only for headless services, so other services keep none, and of their
 * ports only name, protocol and port (targetPort set to the port). With a `pool`, equal texts
 * and port lists are shared with the entries made before.
 */
export function slimEntry(e: ServiceEntry, pool?: EntryPool): ServiceEntry {
  const s = e.service;
  const headless = s.headless;
  return {
    key: e.key,
    service: {
      namespace: pool ? pool.text(s.namespace) : s.namespace,
      name: s.name,
      type: pool ? pool.text(s.type) : s.type,
      clusterIPs: s.clusterIPs,
      headless,
      ports: headless ? s.ports : pool ? pool.ports(s.ports) : dnsPorts(s.ports),
      externalName: s.externalName,
      publishNotReadyAddresses: s.publishNotReadyAddresses,
      externalIPs: EMPTY_LIST,
      loadBalancerIPs: EMPTY_LIST,
      loadBalancerSourceRanges: EMPTY_LIST,
      sessionAffinity: "None",
      sessionAffinityTimeoutSeconds: 0,
      internalTrafficPolicy: "Cluster",
      externalTrafficPolicy: "Cluster",
      ipFamilies: EMPTY_LIST,
      labels: EMPTY_RECORD,
      annotations: EMPTY_RECORD,
    },
    ports: headless ? e.ports.map(plainPort) : EMPTY_LIST,
    endpoints: headless ? e.endpoints : EMPTY_LIST,
    ownedByOtherProxy: e.ownedByOtherProxy,
    fingerprint: 0,
  };
}

/**
 * A resolved port whose backends are plain data: the snapshot's backends are views with getters
 * (snapshot.ts), which a structured clone to a worker would drop.
 */
function plainPort(p: ResolvedPort): ResolvedPort {
  return {
    servicePort: p.servicePort,
    backends: p.backends.map((b) => ({
      address: b.address,
      family: b.family,
      port: b.port,
      ready: b.ready,
      serving: b.serving,
      terminating: b.terminating,
    })),
  };
}

function dnsPorts(ports: readonly ServicePort[]): ServicePort[] {
  return ports.map((p) => ({
    name: p.name,
    protocol: p.protocol,
    port: p.port,
    targetPort: p.port,
  }));
}

/** Entries a pool remembers per kind; past it the pool starts afresh (churned namespaces). */
const POOL_LIMIT = 4096;

/**
 * Texts and port lists shared among the slim entries a worker holds: each entry arrives as its
 * own copy, yet most repeat a namespace and a port list (`http/TCP/80`).
 */
export class EntryPool {
  readonly #texts = new Map<string, string>();
  readonly #ports = new Map<string, readonly ServicePort[]>();

  /** The pool's copy of a text. */
  text<T extends string>(text: T): T {
    const known = this.#texts.get(text);
    if (known !== undefined) return known as T;
    if (this.#texts.size >= POOL_LIMIT) this.#texts.clear();
    this.#texts.set(text, text);
    return text;
  }

  /** The pool's list of these ports as DNS sees them (name, protocol, port). */
  ports(ports: readonly ServicePort[]): readonly ServicePort[] {
    const key = JSON.stringify(ports.map((p) => [p.name, p.protocol, p.port]));
    const known = this.#ports.get(key);
    if (known) return known;
    if (this.#ports.size >= POOL_LIMIT) this.#ports.clear();
    const list = Object.freeze(dnsPorts(ports));
    this.#ports.set(key, list);
    return list;
  }
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
