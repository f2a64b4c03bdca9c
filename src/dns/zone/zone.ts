/**
 * The cluster DNS zone: its shape (names -> nodes of records, the empty non-terminals between
 * them, the apexes of the cluster domain and of the reverse zones svcgate is authoritative for)
 * and the pieces every zone shares: options, SOA and NS at the apexes, the apex of a name,
 * reverse-zone apexes of a CIDR, dashed-IP labels. The zone is built and kept up to date by
 * zone_index.ts, from what each service contributes (service_records.ts). Pure.
 * @module
 */

import { bigIntToIp, type Cidr, formatIp, type IpText, parseIp } from "../../model/ip.ts";
import type { ServiceEntry } from "../../model/snapshot.ts";
import { EMPTY_LIST, type Endpoint, type IpFamily, type ServiceKey } from "../../model/types.ts";
import { nameKey, nameToLabels } from "../codec/names.ts";
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
  /**
   * The letter of the Kubernetes DNS spec (`--dns-strict-spec`): none of the answers CoreDNS
   * gives beyond it (see {@link RecordOptions}). Default false: CoreDNS's answers.
   */
  readonly strictSpec?: boolean;
  /** Endpoints without a hostname are named after their pod (CoreDNS `endpoint_pod_names`). */
  readonly endpointPodNames?: boolean;
  /**
   * Keep IP -> services for every endpoint (verified pod records, client namespaces from
   * endpoints). Implied unless `strictSpec`: CoreDNS answers endpoint IPs of every service.
   */
  readonly indexEndpoints?: boolean;
  /** svcgate's own addresses: what `ns.dns.<zone>` answers (not in strict mode). */
  readonly nsAddresses?: readonly IpText[];
  /** How `a-b-c-d.<ns>.pod.<zone>` is answered; default `insecure` (as kubeadm's Corefile). */
  readonly podRecords?: PodRecords;
}

/** How pod records are answered (CoreDNS's `pods` option). */
export type PodRecords = "insecure" | "verified" | "disabled";

/**
 * What a service's records depend on besides its entry: the zone's flavour. Not strict (the
 * default), the zone answers as CoreDNS's kubernetes plugin does where the spec allows two
 * answers: SRV at the bare service name and at endpoint names, PTR and names for the endpoints
 * of ClusterIP services, headless SRV ports from the endpoints when the Service lists none,
 * CoreDNS's SRV weights, `ns.dns.<zone>` with svcgate's address, reverse zones naming their
 * own `ns.dns.` and `hostmaster.`, the zone part of names in the question's case, and
 * `dns-version` with TTL 28800.
 */
export interface RecordOptions {
  readonly strictSpec: boolean;
  readonly endpointPodNames: boolean;
  /** Every endpoint of every service is indexed by IP (and read by DNS). */
  readonly indexEndpoints: boolean;
}

/** The record options a zone's options imply. */
export function recordOptions(o: Partial<ZoneOptions>): RecordOptions {
  const strictSpec = o.strictSpec ?? false;
  return {
    strictSpec,
    endpointPodNames: o.endpointPodNames ?? false,
    indexEndpoints: !strictSpec || (o.indexEndpoints ?? false),
  };
}

/** The records of the spec's letter (`--dns-strict-spec`), for tests and callers that want it. */
export const STRICT_RECORDS: RecordOptions = Object.freeze({
  strictSpec: true,
  endpointPodNames: false,
  indexEndpoints: false,
});

/** CoreDNS's records (the default). */
export const COREDNS_RECORDS: RecordOptions = Object.freeze({
  strictSpec: false,
  endpointPodNames: false,
  indexEndpoints: true,
});

/**
 * One owner name and what it holds; a node without records is an empty non-terminal. Plain
 * arrays, not a map per type: nearly every node holds one record (src/dns/README.md).
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

/** An indexed zone, ready for answerQuery (answer/answer.ts). */
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
  /** The services held, by key (names CoreDNS answers from endpoints are read here on ask). */
  readonly services?: ReadonlyMap<ServiceKey, ServiceEntry>;
  /**
   * Keys of the services with an endpoint at this address (canonical text), when the zone
   * indexes endpoints ({@link RecordOptions.indexEndpoints}); empty otherwise.
   */
  readonly endpointsAt?: (address: string) => readonly ServiceKey[];
}

/** SOA timers, as CoreDNS uses them. */
/** CoreDNS's SOA record TTL is the zone TTL, at most 300 s (its minimum stays the zone TTL). */
const COREDNS_SOA_TTL_CAP = 300;
/** CoreDNS's TTL of `dns-version.<zone>` TXT. */
export const DNS_VERSION_TTL = 28800;
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

/**
 * The first label of an endpoint's name, lower case: its hostname; with `endpointPodNames` its
 * pod's name; else its dashed IP. Not strict, an IPv6 label ending in "-" (`2001:db8::`) gets a
 * "0", as CoreDNS does, so it is a valid label.
 */
export function endpointLabel(ep: Endpoint, records: RecordOptions): string {
  if (ep.hostname) return ep.hostname.toLowerCase();
  if (records.endpointPodNames && ep.podName && ep.podName.length < 64) {
    return ep.podName.toLowerCase();
  }
  const dashed = dashedIp(ep.address);
  return !records.strictSpec && dashed.endsWith("-") ? dashed + "0" : dashed;
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

/** A record whose data is a name (CNAME, NS, PTR). */
export const nameRecord = (
  name: string,
  type: number,
  target: string,
  ttl: number,
): ResourceRecord => ({
  name,
  type,
  class: RRClass.IN,
  ttl,
  data: { target },
});

/** An A or AAAA record. */
export const addressRecord = (
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

/**
 * The name of an apex's name server: `ns.dns.<apex>` as CoreDNS names every zone it serves;
 * strict, `ns.dns.<cluster domain>` for every apex (svcgate's answer before CoreDNS's).
 */
export function nsName(zone: Pick<Zone, "domain" | "options">, apex: string): string {
  return `ns.dns.${zone.options.strictSpec ? zone.domain : apex}`;
}

/** The SOA record of an apex (CoreDNS's: names in the apex itself, TTL at most 300 s). */
export function soaRecord(zone: Pick<Zone, "domain" | "options">, apex: string): ResourceRecord {
  const strict = zone.options.strictSpec ?? false;
  const data: SoaData = {
    mname: nsName(zone, apex),
    rname: `hostmaster.${strict ? zone.domain : apex}`,
    serial: zone.options.serial >>> 0,
    refresh: SOA_REFRESH,
    retry: SOA_RETRY,
    expire: SOA_EXPIRE,
    minimum: zone.options.ttl,
  };
  const ttl = strict ? zone.options.ttl : Math.min(zone.options.ttl, COREDNS_SOA_TTL_CAP);
  return { name: apex, type: RRType.SOA, class: RRClass.IN, ttl, data };
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
