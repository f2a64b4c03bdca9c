/**
 * A bounded LRU cache of upstream responses honouring their TTLs and negative TTLs (RFC 2308).
 * Pure apart from the injected clock.
 * @module
 */

import { nameKey } from "../codec/names.ts";
import {
  type Message,
  type Question,
  Rcode,
  type ResourceRecord,
  RRType,
  type SoaData,
} from "../codec/records.ts";

/** Cache limits. */
export interface CacheOptions {
  /** Entries kept at most; the least recently used go first. Default 10000. */
  readonly maxEntries?: number;
  /** Upper bound of a positive TTL, seconds. Default 3600. */
  readonly maxTtl?: number;
  /** Upper bound of a negative TTL, seconds. Default 1800. */
  readonly maxNegativeTtl?: number;
  /** Milliseconds clock, injected so tests control time. */
  readonly now: () => number;
}

interface CacheEntry {
  readonly message: Message;
  readonly stored: number;
  readonly expires: number;
}

/** The cache key of a question: lower-case name, type and class. */
export function cacheKey(q: Question): string {
  return `${nameKey(q.name)}|${q.type}|${q.class}`;
}

/**
 * How long a response may be cached, in seconds (RFC 2308): the smallest TTL of its records when
 * it has answers; min(SOA TTL, SOA minimum) for NXDOMAIN and NODATA; 0 (do not cache) for
 * truncated answers, negative answers without SOA and error rcodes.
 */
export function cacheTtl(msg: Message, maxTtl = 3600, maxNegativeTtl = 1800): number {
  if (msg.tc) return 0;
  if (msg.rcode !== Rcode.NOERROR && msg.rcode !== Rcode.NXDOMAIN) return 0;
  if (msg.rcode === Rcode.NOERROR && msg.answers.length > 0) {
    let ttl = maxTtl;
    for (const rr of [...msg.answers, ...msg.authority]) ttl = Math.min(ttl, rr.ttl);
    return ttl;
  }
  const soa = msg.authority.find((rr) => rr.type === RRType.SOA);
  if (!soa) return 0;
  return Math.min(soa.ttl, (soa.data as SoaData).minimum, maxNegativeTtl);
}

/** Bounded LRU cache of upstream responses. Pure apart from the injected clock. */
export class DnsCache {
  readonly #entries = new Map<string, CacheEntry>();
  readonly #max: number;
  readonly #maxTtl: number;
  readonly #maxNeg: number;
  readonly #now: () => number;

  constructor(options: CacheOptions) {
    this.#max = options.maxEntries ?? 10000;
    this.#maxTtl = options.maxTtl ?? 3600;
    this.#maxNeg = options.maxNegativeTtl ?? 1800;
    this.#now = options.now;
  }

  /** Number of entries held. */
  get size(): number {
    return this.#entries.size;
  }

  /** The cached response with TTLs reduced by its age, or null when absent or expired. */
  get(q: Question): Message | null {
    const key = cacheKey(q);
    const e = this.#entries.get(key);
    if (!e) return null;
    const now = this.#now();
    if (now >= e.expires) {
      this.#entries.delete(key);
      return null;
    }
    this.#entries.delete(key);
    this.#entries.set(key, e);
    const age = Math.floor((now - e.stored) / 1000);
    if (age === 0) return e.message;
    const older = (rr: ResourceRecord): ResourceRecord => ({
      ...rr,
      ttl: Math.max(0, rr.ttl - age),
    });
    return {
      ...e.message,
      answers: e.message.answers.map(older),
      authority: e.message.authority.map(older),
      additional: e.message.additional.map(older),
    };
  }

  /** Stores a response when {@link cacheTtl} allows it; returns the TTL used (0: not stored). */
  put(q: Question, msg: Message): number {
    const ttl = cacheTtl(msg, this.#maxTtl, this.#maxNeg);
    if (ttl <= 0 || this.#max <= 0) return 0;
    const key = cacheKey(q);
    const now = this.#now();
    this.#entries.delete(key);
    this.#entries.set(key, { message: msg, stored: now, expires: now + ttl * 1000 });
    while (this.#entries.size > this.#max) {
      const oldest = this.#entries.keys().next().value as string;
      this.#entries.delete(oldest);
    }
    return ttl;
  }
}
