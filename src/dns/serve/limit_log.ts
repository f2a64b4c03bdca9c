/**
 * The one place DNS limit hits are reported (issue 20): each hit is counted in
 * `svcgate_dns_limit_hits_total{limit}` and logged at most once per limit and client address per
 * interval (a minute), with the number of hits since the last line, so an attack costs a few log
 * lines, not one per packet. The addresses remembered are bounded (oldest forgotten first).
 * @module
 */

import type { DnsLimit, DnsStats } from "./stats.ts";

/** Options of {@link LimitLog}. */
export interface LimitLogOptions {
  readonly stats: DnsStats;
  /** Writes one warning line. */
  readonly warn: (message: string) => void;
  /** Milliseconds on a monotonic clock. Default performance.now. */
  readonly now?: () => number;
  /** At most one line per limit and address this often. Default 60 s. */
  readonly intervalMs?: number;
  /** (limit, address) pairs remembered for that. Default 1,024. */
  readonly remember?: number;
}

/**
 * Counts and logs limit hits.
 *
 * @example
 * ```ts
 * const limits = new LimitLog({ stats, warn: (m) => log.warn(m) });
 * limits.hit("tcp_clients_per_ip", "198.18.0.10", "65 connections open, the limit is 64");
 * ```
 */
export class LimitLog {
  readonly #stats: DnsStats;
  readonly #warn: (message: string) => void;
  readonly #now: () => number;
  readonly #interval: number;
  readonly #remember: number;
  readonly #seen = new Map<string, { at: number; suppressed: number }>();

  constructor(opts: LimitLogOptions) {
    this.#stats = opts.stats;
    this.#warn = opts.warn;
    this.#now = opts.now ?? (() => performance.now());
    this.#interval = opts.intervalMs ?? 60_000;
    this.#remember = opts.remember ?? 1024;
  }

  /** Counts a hit of `limit` by `address` and logs it (at most once per interval). */
  hit(limit: DnsLimit, address: string, detail: string): void {
    this.#stats.limit(limit);
    this.note(limit, address, `DNS limit ${limit} hit by "${address}": ${detail}`);
  }

  /**
   * Logs `message` unless a line with the same key and address went out within the interval;
   * counts nothing (for events with a counter of their own).
   */
  note(key: string, address: string, message: string): void {
    const id = `${key} ${address}`;
    const now = this.#now();
    const seen = this.#seen.get(id);
    if (seen && now - seen.at < this.#interval) {
      seen.suppressed++;
      return;
    }
    this.#seen.delete(id);
    if (this.#seen.size >= this.#remember) {
      // Maps iterate in insertion order: the first entry is the oldest line.
      this.#seen.delete(this.#seen.keys().next().value!);
    }
    this.#seen.set(id, { at: now, suppressed: 0 });
    const more = seen?.suppressed ? ` (${seen.suppressed} more since the last report)` : "";
    this.#warn(message + more);
  }
}
