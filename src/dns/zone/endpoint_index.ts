/**
 * Endpoint IPs -> the services they belong to, for everything DNS answers about an endpoint
 * without a record of its own: PTR and names of ClusterIP endpoints (CoreDNS), verified pod
 * records, and clients' namespaces in standalone mode. IPv4 addresses live in an open-addressing
 * table of two Int32Arrays (address, service number): at 10,000 services x 10 endpoints 2.3 MB
 * where a Map of numbers took 4.4 MB (tests/bench/dns_index_memory_bench.ts). An address in
 * several services has one slot per service. IPv6 addresses (fewer) sit in a Map. Pure.
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
/** Slot states in `#owners`: empty, removed; a service is its number + 1. */
const EMPTY = 0, REMOVED = -1;

/** Spreads an IPv4 address over the table (addresses of one subnet differ in low bits). */
function slotOf(ip: number, mask: number): number {
  return Math.imul(ip ^ (ip >>> 16), 0x45d9f3b) >>> 0 & mask;
}

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
  #ips = new Int32Array(1024);
  #owners = new Int32Array(1024);
  /** Live entries and slots not empty (live or removed). */
  #live = 0;
  #used = 0;
  /** Service numbers: key -> number, number -> key and its live entries (for reuse). */
  readonly #numbers = new Map<ServiceKey, number>();
  readonly #keys: (ServiceKey | null)[] = [];
  readonly #refs: number[] = [];
  readonly #free: number[] = [];
  readonly #other = new Map<string, ServiceKey | ServiceKey[]>();

  /** (address, service) pairs indexed. */
  get size(): number {
    let n = this.#live;
    for (const v of this.#other.values()) n += typeof v === "string" ? 1 : v.length;
    return n;
  }

  /** Records that service `key` has an endpoint at `address` (canonical text). */
  add(address: string, key: ServiceKey): void {
    const ip = ipv4Key(address);
    if (ip === null) {
      addTo(this.#other, address, key);
      return;
    }
    const n = this.#number(key);
    if (this.#find(ip, n + 1) >= 0) return;
    if ((this.#used + 1) * 2 > this.#ips.length) this.#resize();
    const mask = this.#ips.length - 1;
    let s = slotOf(ip, mask);
    while (this.#owners[s] > 0) s = (s + 1) & mask;
    if (this.#owners[s] === EMPTY) this.#used++;
    this.#ips[s] = ip;
    this.#owners[s] = n + 1;
    this.#live++;
    this.#refs[n]++;
  }

  /** Forgets one {@link add}. */
  remove(address: string, key: ServiceKey): void {
    const ip = ipv4Key(address);
    if (ip === null) {
      removeFrom(this.#other, address, key);
      return;
    }
    const n = this.#numbers.get(key);
    if (n === undefined) return;
    const s = this.#find(ip, n + 1);
    if (s < 0) return;
    this.#owners[s] = REMOVED;
    this.#live--;
    if (--this.#refs[n] === 0) {
      this.#numbers.delete(key);
      this.#keys[n] = null;
      this.#free.push(n);
    }
  }

  /** Keys of the services with an endpoint at `address`. */
  get(address: string): readonly ServiceKey[] {
    const ip = ipv4Key(address);
    if (ip === null) {
      const v = this.#other.get(address);
      return v === undefined ? NONE : typeof v === "string" ? [v] : v;
    }
    let out: ServiceKey[] | null = null;
    const mask = this.#ips.length - 1;
    for (let s = slotOf(ip, mask);; s = (s + 1) & mask) {
      const owner = this.#owners[s];
      if (owner === EMPTY) break;
      if (owner > 0 && this.#ips[s] === ip) (out ??= []).push(this.#keys[owner - 1]!);
    }
    return out ?? NONE;
  }

  /** The slot holding (ip, owner), or -1. */
  #find(ip: number, owner: number): number {
    const mask = this.#ips.length - 1;
    for (let s = slotOf(ip, mask);; s = (s + 1) & mask) {
      const o = this.#owners[s];
      if (o === EMPTY) return -1;
      if (o === owner && this.#ips[s] === ip) return s;
    }
  }

  #number(key: ServiceKey): number {
    let n = this.#numbers.get(key);
    if (n !== undefined) return n;
    n = this.#free.pop() ?? this.#keys.length;
    this.#numbers.set(key, n);
    this.#keys[n] = key;
    this.#refs[n] = 0;
    return n;
  }

  /** Grows (or just cleans out removed slots) to keep the table at most half full. */
  #resize(): void {
    let size = 1024;
    while (size < (this.#live + 1) * 2.5) size *= 2;
    const ips = this.#ips, owners = this.#owners;
    this.#ips = new Int32Array(size);
    this.#owners = new Int32Array(size);
    const mask = size - 1;
    for (let i = 0; i < owners.length; i++) {
      if (owners[i] <= 0) continue;
      let s = slotOf(ips[i], mask);
      while (this.#owners[s] !== EMPTY) s = (s + 1) & mask;
      this.#ips[s] = ips[i];
      this.#owners[s] = owners[i];
    }
    this.#used = this.#live;
  }
}

function addTo(map: Map<string, ServiceKey | ServiceKey[]>, k: string, key: ServiceKey): void {
  const v = map.get(k);
  if (v === undefined) map.set(k, key);
  else if (typeof v === "string") {
    if (v !== key) map.set(k, [v, key]);
  } else if (!v.includes(key)) v.push(key);
}

function removeFrom(
  map: Map<string, ServiceKey | ServiceKey[]>,
  k: string,
  key: ServiceKey,
): void {
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
