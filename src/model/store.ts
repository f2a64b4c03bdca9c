/**
 * The mutable model that sources write into, and the change tracking that turns it into a new
 * immutable snapshot, rebuilding only the services that changed. Pure: no I/O, no clock.
 * @module
 */

import { PersistentMap } from "./persistent_map.ts";
import { buildServiceEntry, EMPTY_SNAPSHOT, type ServiceEntry, type Snapshot } from "./snapshot.ts";
import type { EndpointSet, IpFamily, NodeFacts, Service, ServiceKey } from "./types.ts";
import type { Cidr } from "./ip.ts";
import { EMPTY_LIST, serviceKey } from "./types.ts";

/** Which services a commit added, removed or changed. */
export interface ChangeSet {
  readonly added: readonly ServiceKey[];
  readonly removed: readonly ServiceKey[];
  readonly changed: readonly ServiceKey[];
}

/** The result of {@link ModelStore.commit}. */
export interface Commit {
  readonly snapshot: Snapshot;
  readonly changes: ChangeSet;
  /** The writes this commit took in (counted even when they changed nothing). */
  readonly pending: PendingChanges;
}

/** An endpoint change's trigger time (epoch ms) and the family of its set, pending a sync. */
export interface TriggerTime {
  readonly time: number;
  readonly family: IpFamily;
}

/**
 * Changes written since the last commit, counted as kube-proxy's change
 * trackers count them (its `sync_proxy_rules_*_changes_*` metrics).
 */
export interface PendingChanges {
  /** Services with a Service write pending. */
  readonly services: number;
  /** Endpoint set writes pending. */
  readonly endpoints: number;
  /** Trigger times of the endpoint writes pending (see EndpointSet.triggerTime). */
  readonly triggerTimes: readonly TriggerTime[];
}

/** Everything a source knows at one moment, for {@link ModelStore.replaceAll}. */
export interface ModelState {
  readonly services: Iterable<Service>;
  readonly endpointSets: Iterable<EndpointSet>;
  /** Namespaces known to exist; when omitted, those of the services and sets. */
  readonly namespaces?: Iterable<string>;
  /** Part of the source's input could not be read: see {@link Snapshot.partial}. */
  readonly partial?: boolean;
}

/**
 * Holds services and endpoint sets as sources report them and commits them into snapshots.
 *
 * @example
 * ```ts
 * const store = new ModelStore();
 * store.setService(service);
 * store.setEndpointSet(slice);
 * const { snapshot, changes } = store.commit();
 * ```
 */
export class ModelStore {
  #services = new Map<ServiceKey, Service>();
  /** Per service, its sets in id order: a copy per write, shared with the snapshot's entry. */
  #sets = new Map<ServiceKey, readonly EndpointSet[]>();
  #explicitNamespaces: Set<string> | null = null;
  #dirty = new Set<ServiceKey>();
  #namespacesDirty = false;
  #partial = false;
  #node: NodeFacts | null = null;
  #nodeDirty = false;
  #serviceCidrs: readonly Cidr[] | null = null;
  #serviceChanges = 0;
  #endpointChanges = 0;
  #pendingServices = new Set<ServiceKey>();
  #pendingEndpoints = 0;
  #triggerTimes = new Map<ServiceKey, TriggerTime[]>();
  #snapshot: Snapshot = EMPTY_SNAPSHOT;
  /** The committed snapshot's services, as the persistent map the next commit derives from. */
  #entries = PersistentMap.empty<ServiceEntry>();

  /** The last committed snapshot. */
  get snapshot(): Snapshot {
    return this.#snapshot;
  }

  /** This node's facts as last reported (committed or not), or null when unknown. */
  get node(): NodeFacts | null {
    return this.#node;
  }

  /**
   * Sets what is known of this node. Only a change of what rules depend on (zone, pod CIDRs,
   * addresses) makes a new snapshot; deletion and taints are read through {@link node}.
   */
  setNode(node: NodeFacts | null): void {
    if (nodeRulesKey(node) !== nodeRulesKey(this.#node)) this.#nodeDirty = true;
    this.#node = node;
  }

  /**
   * Sets the service ranges the cluster allocates from (Kubernetes mode: ServiceCIDR objects);
   * null: unknown, the configured ones apply.
   */
  setServiceCidrs(cidrs: readonly Cidr[] | null): void {
    const key = (l: readonly Cidr[] | null) => l?.map((c) => c.text).join(",") ?? "-";
    if (key(cidrs) !== key(this.#serviceCidrs)) this.#nodeDirty = true;
    this.#serviceCidrs = cidrs;
  }

  /** True when something changed since the last commit. */
  get hasChanges(): boolean {
    return this.#dirty.size > 0 || this.#namespacesDirty || this.#nodeDirty ||
      this.#partial !== (this.#snapshot.partial === true);
  }

  /** Marks the state as partial or complete (see {@link Snapshot.partial}). */
  setPartial(partial: boolean): void {
    this.#partial = partial;
  }

  /** Service and endpoint writes since this store was made (kube-proxy's `_changes_total`). */
  get changeTotals(): { readonly services: number; readonly endpoints: number } {
    return { services: this.#serviceChanges, endpoints: this.#endpointChanges };
  }

  /** The writes not committed yet (kube-proxy's `_changes_pending`). */
  get pending(): { readonly services: number; readonly endpoints: number } {
    return { services: this.#pendingServices.size, endpoints: this.#pendingEndpoints };
  }

  /** Takes the pending writes: a commit carries them, and counts start again from zero. */
  #takePending(): PendingChanges {
    const triggerTimes = [...this.#triggerTimes.values()].flat();
    const taken = {
      services: this.#pendingServices.size,
      endpoints: this.#pendingEndpoints,
      triggerTimes,
    };
    this.#pendingServices = new Set();
    this.#pendingEndpoints = 0;
    this.#triggerTimes = new Map();
    return taken;
  }

  #serviceWritten(key: ServiceKey): void {
    this.#serviceChanges++;
    this.#pendingServices.add(key);
  }

  /**
   * Counts an endpoint set write, with its trigger time when the set carries a new one. As
   * kube-proxy: a removal forgets the service's pending trigger times (the annotation of a
   * deleted set says when it was last updated, not when the deletion was triggered).
   */
  #endpointsWritten(
    key: ServiceKey,
    prev: EndpointSet | undefined,
    next: EndpointSet | null,
  ): void {
    this.#endpointChanges++;
    this.#pendingEndpoints++;
    if (next === null) {
      this.#triggerTimes.delete(key);
      return;
    }
    const time = next.triggerTime;
    if (time === undefined || time === prev?.triggerTime) return;
    const family = next.addressFamily ?? (next.endpoints[0]?.address.includes(":") ? 6 : 4);
    const list = this.#triggerTimes.get(key);
    if (list) list.push({ time, family });
    else this.#triggerTimes.set(key, [{ time, family }]);
  }

  /** Adds or replaces a service. */
  setService(service: Service): void {
    const key = serviceKey(service.namespace, service.name);
    this.#services.set(key, service);
    this.#dirty.add(key);
    this.#serviceWritten(key);
  }

  /** Removes a service (its endpoint sets stay, as in Kubernetes, until they are removed). */
  deleteService(namespace: string, name: string): void {
    const key = serviceKey(namespace, name);
    if (this.#services.delete(key)) {
      this.#dirty.add(key);
      this.#serviceWritten(key);
    }
  }

  /** Adds or replaces an endpoint set. */
  setEndpointSet(set: EndpointSet): void {
    const key = serviceKey(set.namespace, set.serviceName);
    const sets = this.#sets.get(key) ?? EMPTY_LIST;
    this.#endpointsWritten(key, sets.find((s) => s.id === set.id), set);
    this.#sets.set(key, withSet(sets, set));
    this.#dirty.add(key);
  }

  /** Removes an endpoint set by its identity. */
  deleteEndpointSet(namespace: string, serviceName: string, id: string): void {
    const key = serviceKey(namespace, serviceName);
    const sets = this.#sets.get(key) ?? EMPTY_LIST;
    const kept = sets.filter((s) => s.id !== id);
    if (kept.length === sets.length) return;
    if (kept.length === 0) this.#sets.delete(key);
    else this.#sets.set(key, kept);
    this.#dirty.add(key);
    this.#endpointsWritten(key, undefined, null);
  }

  /** Sets the namespaces known to exist; null derives them from services and sets. */
  setNamespaces(namespaces: Iterable<string> | null): void {
    const next = namespaces ? new Set(namespaces) : null;
    const prev = this.#explicitNamespaces;
    const same = next === null
      ? prev === null
      : prev !== null && prev.size === next.size && [...next].every((n) => prev.has(n));
    this.#explicitNamespaces = next;
    if (!same) this.#namespacesDirty = true;
  }

  /**
   * Replaces everything with a full state (a relist or a reload). Only what differs is marked
   * changed, so the next commit carries the difference and never a flush.
   */
  replaceAll(state: ModelState): void {
    const services = new Map<ServiceKey, Service>();
    for (const s of state.services) services.set(serviceKey(s.namespace, s.name), s);
    const sets = new Map<ServiceKey, readonly EndpointSet[]>();
    for (const set of state.endpointSets) {
      const key = serviceKey(set.namespace, set.serviceName);
      sets.set(key, withSet(sets.get(key) ?? EMPTY_LIST, set));
    }
    for (const key of new Set([...this.#services.keys(), ...services.keys()])) {
      if (this.#services.get(key) !== services.get(key)) {
        this.#dirty.add(key);
        this.#serviceWritten(key);
      }
    }
    for (const key of new Set([...this.#sets.keys(), ...sets.keys()])) {
      const before = this.#sets.get(key) ?? EMPTY_LIST, after = sets.get(key) ?? EMPTY_LIST;
      // Both in id order: equal lists hold the same objects at the same places.
      if (before.length !== after.length || after.some((set, i) => before[i] !== set)) {
        this.#dirty.add(key);
        // One write per set that is gone, replaced or new (removals first, as they forget the
        // service's pending trigger times).
        for (const prev of before) {
          if (!after.some((a) => a.id === prev.id)) this.#endpointsWritten(key, prev, null);
        }
        for (const set of after) {
          const prev = before.find((b) => b.id === set.id);
          if (prev !== set) this.#endpointsWritten(key, prev, set);
        }
      }
    }
    this.#services = services;
    this.#sets = sets;
    this.setNamespaces(state.namespaces ?? null);
    this.setPartial(state.partial ?? false);
  }

  /**
   * Builds the next snapshot, rebuilding only services marked dirty, and reports what changed
   * (by fingerprint: a write that changes nothing reports nothing).
   */
  commit(): Commit {
    const pending = this.#takePending();
    const prev = this.#snapshot;
    const added: ServiceKey[] = [], removed: ServiceKey[] = [], changed: ServiceKey[] = [];
    // Persistent: the new map shares every untouched service with the previous snapshot.
    const services = this.#entries.withMutations((next) => {
      for (const key of this.#dirty) {
        const service = this.#services.get(key);
        const before = prev.services.get(key);
        if (!service) {
          if (before) {
            next.delete(key);
            removed.push(key);
          }
          continue;
        }
        const entry = buildServiceEntry(service, this.#sets.get(key) ?? EMPTY_LIST);
        if (before?.fingerprint === entry.fingerprint) continue;
        next.set(key, entry);
        (before ? changed : added).push(key);
      }
    });
    // Namespaces can only have moved when they were set, or (derived) when anything was written.
    const recompute = this.#namespacesDirty ||
      (this.#explicitNamespaces === null && this.#dirty.size > 0);
    this.#dirty.clear();
    this.#namespacesDirty = false;
    const anyChange = added.length + removed.length + changed.length > 0;
    const namespaces = recompute
      ? this.#explicitNamespaces ?? derivedNamespaces(this.#services, this.#sets)
      : prev.namespaces;
    const namespacesChanged = namespaces.size !== prev.namespaces.size ||
      [...namespaces].some((n) => !prev.namespaces.has(n));
    const partialChanged = this.#partial !== (prev.partial === true);
    const nodeChanged = this.#nodeDirty;
    this.#nodeDirty = false;
    if (
      !anyChange && !namespacesChanged && !partialChanged && !nodeChanged &&
      prev !== EMPTY_SNAPSHOT
    ) {
      return { snapshot: prev, changes: { added, removed, changed }, pending };
    }
    const snapshot: Snapshot = Object.freeze({
      version: prev.version + 1,
      services,
      namespaces,
      ...(this.#partial ? { partial: true } : {}),
      ...(this.#node ? { node: this.#node } : {}),
      ...(this.#serviceCidrs ? { serviceCidrs: this.#serviceCidrs } : {}),
    });
    this.#snapshot = snapshot;
    this.#entries = services;
    const sort = (a: string[]) => a.sort();
    return {
      snapshot,
      changes: { added: sort(added), removed: sort(removed), changed: sort(changed) },
      pending,
    };
  }
}

/** What of a node's facts the rules depend on, as one comparable text. */
function nodeRulesKey(node: NodeFacts | null): string {
  if (!node) return "";
  return [node.zone ?? "", node.podCidrs.map((c) => c.text).join(","), node.addresses.join(",")]
    .join("|");
}

function derivedNamespaces(
  services: Map<ServiceKey, Service>,
  sets: Map<ServiceKey, readonly EndpointSet[]>,
): Set<string> {
  const out = new Set<string>(["default"]);
  for (const s of services.values()) out.add(s.namespace);
  for (const key of sets.keys()) out.add(key.slice(0, key.indexOf("/")));
  return out;
}

/** `sets` (in id order) with `set` added, or in place of the set with its id. */
function withSet(sets: readonly EndpointSet[], set: EndpointSet): readonly EndpointSet[] {
  let i = 0;
  while (i < sets.length && sets[i].id < set.id) i++;
  const replaces = i < sets.length && sets[i].id === set.id ? 1 : 0;
  return [...sets.slice(0, i), set, ...sets.slice(i + replaces)];
}
