/**
 * Response-rate limiting per source address for UDP (`--dns-rrl N`, off by default; issue 20):
 * a token bucket per address refilled at N responses a second, holding at most a second's worth.
 * Past it, every `slip`-th response is a truncated empty reply (TC set, the question only, never
 * larger than the query) so a real client behind a spoofed flood retries over TCP, which needs
 * its real address; the others are dropped. BIND's and knotd's RRL slip the same way (slip 2).
 * TCP is not limited: its handshake proves the source.
 *
 * The addresses remembered are bounded; past the bound the oldest is forgotten (it starts again
 * with a full bucket, so forgetting never limits anyone harder). Pure: the caller passes the time.
 * @module
 */

import { newQueryScan, scanQuery } from "../codec/decode.ts";

/** What to do with one response. */
export type RrlVerdict = "send" | "slip" | "drop";

/** Options of {@link ResponseRateLimiter}. */
export interface RrlOptions {
  /** Responses per second per source address (> 0). */
  readonly responsesPerSecond: number;
  /** Every slip-th limited response is sent truncated; 0 drops them all. Default 2. */
  readonly slip?: number;
  /** Source addresses remembered. Default 16,384. */
  readonly remember?: number;
}

interface Bucket {
  tokens: number;
  at: number;
  limited: number;
}

/**
 * Token buckets per source address.
 *
 * @example
 * ```ts
 * const rrl = new ResponseRateLimiter({ responsesPerSecond: 100 });
 * if (rrl.check("198.18.0.10", performance.now()) === "drop") return;
 * ```
 */
export class ResponseRateLimiter {
  readonly #rate: number;
  readonly #slip: number;
  readonly #remember: number;
  readonly #buckets = new Map<number | string, Bucket>();

  constructor(opts: RrlOptions) {
    if (!(opts.responsesPerSecond > 0) || !Number.isFinite(opts.responsesPerSecond)) {
      throw new Error(
        `Cannot limit DNS response rates: responsesPerSecond must be a positive number, got "${opts.responsesPerSecond}"`,
      );
    }
    this.#rate = opts.responsesPerSecond;
    this.#slip = opts.slip ?? 2;
    this.#remember = opts.remember ?? 16_384;
  }

  /** Responses per second per source. */
  get rate(): number {
    return this.#rate;
  }

  /** The verdict for one response to `source` at `nowMs` (a monotonic clock). */
  check(source: number | string, nowMs: number): RrlVerdict {
    let b = this.#buckets.get(source);
    if (!b) {
      if (this.#buckets.size >= this.#remember) {
        // Maps iterate in insertion order: the first is the longest remembered.
        this.#buckets.delete(this.#buckets.keys().next().value!);
      }
      b = { tokens: this.#rate, at: nowMs, limited: 0 };
      this.#buckets.set(source, b);
    } else {
      b.tokens = Math.min(this.#rate, b.tokens + (nowMs - b.at) * this.#rate / 1000);
      b.at = nowMs;
    }
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return "send";
    }
    b.limited++;
    return this.#slip > 0 && b.limited % this.#slip === 0 ? "slip" : "drop";
  }
}

/**
 * The slip reply to the query `q[0..len)`: its header and question with QR and TC set and no
 * records, or null when the query is not of the common shape (then it is dropped).
 */
export function slipReply(q: Uint8Array, len: number): Uint8Array | null {
  if (!scanQuery(q, len, scan)) return null;
  const out = q.slice(0, scan.qnameEnd + 4);
  out[2] = 0x80 | (q[2] & 0x79) | 0x02; // QR, opcode and RD echoed, TC
  out[3] = q[3] & 0x10; // CD echoed, rcode NOERROR
  out.fill(0, 6, 12);
  return out;
}

const scan = newQueryScan();
