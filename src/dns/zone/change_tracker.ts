/**
 * Which services changed what DNS shows, snapshot to snapshot: a hash of each service's DNS
 * fingerprint (service_records.ts dnsFingerprint), compared only for the services the store says
 * changed. The server skips a publish that changes nothing DNS shows (endpoint readiness behind a
 * ClusterIP, labels) and sends workers only the services whose records may differ. Pure.
 * @module
 */

import {
  changedServiceKeys,
  EMPTY_SNAPSHOT,
  type ServiceEntry,
  type Snapshot,
} from "../../model/snapshot.ts";
import { hash53 } from "../../model/hash.ts";
import { dnsFingerprint } from "./service_records.ts";
import { COREDNS_RECORDS, type RecordOptions } from "./zone.ts";

/**
 * Tracks DNS fingerprints across snapshots and collects the services changed since the last
 * {@link take}.
 *
 * @example
 * ```ts
 * const changes = new DnsChangeTracker();
 * if (changes.examine(snapshot)) send(changes.take(snapshot));
 * ```
 */
export class DnsChangeTracker {
  /** The snapshot #prints describes (null before the first). */
  #examined: Snapshot | null = null;
  /** Hash of the DNS fingerprint of every service of #examined, by key (the texts: ~1 MB). */
  readonly #prints = new Map<string, number>();
  /** Services whose fingerprint changed (or that went) since the last take. */
  readonly #unsent = new Set<string>();
  #namespacesPrint = "";

  /** `records`: the zone's flavour (what the fingerprints must cover). */
  constructor(readonly records: RecordOptions = COREDNS_RECORDS) {}

  /**
   * Brings the fingerprints up to `snapshot`; true when anything DNS shows changed (always for
   * the first). Looks only at the services that differ from the last examined snapshot
   * (O(changed) on the store's snapshots).
   */
  examine(snapshot: Snapshot): boolean {
    const prev = this.#examined ?? EMPTY_SNAPSHOT;
    let changed = this.#examined === null;
    for (const key of changedServiceKeys(prev, snapshot)) {
      const entry = snapshot.services.get(key);
      const print = entry ? hash53(dnsFingerprint(entry, this.records)) : undefined;
      if (this.#prints.get(key) === print) continue;
      if (print === undefined) this.#prints.delete(key);
      else this.#prints.set(key, print);
      this.#unsent.add(key);
      changed = true;
    }
    if (snapshot.namespaces !== prev.namespaces) {
      const ns = [...snapshot.namespaces].sort().join(",");
      if (ns !== this.#namespacesPrint) changed = true;
      this.#namespacesPrint = ns;
    }
    this.#examined = snapshot;
    return changed;
  }

  /** The entries of the services changed since the last take, and the keys of those gone. */
  take(snapshot: Snapshot): { upserts: ServiceEntry[]; removed: string[] } {
    const upserts: ServiceEntry[] = [], removed: string[] = [];
    for (const key of this.#unsent) {
      const entry = snapshot.services.get(key);
      if (entry) upserts.push(entry);
      else removed.push(key);
    }
    this.#unsent.clear();
    return { upserts, removed };
  }

  /** Forgets the changes waiting (whoever needed them got the whole snapshot). */
  clear(): void {
    this.#unsent.clear();
  }
}
