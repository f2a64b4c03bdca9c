/**
 * A bounded LRU cache of upstream responses honouring their TTLs and negative TTLs (RFC 2308),
 * with serve-stale (RFC 8767: an expired answer kept for `staleMs`, given out with TTL 30 when no
 * upstream answers, and for 30 s after such a failure without asking again) and prefetch (a name
 * asked often is refreshed when a tenth of its TTL is left, as CoreDNS's `prefetch`).
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
  /** How long past its expiry an answer may still be served stale, ms (0: never). Default 0. */
  readonly staleMs?: number;
  /** Hits during an entry's life that make it worth a prefetch (0: never). Default 0. */
  readonly prefetchHits?: number;
  /** Milliseconds clock, injected so tests control time. */
  readonly now: () => number;
}

interface CacheEntry {
  readonly message: Message;
  readonly stored: number;
  readonly expires: number;
  /** NXDOMAIN or NODATA (CoreDNS's "denial" cache), else "success". */
  readonly negative: boolean;
  /** Fresh hits since stored. */
  hits: number;
  /** A prefetch of this entry was started. */
  prefetched: boolean;
  /** Until then a failed refresh is not retried: the stale answer goes out at once. */
  failedUntil: number;
}

/** The TTL of a stale answer, seconds (RFC 8767 section 4 recommends 30). */
export const STALE_TTL = 30;
/** How long after a failed refresh the stale answer is served without asking again (RFC 8767). */
export const FAILURE_RECHECK_MS = 30_000;
/** A prefetch starts when less than this share of the entry's TTL is left (CoreDNS: 10%). */
const PREFETCH_LEFT = 0.1;

/** The entries held, as CoreDNS's coredns_cache_entries{type} counts them. */
export interface CacheCounts {
  readonly success: number;
  readonly denial: number;
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
  readonly #staleMs: number;
  readonly #prefetchHits: number;
  readonly #now: () => number;
  #negative = 0;

  constructor(options: CacheOptions) {
    this.#max = options.maxEntries ?? 10000;
    this.#maxTtl = options.maxTtl ?? 3600;
    this.#maxNeg = options.maxNegativeTtl ?? 1800;
    this.#staleMs = options.staleMs ?? 0;
    this.#prefetchHits = options.prefetchHits ?? 0;
    this.#now = options.now;
  }

  /** Entries held (stale ones included), positive and negative. */
  counts(): CacheCounts {
    return { success: this.#entries.size - this.#negative, denial: this.#negative };
  }

  #delete(key: string, e: CacheEntry): void {
    this.#entries.delete(key);
    if (e.negative) this.#negative--;
  }

  /** Number of entries held. */
  get size(): number {
    return this.#entries.size;
  }

  /**
   * The cached response with TTLs reduced by its age, or null when absent or expired (an expired
   * one stays for {@link stale} until its stale window ends).
   */
  get(q: Question): Message | null {
    const key = cacheKey(q);
    const e = this.#entries.get(key);
    if (!e) return null;
    const now = this.#now();
    if (now >= e.expires) {
      if (now >= e.expires + this.#staleMs) this.#delete(key, e);
      return null;
    }
    this.#entries.delete(key);
    this.#entries.set(key, e);
    e.hits++;
    const age = Math.floor((now - e.stored) / 1000);
    if (age === 0) return e.message;
    return withTtl(e.message, (ttl) => Math.max(0, ttl - age));
  }

  /**
   * True once for an entry asked often (`prefetchHits` fresh hits) whose TTL is nearly over (less
   * than a tenth left): the caller refreshes it in the background, so the next ask still hits.
   */
  wantsPrefetch(q: Question): boolean {
    if (this.#prefetchHits <= 0) return false;
    const e = this.#entries.get(cacheKey(q));
    if (!e || e.prefetched || e.hits < this.#prefetchHits) return false;
    const now = this.#now();
    const life = e.expires - e.stored;
    if (now >= e.expires || e.expires - now > life * PREFETCH_LEFT) return false;
    e.prefetched = true;
    return true;
  }

  /**
   * An expired response still inside its stale window, every TTL set to {@link STALE_TTL}
   * (RFC 8767), or null.
   */
  stale(q: Question): Message | null {
    const key = cacheKey(q);
    const e = this.#entries.get(key);
    if (!e) return null;
    const now = this.#now();
    if (now < e.expires) return null;
    if (now >= e.expires + this.#staleMs) {
      this.#delete(key, e);
      return null;
    }
    return withTtl(e.message, () => STALE_TTL);
  }

  /** Remembers that refreshing the entry failed: {@link recentlyFailed} for the next 30 s. */
  refreshFailed(q: Question): void {
    const e = this.#entries.get(cacheKey(q));
    if (e) e.failedUntil = this.#now() + FAILURE_RECHECK_MS;
  }

  /** True while a failed refresh of an expired entry is not to be retried (RFC 8767). */
  recentlyFailed(q: Question): boolean {
    const e = this.#entries.get(cacheKey(q));
    return e !== undefined && this.#now() < e.failedUntil;
  }

  /** Stores a response when {@link cacheTtl} allows it; returns the TTL used (0: not stored). */
  put(q: Question, msg: Message): number {
    const ttl = cacheTtl(msg, this.#maxTtl, this.#maxNeg);
    if (ttl <= 0 || this.#max <= 0) return 0;
    const key = cacheKey(q);
    const now = this.#now();
    const old = this.#entries.get(key);
    if (old) this.#delete(key, old);
    const negative = msg.rcode === Rcode.NXDOMAIN || msg.answers.length === 0;
    this.#entries.set(key, {
      message: msg,
      stored: now,
      expires: now + ttl * 1000,
      negative,
      hits: 0,
      prefetched: false,
      failedUntil: 0,
    });
    if (negative) this.#negative++;
    while (this.#entries.size > this.#max) {
      const [oldest, e] = this.#entries.entries().next().value as [string, CacheEntry];
      this.#delete(oldest, e);
    }
    return ttl;
  }
}

/** The message with every record's TTL (OPT aside) mapped. */
function withTtl(message: Message, ttl: (old: number) => number): Message {
  const map = (rr: ResourceRecord): ResourceRecord =>
    rr.type === RRType.OPT ? rr : { ...rr, ttl: ttl(rr.ttl) };
  return {
    ...message,
    answers: message.answers.map(map),
    authority: message.authority.map(map),
    additional: message.additional.map(map),
  };
}
