/**
 * Endpoint IPs -> the services they belong to, for everything DNS answers about an endpoint
 * without a record of its own: PTR and names of ClusterIP endpoints (CoreDNS), verified pod
 * records, and clients' namespaces in standalone mode. IPv4 addresses are kept as 32-bit
 * integers (no string per endpoint: ~40 bytes an endpoint instead of ~100, measured in
 * src/dns/README.md); a key list only where an address is in several services. Pure.
 * @module
 */

import type { ServiceKey } from "../../model/types.ts";

/** An IPv4 dotted quad as a signed 32-bit integer, or null for anything else. */
export function ipv4Key(address: string): number | null {
  let value = 0, octet = 0, digits = 0, dots = 0;
  for (let i = 0; i < address.length; i++) {
    const c = address.charCodeAt(i);
    if (c === 0x2e) {
      if (digits === 0 || ++dots > 3) return null;
      value = (value << 8) | octet;
      octet = digits = 0;
    } else if (c >= 0x30 && c <= 0x39) {
      octet = octet * 10 + (c - 0x30);
      if (++digits > 3 || octet > 255) return null;
    } else return null;
  }
  if (dots !== 3 || digits === 0) return null;
  return (value << 8) | octet;
}

const NONE: readonly ServiceKey[] = Object.freeze([]);

/**
 * Which services have an endpoint at an address.
 *
 * @example
 * ```ts
 * const index = new EndpointIndex();
 * index.add("198.18.0.10", "default/web");
 * index.get("198.18.0.10"); // ["default/web"]
 * ```
 */
export class EndpointIndex {
  readonly #v4 = new Map<number, ServiceKey | ServiceKey[]>();
  readonly #other = new Map<string, ServiceKey | ServiceKey[]>();

  /** Addresses indexed. */
  get size(): number {
    return this.#v4.size + this.#other.size;
  }

  /** Records that service `key` has an endpoint at `address` (canonical text). */
  add(address: string, key: ServiceKey): void {
    const v4 = ipv4Key(address);
    if (v4 !== null) add(this.#v4, v4, key);
    else add(this.#other, address, key);
  }

  /** Forgets one {@link add}. */
  remove(address: string, key: ServiceKey): void {
    const v4 = ipv4Key(address);
    if (v4 !== null) remove(this.#v4, v4, key);
    else remove(this.#other, address, key);
  }

  /** Keys of the services with an endpoint at `address`, in the order they were added. */
  get(address: string): readonly ServiceKey[] {
    const v4 = ipv4Key(address);
    const v = v4 !== null ? this.#v4.get(v4) : this.#other.get(address);
    if (v === undefined) return NONE;
    return typeof v === "string" ? [v] : v;
  }
}

function add<K>(map: Map<K, ServiceKey | ServiceKey[]>, k: K, key: ServiceKey): void {
  const v = map.get(k);
  if (v === undefined) map.set(k, key);
  else if (typeof v === "string") {
    if (v !== key) map.set(k, [v, key]);
  } else if (!v.includes(key)) v.push(key);
}

function remove<K>(map: Map<K, ServiceKey | ServiceKey[]>, k: K, key: ServiceKey): void {
  const v = map.get(k);
  if (v === undefined) return;
  if (typeof v === "string") {
    if (v === key) map.delete(k);
    return;
  }
  const i = v.indexOf(key);
  if (i >= 0) v.splice(i, 1);
  if (v.length === 1) map.set(k, v[0]);
  else if (v.length === 0) map.delete(k);
}
