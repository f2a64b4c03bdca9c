/**
 * The cluster zone, built from a snapshot and then kept up to date in place: the whole zone once
 * ({@link buildZone}, or {@link ZoneIndex.buildSteps} in slices), then per publish only the names
 * of services that were added, removed or changed (and of namespaces that appeared or went) are
 * rebuilt. Every name remembers which services put records there, so a rebuilt node holds
 * exactly what a whole build gives it for the same snapshot, records in the same order
 * (zone_index_test.ts checks every step against a whole build). The one zone builder: the
 * engine, the tests and the benchmarks all build zones here. Pure (no I/O, no clock).
 * @module
 */

import type { ServiceEntry, Snapshot } from "../../model/snapshot.ts";
import type { ServiceKey } from "../../model/types.ts";
import { ipFamilyOf, reverseName } from "../../model/ip.ts";
import { isValidName, nameKey } from "../codec/names.ts";
import { type NameData, type ResourceRecord, RRClass, RRType } from "../codec/records.ts";
import { type Contribution, serviceContribution } from "./service_records.ts";
import { EndpointIndex } from "./endpoint_index.ts";
import {
  addressRecord,
  DNS_VERSION_TTL,
  EMPTY_NODE,
  findApex,
  MutableNode,
  nameRecord,
  nsName,
  type RecordOptions,
  recordOptions,
  recordsOfType,
  reverseZoneApexes,
  soaRecord,
  validateZoneOptions,
  writableNode,
  type Zone,
  type ZoneNode,
  type ZoneOptions,
} from "./zone.ts";

/**
 * Builds the whole zone from a snapshot. Pure; cost is linear in services plus endpoints.
 *
 * @example
 * ```ts
 * const zone = buildZone(snapshot, {
 *   clusterDomain: "cluster.local", ttl: 30, serial: 1, reverseCidrs: [serviceCidr],
 * });
 * ```
 */
export function buildZone(snapshot: Snapshot, options: ZoneOptions): Zone {
  return ZoneIndex.build(snapshot, options).zone();
}

/** One owner name's share of a contribution, in contribution order. */
interface Share {
  readonly records: ResourceRecord[];
  readonly additional: ResourceRecord[];
}

/** A contribution split by owner name (every name it makes exist has a share). */
type Shares = ReadonlyMap<string, Share>;

function sharesOf(c: Contribution): Shares {
  const shares = new Map<string, Share>();
  const share = (name: string): Share => {
    let s = shares.get(name);
    if (!s) shares.set(name, s = { records: [], additional: [] });
    return s;
  };
  for (const name of c.names) share(name);
  for (const rr of c.records) share(rr.name).records.push(rr);
  for (const [owner, rr] of c.additional) share(owner).additional.push(rr);
  return shares;
}

/** Names whose node changed in an update, with the node each had before (undefined: none). */
export type ZoneChanges = ReadonlyMap<string, ZoneNode | undefined>;

/**
 * A zone that can be updated per service.
 *
 * @example
 * ```ts
 * const index = ZoneIndex.build(snapshot, options);
 * const changes = index.update(next, serial, index.diff(next), true);
 * handler.setZone(index.zone(), table);
 * ```
 */
export class ZoneIndex {
  readonly domain: string;
  readonly ttl: number;
  readonly reverseApexes: readonly string[];
  readonly records: RecordOptions;
  #options: ZoneOptions;
  readonly #nodes = new Map<string, ZoneNode>();
  /** Records that do not come from services (SOA, NS, dns-version), by owner. */
  readonly #fixed = new Map<string, ResourceRecord[]>();
  /**
   * Services with records or names at a name, in the order they were added: a name listed here
   * or in `#reasons` exists in its own right.
   */
  readonly #contributors = new Map<string, ServiceKey | ServiceKey[]>();
  /** Why a name exists besides services (fixed records, `svc`/`pod`, namespaces), counted. */
  readonly #reasons = new Map<string, number>();
  /** Names existing in their own right below a name (inside its apex): it is their ancestor. */
  readonly #below = new Map<string, number>();
  /** The services the zone holds now. */
  readonly #services = new Map<ServiceKey, ServiceEntry>();
  /** Namespace (lower case) -> reasons: listed in the snapshot, plus one per service. */
  readonly #namespaces = new Map<string, number>();
  #listedNamespaces = new Set<string>();
  /** Names holding a CNAME into our zones: their answers depend on the target's node. */
  readonly #chasers = new Set<string>();
  /** Endpoint IPs -> services, when the zone's records need it (RecordOptions.indexEndpoints). */
  readonly #endpoints: EndpointIndex | null;
  #recordCount = 0;

  private constructor(options: ZoneOptions) {
    const problem = validateZoneOptions(options);
    if (problem) throw new Error(problem);
    this.domain = nameKey(options.clusterDomain);
    this.ttl = options.ttl;
    this.reverseApexes = [...new Set(options.reverseCidrs.flatMap(reverseZoneApexes))];
    this.records = recordOptions(options);
    this.#endpoints = this.records.indexEndpoints ? new EndpointIndex() : null;
    this.#options = options;
  }

  /** Builds the whole zone; see {@link buildSteps} for the sliced form. */
  static build(snapshot: Snapshot, options: ZoneOptions): ZoneIndex {
    const steps = ZoneIndex.buildSteps(snapshot, options);
    for (;;) {
      const r = steps.next();
      if (r.done) return r.value;
    }
  }

  /** The full build in steps, yielding every `chunk` services so a server keeps answering. */
  static *buildSteps(
    snapshot: Snapshot,
    options: ZoneOptions,
    chunk = 64,
  ): Generator<void, ZoneIndex> {
    const z = new ZoneIndex(options);
    z.#setFixed();
    for (const name of z.#fixed.keys()) z.#reasonInc(name, null);
    z.#reasonInc(`svc.${z.domain}`, null);
    z.#reasonInc(`pod.${z.domain}`, null);
    for (const ns of snapshot.namespaces) {
      const lower = ns.toLowerCase();
      if (z.#listedNamespaces.has(lower)) continue;
      z.#listedNamespaces.add(lower);
      z.#nsInc(lower, null);
    }
    const nodes = z.#nodes;
    const writable = (name: string): MutableNode => writableNode(nodes, name);
    for (const [name, list] of z.#fixed) {
      for (const rr of list) z.#recordCount += writable(name).add(rr);
    }
    let done = 0;
    for (const [key, entry] of snapshot.services) {
      if (++done % chunk === 0) yield;
      const shares = sharesOf(serviceContribution(entry, z.domain, z.ttl, z.records));
      z.#attach(key, entry, shares, null);
      // Services arrive in snapshot order; a rebuilt node (#rebuild) follows the same order.
      for (const [name, share] of shares) {
        if (share.records.length === 0 && share.additional.length === 0) continue;
        const n = writable(name);
        for (const rr of share.records) z.#recordCount += n.add(rr);
        for (const rr of share.additional) n.addAdditional(rr);
      }
    }
    done = 0;
    for (const names of [z.#reasons.keys(), z.#contributors.keys(), z.#below.keys()]) {
      for (const name of names) {
        if (++done % (chunk * 16) === 0) yield;
        if (!nodes.has(name)) nodes.set(name, EMPTY_NODE);
      }
    }
    for (const [name, n] of nodes) {
      if (++done % (chunk * 16) === 0) yield;
      if (!(n instanceof MutableNode)) continue;
      n.trim();
      if (z.#isChaser(n)) z.#chasers.add(name);
    }
    return z;
  }

  /** The zone as it is now. Its node map is this index's own and changes with {@link update}. */
  zone(): Zone {
    const endpoints = this.#endpoints;
    return {
      options: this.#options,
      domain: this.domain,
      reverseApexes: this.reverseApexes,
      nodes: this.#nodes,
      namespaces: new Set(this.#namespaces.keys()),
      recordCount: this.#recordCount,
      services: this.#services,
      endpointsAt: endpoints ? (address) => endpoints.get(address) : () => [],
    };
  }

  /** True when built for these options (the serial aside). */
  fits(options: ZoneOptions): boolean {
    const o = this.#options;
    const r = recordOptions(options);
    return nameKey(options.clusterDomain) === this.domain && options.ttl === this.ttl &&
      options.reverseCidrs.length === o.reverseCidrs.length &&
      options.reverseCidrs.every((c, i) =>
        c.family === o.reverseCidrs[i].family && c.network === o.reverseCidrs[i].network &&
        c.prefix === o.reverseCidrs[i].prefix
      ) &&
      r.strictSpec === this.records.strictSpec &&
      r.endpointPodNames === this.records.endpointPodNames &&
      r.indexEndpoints === this.records.indexEndpoints &&
      (options.nsAddresses ?? []).join() === (o.nsAddresses ?? []).join();
  }

  /**
   * Keys of services added, removed or changed (another entry object) in `snapshot`. Walks
   * every service but allocates only for changed ones (forEach: a for-of over the entries would
   * make a pair per service).
   */
  diff(snapshot: Snapshot): ServiceKey[] {
    const out: ServiceKey[] = [];
    let kept = 0;
    snapshot.services.forEach((entry, key) => {
      const before = this.#services.get(key);
      if (before === undefined) out.push(key);
      else {
        kept++;
        if (before !== entry) out.push(key);
      }
    });
    if (kept < this.#services.size) {
      for (const key of this.#services.keys()) if (!snapshot.services.has(key)) out.push(key);
    }
    return out;
  }

  /** Number of services held. */
  get size(): number {
    return this.#services.size;
  }

  /**
   * Brings the services `keys` to their state in `snapshot` (absent: removed), and with
   * `everything` also the serial and the namespace list. Several calls with parts of
   * {@link diff} give the zone of the snapshot; between calls each service is wholly old or
   * wholly new. Returns the names whose node changed, for the answer table.
   */
  update(
    snapshot: Snapshot,
    serial: number,
    keys: readonly ServiceKey[],
    everything: boolean,
  ): ZoneChanges {
    const affected = new Set<string>();
    if (everything) {
      if (serial !== this.#options.serial) {
        const options = { ...this.#options, serial };
        const problem = validateZoneOptions(options);
        if (problem) throw new Error(problem);
        this.#options = options;
        this.#setFixed();
        for (const name of this.#fixed.keys()) affected.add(name);
      }
      const listed = new Set<string>();
      for (const ns of snapshot.namespaces) listed.add(ns.toLowerCase());
      for (const ns of this.#listedNamespaces) if (!listed.has(ns)) this.#nsDec(ns, affected);
      for (const ns of listed) if (!this.#listedNamespaces.has(ns)) this.#nsInc(ns, affected);
      this.#listedNamespaces = listed;
    }
    // Contributions are not kept (they would double the zone's size): the few this update
    // needs are computed once each, from the entries.
    const split = new Map<ServiceEntry, Shares>();
    const shares = (entry: ServiceEntry): Shares => {
      let s = split.get(entry);
      if (!s) {
        s = sharesOf(serviceContribution(entry, this.domain, this.ttl, this.records));
        split.set(entry, s);
      }
      return s;
    };
    for (const key of keys) {
      const before = this.#services.get(key);
      const after = snapshot.services.get(key);
      if (before === after) continue;
      if (before) this.#detach(key, before, shares(before), affected);
      if (after) this.#attach(key, after, shares(after), affected);
    }
    const changes = new Map<string, ZoneNode | undefined>();
    let rank: Map<ServiceKey, number> | null = null;
    const order = (): Map<ServiceKey, number> => {
      if (!rank) {
        rank = new Map();
        for (const key of snapshot.services.keys()) rank.set(key, rank.size);
      }
      return rank;
    };
    for (const name of affected) {
      const before = this.#nodes.get(name);
      const after = this.#rebuild(name, shares, order);
      if (before === after) continue;
      changes.set(name, before);
      this.#recordCount += (after?.records.length ?? 0) - (before?.records.length ?? 0);
      if (after) this.#nodes.set(name, after);
      else this.#nodes.delete(name);
      if (after && this.#isChaser(after)) this.#chasers.add(name);
      else this.#chasers.delete(name);
    }
    return changes;
  }

  /**
   * Names whose answers follow a CNAME through a changed name: their precomputed answers are
   * stale although their own node did not change.
   */
  chasersThrough(changes: ZoneChanges): string[] {
    const out: string[] = [];
    if (changes.size === 0) return out;
    for (const name of this.#chasers) {
      if (changes.has(name)) continue;
      let node = this.#nodes.get(name);
      for (let depth = 0; node && depth < 8; depth++) {
        const cname = recordsOfType(node, RRType.CNAME);
        if (cname.length === 0) break;
        const target = nameKey((cname[0].data as NameData).target);
        if (changes.has(target)) {
          out.push(name);
          break;
        }
        node = this.#nodes.get(target);
      }
    }
    return out;
  }

  #isChaser(node: ZoneNode): boolean {
    const cname = recordsOfType(node, RRType.CNAME);
    return cname.length > 0 &&
      findApex(this, nameKey((cname[0].data as NameData).target)) !== null;
  }

  /** The node `name` should have now, built from its fixed records and contributors. */
  #rebuild(
    name: string,
    shares: (entry: ServiceEntry) => Shares,
    order: () => Map<ServiceKey, number>,
  ): ZoneNode | undefined {
    let node: MutableNode | null = null;
    for (const rr of this.#fixed.get(name) ?? []) (node ??= new MutableNode()).add(rr);
    const who = this.#contributors.get(name);
    if (who !== undefined) {
      let keys: ServiceKey[];
      if (typeof who === "string") keys = [who];
      else {
        // A whole build adds services in snapshot order; so does a rebuilt node.
        const rank = order();
        const at = (k: ServiceKey) => rank.get(k) ?? Number.MAX_SAFE_INTEGER;
        keys = [...who].sort((a, b) => at(a) - at(b));
      }
      for (const key of keys) {
        const share = shares(this.#services.get(key)!).get(name);
        if (!share) continue;
        if (share.records.length === 0 && share.additional.length === 0) continue;
        node ??= new MutableNode();
        for (const rr of share.records) node.add(rr);
        for (const rr of share.additional) node.addAdditional(rr);
      }
    }
    if (node) {
      node.trim();
      return node;
    }
    return this.#exists(name) || this.#below.has(name) ? EMPTY_NODE : undefined;
  }

  #setFixed(): void {
    const { domain, ttl } = this;
    const base = { domain, options: this.#options };
    const strict = this.records.strictSpec;
    const apexRecords = (apex: string) => {
      const server = nsName(base, apex);
      this.#fixed.set(apex, [soaRecord(base, apex), nameRecord(apex, RRType.NS, server, ttl)]);
      // CoreDNS answers its name server's name with its own addresses.
      const own = strict ? [] : this.#options.nsAddresses ?? [];
      if (own.length > 0) {
        this.#fixed.set(server, own.map((a) => addressRecord(server, a, ipFamilyOf(a), ttl)));
      }
    };
    apexRecords(domain);
    this.#fixed.set(`dns-version.${domain}`, [{
      name: `dns-version.${domain}`,
      type: RRType.TXT,
      class: RRClass.IN,
      ttl: strict ? ttl : DNS_VERSION_TTL,
      data: { texts: ["1.1.0"] },
    }]);
    for (const apex of this.reverseApexes) apexRecords(apex);
  }

  /** True when a name exists in its own right (not only as an ancestor). */
  #exists(name: string): boolean {
    return this.#reasons.has(name) || this.#contributors.has(name);
  }

  #attach(
    key: ServiceKey,
    entry: ServiceEntry,
    shares: Shares,
    affected: Set<string> | null,
  ): void {
    this.#services.set(key, entry);
    this.#indexEndpoints(entry, key, 1, affected);
    this.#nsInc(entry.service.namespace.toLowerCase(), affected);
    for (const name of shares.keys()) {
      const who = this.#contributors.get(name);
      if (who === undefined) {
        const existed = this.#reasons.has(name);
        this.#contributors.set(name, key);
        if (!existed) this.#walkUp(name, 1, affected);
      } else if (typeof who === "string") this.#contributors.set(name, [who, key]);
      else who.push(key);
      affected?.add(name);
    }
  }

  #detach(key: ServiceKey, entry: ServiceEntry, shares: Shares, affected: Set<string>): void {
    this.#services.delete(key);
    this.#indexEndpoints(entry, key, -1, affected);
    this.#nsDec(entry.service.namespace.toLowerCase(), affected);
    for (const name of shares.keys()) {
      const who = this.#contributors.get(name);
      if (who === key) {
        this.#contributors.delete(name);
        if (!this.#reasons.has(name)) this.#walkUp(name, -1, affected);
      } else if (Array.isArray(who)) {
        const i = who.indexOf(key);
        if (i >= 0) who.splice(i, 1);
        if (who.length === 1) this.#contributors.set(name, who[0]);
      }
      affected.add(name);
    }
  }

  /**
   * Adds (or removes) a service's endpoints to the endpoint index. The PTR answers of a ClusterIP
   * service's endpoints are read on ask (answer/on_ask_answers.ts) and added to the reverse
   * name's node records, so the precomputed answers of those names are marked changed.
   */
  #indexEndpoints(
    entry: ServiceEntry,
    key: ServiceKey,
    delta: 1 | -1,
    affected: Set<string> | null,
  ): void {
    const index = this.#endpoints;
    if (!index) return;
    const eps = entry.endpoints;
    for (const ep of eps) {
      if (delta > 0) index.add(ep.address, key);
      else index.remove(ep.address, key);
    }
    const svc = entry.service;
    if (!affected || this.records.strictSpec || svc.headless || svc.type === "ExternalName") return;
    for (const ep of eps) {
      const name = reverseName(ep.address);
      // Only names with a node hold precomputed answers (a VIP's or a headless endpoint's).
      if (this.#nodes.has(name)) affected.add(name);
    }
  }

  #nsInc(ns: string, affected: Set<string> | null): void {
    const n = this.#namespaces.get(ns) ?? 0;
    this.#namespaces.set(ns, n + 1);
    if (n > 0 || !isValidName(ns)) return;
    this.#reasonInc(`${ns}.svc.${this.domain}`, affected);
    this.#reasonInc(`${ns}.pod.${this.domain}`, affected);
  }

  #nsDec(ns: string, affected: Set<string>): void {
    const n = this.#namespaces.get(ns) ?? 0;
    if (n > 1) {
      this.#namespaces.set(ns, n - 1);
      return;
    }
    this.#namespaces.delete(ns);
    if (n === 0 || !isValidName(ns)) return;
    this.#reasonDec(`${ns}.svc.${this.domain}`, affected);
    this.#reasonDec(`${ns}.pod.${this.domain}`, affected);
  }

  #reasonInc(name: string, affected: Set<string> | null): void {
    const n = this.#reasons.get(name) ?? 0;
    const existed = n > 0 || this.#contributors.has(name);
    this.#reasons.set(name, n + 1);
    if (existed) return;
    affected?.add(name);
    this.#walkUp(name, 1, affected);
  }

  #reasonDec(name: string, affected: Set<string>): void {
    const n = this.#reasons.get(name) ?? 0;
    if (n > 1) {
      this.#reasons.set(name, n - 1);
      return;
    }
    this.#reasons.delete(name);
    if (n === 0 || this.#contributors.has(name)) return;
    affected.add(name);
    this.#walkUp(name, -1, affected);
  }

  /** Counts a name in (or out of) every ancestor up to its apex: the empty non-terminals. */
  #walkUp(name: string, delta: number, affected: Set<string> | null): void {
    const apex = findApex(this, name);
    if (!apex) return;
    let k = name;
    while (k !== apex) {
      const dot = k.indexOf(".");
      if (dot < 0) break;
      k = k.slice(dot + 1);
      const n = (this.#below.get(k) ?? 0) + delta;
      if (n > 0) this.#below.set(k, n);
      else this.#below.delete(k);
      if ((delta > 0 && n === 1) || n === 0) affected?.add(k);
    }
  }
}
