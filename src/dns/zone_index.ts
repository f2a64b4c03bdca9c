/**
 * The cluster zone kept up to date in place: a full build once, then per publish only the names
 * of services that were added, removed or changed (and of namespaces that appeared or went) are
 * rebuilt. Every name remembers which services put records there, so a rebuilt node holds
 * exactly what {@link buildZone} would give it for the same snapshot, records in the same order.
 * Pure (no I/O, no clock); the result is checked against buildZone in zone_index_test.ts.
 * @module
 */

import type { ServiceEntry, Snapshot } from "../model/snapshot.ts";
import type { ServiceKey } from "../model/types.ts";
import type { AnswerTableBuilder } from "./fast.ts";
import {
  isValidName,
  type NameData,
  nameKey,
  type ResourceRecord,
  RRClass,
  RRType,
} from "./wire.ts";
import {
  type Contribution,
  ContributionCache,
  findApex,
  reverseZoneApexes,
  sameData,
  soaRecord,
  validateZoneOptions,
  type Zone,
  type ZoneNode,
  type ZoneOptions,
} from "./zone.ts";

const NO_RECORDS: ReadonlyMap<number, readonly ResourceRecord[]> = new Map();
/** Shared by every empty non-terminal. */
const EMPTY_NODE: ZoneNode = Object.freeze({ records: NO_RECORDS, additional: NO_RECORDS });

class MutableNode implements ZoneNode {
  records = NO_RECORDS as Map<number, ResourceRecord[]>;
  additional = NO_RECORDS as Map<number, ResourceRecord[]>;
}

/** One owner name's share of a contribution, in contribution order. */
interface Share {
  readonly records: ResourceRecord[];
  readonly additional: [number, ResourceRecord][];
}

/** Names whose node changed in an update, with the node each had before (undefined: none). */
export type ZoneChanges = ReadonlyMap<string, ZoneNode | undefined>;

/** Appends a record as buildZone does (duplicates collapse); returns 1 when it was kept. */
function addRecord(node: MutableNode, rr: ResourceRecord): number {
  if (node.records === NO_RECORDS) node.records = new Map();
  let list = node.records.get(rr.type);
  if (!list) node.records.set(rr.type, list = []);
  if (list.length <= 16 && list.some((x) => sameData(x, rr))) return 0;
  list.push(rr);
  return 1;
}

function addAdditional(node: MutableNode, type: number, rr: ResourceRecord): void {
  if (node.additional === NO_RECORDS) node.additional = new Map();
  let list = node.additional.get(type);
  if (!list) node.additional.set(type, list = []);
  if (list.length <= 16 && list.some((x) => x.name === rr.name && sameData(x, rr))) return;
  list.push(rr);
}

function recordsOf(node: ZoneNode | undefined): number {
  if (!node) return 0;
  let n = 0;
  for (const list of node.records.values()) n += list.length;
  return n;
}

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
  #options: ZoneOptions;
  readonly #cache: ContributionCache;
  readonly #shares = new WeakMap<Contribution, Map<string, Share>>();
  readonly #nodes = new Map<string, ZoneNode>();
  /** Records that do not come from services (SOA, NS, dns-version), by owner. */
  readonly #fixed = new Map<string, ResourceRecord[]>();
  /** Why a name exists in its own right: fixed, namespace and service reasons, counted. */
  readonly #own = new Map<string, number>();
  /** Names existing in their own right below a name (inside its apex): it is their ancestor. */
  readonly #below = new Map<string, number>();
  /** Services with records or names at a name, in the order they were added. */
  readonly #contributors = new Map<string, ServiceKey | ServiceKey[]>();
  /** The services the zone holds now. */
  readonly #services = new Map<ServiceKey, ServiceEntry>();
  /** Namespace (lower case) -> reasons: listed in the snapshot, plus one per service. */
  readonly #namespaces = new Map<string, number>();
  #listedNamespaces = new Set<string>();
  /** Names holding a CNAME into our zones: their answers depend on the target's node. */
  readonly #chasers = new Set<string>();
  #recordCount = 0;

  private constructor(options: ZoneOptions, cache?: ContributionCache) {
    const problem = validateZoneOptions(options);
    if (problem) throw new Error(problem);
    this.domain = nameKey(options.clusterDomain);
    this.ttl = options.ttl;
    this.reverseApexes = [...new Set(options.reverseCidrs.flatMap(reverseZoneApexes))];
    this.#options = options;
    this.#cache = cache?.matches(this.domain, this.ttl)
      ? cache
      : new ContributionCache(this.domain, this.ttl);
  }

  /** Builds the whole zone (as {@link buildZone}); see {@link buildSteps} for the sliced form. */
  static build(snapshot: Snapshot, options: ZoneOptions, cache?: ContributionCache): ZoneIndex {
    const steps = ZoneIndex.buildSteps(snapshot, options, cache);
    for (;;) {
      const r = steps.next();
      if (r.done) return r.value;
    }
  }

  /** The full build in steps, yielding every `chunk` services so a server keeps answering. */
  static *buildSteps(
    snapshot: Snapshot,
    options: ZoneOptions,
    cache?: ContributionCache,
    chunk = 64,
  ): Generator<void, ZoneIndex> {
    const z = new ZoneIndex(options, cache);
    z.#setFixed();
    for (const name of z.#fixed.keys()) z.#ownInc(name, null);
    z.#ownInc(`svc.${z.domain}`, null);
    z.#ownInc(`pod.${z.domain}`, null);
    for (const ns of snapshot.namespaces) {
      const lower = ns.toLowerCase();
      if (z.#listedNamespaces.has(lower)) continue;
      z.#listedNamespaces.add(lower);
      z.#nsInc(lower, null);
    }
    const nodes = z.#nodes;
    for (const [name, list] of z.#fixed) {
      const n = new MutableNode();
      for (const rr of list) z.#recordCount += addRecord(n, rr);
      nodes.set(name, n);
    }
    let done = 0;
    for (const [key, entry] of snapshot.services) {
      if (++done % chunk === 0) yield;
      z.#attach(key, entry, null);
      // Services arrive in snapshot order, so appending gives buildZone's order.
      for (const [name, share] of z.#sharesOf(entry)) {
        if (share.records.length === 0 && share.additional.length === 0) continue;
        const existing = nodes.get(name);
        let n: MutableNode;
        if (existing instanceof MutableNode) n = existing;
        else nodes.set(name, n = new MutableNode());
        for (const rr of share.records) z.#recordCount += addRecord(n, rr);
        for (const [type, rr] of share.additional) addAdditional(n, type, rr);
      }
    }
    done = 0;
    for (const names of [z.#own.keys(), z.#below.keys()]) {
      for (const name of names) {
        if (++done % (chunk * 16) === 0) yield;
        const n = nodes.get(name);
        if (!n) nodes.set(name, EMPTY_NODE);
        else if (z.#isChaser(n)) z.#chasers.add(name);
      }
    }
    return z;
  }

  /** The zone as it is now. Its node map is this index's own and changes with {@link update}. */
  zone(): Zone {
    return {
      options: this.#options,
      domain: this.domain,
      reverseApexes: this.reverseApexes,
      nodes: this.#nodes,
      namespaces: new Set(this.#namespaces.keys()),
      recordCount: this.#recordCount,
    };
  }

  /** True when built for these options (the serial aside). */
  fits(options: ZoneOptions): boolean {
    const o = this.#options;
    return nameKey(options.clusterDomain) === this.domain && options.ttl === this.ttl &&
      options.reverseCidrs.length === o.reverseCidrs.length &&
      options.reverseCidrs.every((c, i) =>
        c.family === o.reverseCidrs[i].family && c.network === o.reverseCidrs[i].network &&
        c.prefix === o.reverseCidrs[i].prefix
      );
  }

  /** Keys of services added, removed or changed (another entry object) in `snapshot`. */
  diff(snapshot: Snapshot): ServiceKey[] {
    const out: ServiceKey[] = [];
    let kept = 0;
    for (const [key, entry] of snapshot.services) {
      const before = this.#services.get(key);
      if (before === undefined) out.push(key);
      else {
        kept++;
        if (before !== entry) out.push(key);
      }
    }
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
    for (const key of keys) {
      const before = this.#services.get(key);
      const after = snapshot.services.get(key);
      if (before === after) continue;
      if (before) this.#detach(key, before, affected);
      if (after) this.#attach(key, after, affected);
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
      const after = this.#rebuild(name, order);
      if (before === after) continue;
      changes.set(name, before);
      this.#recordCount += recordsOf(after) - recordsOf(before);
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
        const cname = node.records.get(RRType.CNAME);
        if (!cname) break;
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
    const cname = node.records.get(RRType.CNAME);
    return !!cname && findApex(this, nameKey((cname[0].data as NameData).target)) !== null;
  }

  /** The node `name` should have now, built from its fixed records and contributors. */
  #rebuild(name: string, order: () => Map<ServiceKey, number>): ZoneNode | undefined {
    let node: MutableNode | null = null;
    for (const rr of this.#fixed.get(name) ?? []) addRecord(node ??= new MutableNode(), rr);
    const who = this.#contributors.get(name);
    if (who !== undefined) {
      let keys: ServiceKey[];
      if (typeof who === "string") keys = [who];
      else {
        // buildZone adds services in snapshot order; so does a rebuilt node.
        const rank = order();
        const at = (k: ServiceKey) => rank.get(k) ?? Number.MAX_SAFE_INTEGER;
        keys = [...who].sort((a, b) => at(a) - at(b));
      }
      for (const key of keys) {
        const share = this.#sharesOf(this.#services.get(key)!).get(name);
        if (!share) continue;
        if (share.records.length === 0 && share.additional.length === 0) continue;
        node ??= new MutableNode();
        for (const rr of share.records) addRecord(node, rr);
        for (const [type, rr] of share.additional) addAdditional(node, type, rr);
      }
    }
    if (node) return node;
    return this.#own.has(name) || this.#below.has(name) ? EMPTY_NODE : undefined;
  }

  #setFixed(): void {
    const { domain, ttl } = this;
    const ns = (name: string): ResourceRecord => ({
      name,
      type: RRType.NS,
      class: RRClass.IN,
      ttl,
      data: { target: `ns.dns.${domain}` },
    });
    const base = { domain, options: this.#options };
    this.#fixed.set(domain, [soaRecord(base, domain), ns(domain)]);
    this.#fixed.set(`dns-version.${domain}`, [{
      name: `dns-version.${domain}`,
      type: RRType.TXT,
      class: RRClass.IN,
      ttl,
      data: { texts: ["1.1.0"] },
    }]);
    for (const apex of this.reverseApexes) {
      this.#fixed.set(apex, [soaRecord(base, apex), ns(apex)]);
    }
  }

  /** The entry's contribution split by owner name (every name it makes exist has a share). */
  #sharesOf(entry: ServiceEntry): Map<string, Share> {
    const c = this.#cache.get(entry);
    let shares = this.#shares.get(c);
    if (shares) return shares;
    shares = new Map();
    const share = (name: string): Share => {
      let s = shares!.get(name);
      if (!s) shares!.set(name, s = { records: [], additional: [] });
      return s;
    };
    for (const name of c.names) share(name);
    for (const rr of c.records) share(rr.name).records.push(rr);
    for (const [owner, type, rr] of c.additional) share(owner).additional.push([type, rr]);
    this.#shares.set(c, shares);
    return shares;
  }

  #attach(key: ServiceKey, entry: ServiceEntry, affected: Set<string> | null): void {
    this.#services.set(key, entry);
    this.#nsInc(entry.service.namespace.toLowerCase(), affected);
    for (const name of this.#sharesOf(entry).keys()) {
      const who = this.#contributors.get(name);
      if (who === undefined) this.#contributors.set(name, key);
      else if (typeof who === "string") this.#contributors.set(name, [who, key]);
      else who.push(key);
      this.#ownInc(name, affected);
      affected?.add(name);
    }
  }

  #detach(key: ServiceKey, entry: ServiceEntry, affected: Set<string>): void {
    this.#services.delete(key);
    this.#nsDec(entry.service.namespace.toLowerCase(), affected);
    for (const name of this.#sharesOf(entry).keys()) {
      const who = this.#contributors.get(name);
      if (who === key) this.#contributors.delete(name);
      else if (Array.isArray(who)) {
        const i = who.indexOf(key);
        if (i >= 0) who.splice(i, 1);
        if (who.length === 1) this.#contributors.set(name, who[0]);
      }
      this.#ownDec(name, affected);
      affected.add(name);
    }
  }

  #nsInc(ns: string, affected: Set<string> | null): void {
    const n = this.#namespaces.get(ns) ?? 0;
    this.#namespaces.set(ns, n + 1);
    if (n > 0 || !isValidName(ns)) return;
    this.#ownInc(`${ns}.svc.${this.domain}`, affected);
    this.#ownInc(`${ns}.pod.${this.domain}`, affected);
  }

  #nsDec(ns: string, affected: Set<string>): void {
    const n = this.#namespaces.get(ns) ?? 0;
    if (n > 1) {
      this.#namespaces.set(ns, n - 1);
      return;
    }
    this.#namespaces.delete(ns);
    if (n === 0 || !isValidName(ns)) return;
    this.#ownDec(`${ns}.svc.${this.domain}`, affected);
    this.#ownDec(`${ns}.pod.${this.domain}`, affected);
  }

  #ownInc(name: string, affected: Set<string> | null): void {
    const n = this.#own.get(name) ?? 0;
    this.#own.set(name, n + 1);
    if (n > 0) return;
    affected?.add(name);
    this.#walkUp(name, 1, affected);
  }

  #ownDec(name: string, affected: Set<string>): void {
    const n = this.#own.get(name) ?? 0;
    if (n > 1) {
      this.#own.set(name, n - 1);
      return;
    }
    this.#own.delete(name);
    if (n === 0) return;
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

/**
 * One incremental step: {@link ZoneIndex.update} for `keys`, then the precomputed answers of
 * every changed name (and of CNAMEs leading through one) replaced in `table`, and with
 * `everything` the SOA serial of every negative answer rewritten. Returns the zone to answer
 * from, to be switched to together with `table.view()` before any query runs.
 */
export function applyUpdate(
  index: ZoneIndex,
  table: AnswerTableBuilder,
  snapshot: Snapshot,
  serial: number,
  keys: readonly ServiceKey[],
  everything: boolean,
): Zone {
  const changes = index.update(snapshot, serial, keys, everything);
  const zone = index.zone();
  for (const [name, before] of changes) if (before) table.removeNode(name, before);
  for (const name of index.chasersThrough(changes)) {
    const node = zone.nodes.get(name)!;
    table.removeNode(name, node);
    table.addNode(zone, name, node);
  }
  for (const name of changes.keys()) {
    const node = zone.nodes.get(name);
    if (node) table.addNode(zone, name, node);
  }
  if (everything) table.patchSerial(serial >>> 0);
  return zone;
}
