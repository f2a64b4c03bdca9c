/**
 * One DNS-over-TCP connection (RFC 7766): length-prefixed queries answered as they complete
 * (pipelining), within a fixed budget whatever the client does (src/dns/README.md, issue 20):
 * - answers not yet written are bounded in bytes and count on every path, the synchronous fast
 *   path included; at the bound nothing more is read or answered until the client reads, so its
 *   own writes block on TCP flow control (as with knotd);
 * - a client that stops reading (a write makes no progress for the I/O timeout, or the idle
 *   timeout fires with answers unsent) is cut off and counted as a slow client;
 * - a message that started arriving must arrive whole within the I/O timeout (slowloris);
 * - a connection lives at most its lifetime and answers at most its query count (when set):
 *   then it reads no more, sends what it owes and closes, so trickled queries cannot hold a slot
 *   forever;
 * - TCP work runs in short stretches that let queued UDP queries be answered (turn_budget.ts).
 *
 * Memory held: the read buffer (4 KiB; up to 69,633 B while a larger message arrives, from a
 * shared allowance of such buffers), the unsent answers (`maxQueuedBytes`, plus the
 * answers that complete after the bound was reached: the one being handled and at most
 * `maxInFlight` forwarded ones) and the queries in flight.
 * @module
 */

import { tcpFrame } from "../codec/encode.ts";
import type { QueryHandler } from "./handler.ts";
import type { LimitLog } from "./limit_log.ts";
import type { TurnBudget } from "./turn_budget.ts";

/** The per-connection limits (TcpDnsOptions documents each). */
export interface ConnectionLimits {
  readonly idleTimeoutMs: number;
  readonly ioTimeoutMs: number;
  /** 0: no lifetime cap. */
  readonly maxLifetimeMs: number;
  /** 0: no query cap. */
  readonly maxQueries: number;
  readonly maxInFlight: number;
  readonly maxQueuedBytes: number;
  readonly maxQueuedAnswers: number;
}

/** What a connection shares with its server. */
export interface ConnectionContext {
  readonly handler: QueryHandler;
  readonly limits: ConnectionLimits;
  readonly limitLog: LimitLog;
  readonly budget: TurnBudget;
  /** A client stopped reading its answers: count and log it. */
  readonly slowClient: (address: string, reason: string) => void;
  /** Notes a connection's unsent answers, for the server's peak. */
  readonly unsent: (answers: number, bytes: number) => void;
  /**
   * Read buffers larger than the first 4 KiB are shared out: `take` one (false when none is
   * left), `give` it back.
   */
  readonly largeBuffers: { take(): boolean; give(): void };
}

/** Small answers are written together up to this many bytes (one syscall for a burst). */
const COALESCE_BYTES = 16_384;
/** The read buffer grows to hold one whole message (65,535 + 2) and what follows it. */
export const MAX_READ_BUFFER = 65_537 + 4_096;
/** The read buffer every connection has; nearly every query fits in it many times. */
const SMALL_READ_BUFFER = 4096;

/** What a connection needs of its socket: a Deno.TcpConn, or tcp_ffi.ts's FfiTcpConn. */
export interface DnsConn {
  read(p: Uint8Array): Promise<number | null>;
  write(p: Uint8Array): Promise<number>;
  close(): void;
}

/**
 * A served connection: the state the server's eviction reads, and the serving loop.
 *
 * @example
 * ```ts
 * const c = new TcpConnection(conn, "198.18.0.10", false, context);
 * await c.serve(); // until the client leaves or a limit closes it
 * ```
 */
export class TcpConnection {
  readonly address: string;
  readonly openedAt: number;
  /** When its last complete query was read (when it opened, before any). */
  lastQueryAt: number;
  readonly #conn: DnsConn;
  readonly #allowed: boolean;
  readonly #ctx: ConnectionContext;
  // Answers framed and not yet written, oldest first; unsent* include the chunk being written.
  readonly #queue: Uint8Array[] = [];
  #unsentBytes = 0;
  #unsentAnswers = 0;
  #inFlight = 0;
  #queries = 0;
  #pumping = false;
  #writePending = false;
  #writeSince = 0;
  #lastActivity: number;
  /** When the incomplete message at the end of the read buffer started arriving; 0: none. */
  #partialSince = 0;
  /** Past its lifetime or query count: reads no more, closes once it owes nothing. */
  #retiring = false;
  #closed = false;
  // The reader waits here for room (or, at the end, for the last answers to go out).
  #wake: (() => void) | null = null;
  // One lazily re-armed timer serves every timeout, so the hot path only notes timestamps.
  #timer: ReturnType<typeof setTimeout> | undefined;
  #timerAt = Infinity;

  constructor(conn: DnsConn, address: string, allowed: boolean, ctx: ConnectionContext) {
    this.#conn = conn;
    this.address = address;
    this.#allowed = allowed;
    this.#ctx = ctx;
    this.openedAt = this.lastQueryAt = this.#lastActivity = performance.now();
  }

  /** True while answers are unsent or queries in flight: closing it would lose answers. */
  get owes(): boolean {
    return this.#unsentAnswers > 0 || this.#inFlight > 0;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Closes at once, waking whatever the connection waits on. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#timer);
    try {
      this.#conn.close();
    } catch { /* closed already */ }
    this.#notify();
  }

  #notify(): void {
    const w = this.#wake;
    this.#wake = null;
    w?.();
    if (this.#retiring && !this.owes) this.close();
  }

  #changed(): Promise<void> {
    return new Promise<void>((r) => (this.#wake = r));
  }

  /** Stops reading; closes now when nothing is owed, else once the answers went out. */
  #retire(limit: "tcp_lifetime" | "tcp_queries", detail: string): void {
    if (this.#retiring || this.#closed) return;
    this.#retiring = true;
    this.#ctx.limitLog.hit(limit, this.address, detail);
    if (!this.owes) this.close();
    else this.#notify();
  }

  #arm(at: number): void {
    if (this.#closed || at >= this.#timerAt) return;
    clearTimeout(this.#timer);
    this.#timerAt = at;
    this.#timer = setTimeout(this.#watchdog, Math.max(0, at - performance.now()));
  }

  #cutOff(reason: string): void {
    if (this.#closed) return;
    this.#ctx.slowClient(this.address, reason);
    this.close();
  }

  readonly #watchdog = (): void => {
    this.#timer = undefined;
    this.#timerAt = Infinity;
    if (this.#closed) return;
    const now = performance.now();
    const { idleTimeoutMs: idle, ioTimeoutMs: io, maxLifetimeMs: lifetime } = this.#ctx.limits;
    if (this.#writePending && now - this.#writeSince >= io) {
      return this.#cutOff(
        `a write made no progress for ${io} ms (${this.#unsentAnswers} answers unsent)`,
      );
    }
    if (this.#partialSince > 0 && now - this.#partialSince >= io) {
      this.#ctx.limitLog.hit(
        "tcp_io_timeout",
        this.address,
        `a message started ${
          Math.round(now - this.#partialSince)
        } ms ago and is still incomplete (--dns-tcp-io-timeout ${io}ms)`,
      );
      return this.close();
    }
    if (lifetime > 0 && now - this.openedAt >= lifetime) {
      this.#retire(
        "tcp_lifetime",
        `connection open for ${lifetime} ms (--dns-tcp-max-lifetime), closed after its answers`,
      );
      if (this.#closed) return;
    }
    if (now - this.#lastActivity >= idle) {
      if (this.#unsentAnswers > 0) {
        return this.#cutOff(`idle for ${idle} ms with ${this.#unsentAnswers} answers unsent`);
      }
      return this.close();
    }
    this.#arm(
      Math.min(
        this.#lastActivity + idle,
        this.#writePending ? this.#writeSince + io : Infinity,
        this.#partialSince > 0 ? this.#partialSince + io : Infinity,
        lifetime > 0 && !this.#retiring ? this.openedAt + lifetime : Infinity,
      ),
    );
  };

  readonly #pump = async (): Promise<void> => {
    const queue = this.#queue;
    const io = this.#ctx.limits.ioTimeoutMs;
    try {
      while (queue.length > 0 && !this.#closed) {
        // A burst of small answers goes out in one write, as a pipelining client reads them.
        let count = 1;
        let chunk = queue[0];
        if (queue.length > 1 && chunk.length < COALESCE_BYTES) {
          let size = chunk.length;
          while (count < queue.length && size + queue[count].length <= COALESCE_BYTES) {
            size += queue[count++].length;
          }
          if (count > 1) {
            chunk = new Uint8Array(size);
            for (let i = 0, off = 0; i < count; off += queue[i++].length) {
              chunk.set(queue[i], off);
            }
          }
        }
        for (let off = 0; off < chunk.length;) {
          this.#writePending = true;
          this.#writeSince = performance.now();
          this.#arm(this.#writeSince + io);
          off += await this.#conn.write(chunk.subarray(off));
          this.#writePending = false;
          this.#lastActivity = performance.now();
        }
        queue.splice(0, count);
        this.#unsentBytes -= chunk.length;
        this.#unsentAnswers -= count;
        this.#notify();
      }
    } catch {
      // The client is gone (or the connection was closed under the write).
      this.close();
    } finally {
      this.#writePending = false;
      this.#pumping = false;
    }
  };

  #send(bytes: Uint8Array): void {
    if (this.#closed) return;
    const framed = tcpFrame(bytes);
    this.#queue.push(framed);
    this.#unsentBytes += framed.length;
    this.#unsentAnswers++;
    this.#ctx.unsent(this.#unsentAnswers, this.#unsentBytes);
    if (!this.#pumping) {
      this.#pumping = true;
      // Started after the current synchronous burst, so its answers share one write.
      queueMicrotask(this.#pump);
    }
  }

  #full(): boolean {
    const l = this.#ctx.limits;
    return this.#inFlight >= l.maxInFlight || this.#unsentBytes >= l.maxQueuedBytes ||
      this.#unsentAnswers + this.#inFlight >= l.maxQueuedAnswers;
  }

  /** Answers one complete message (`packet` is a view valid only until this returns). */
  #answer(packet: Uint8Array): void {
    const { handler } = this.#ctx;
    const t0 = performance.now();
    const outcome = handler.handle(packet, this.#allowed, false, this.address);
    const hit = handler.takeLimitHit();
    if (hit) this.#ctx.limitLog.hit(hit.limit, this.address, hit.detail);
    if (outcome instanceof Promise) {
      this.#inFlight++;
      outcome.then((bytes) => {
        if (bytes) this.#send(bytes);
        handler.stats.latency((performance.now() - t0) / 1000);
      }).catch(() => {}).finally(() => {
        this.#inFlight--;
        this.#notify();
      });
    } else if (outcome) {
      this.#send(outcome);
      handler.stats.latency((performance.now() - t0) / 1000);
    }
  }

  /** Serves until the client leaves or a limit closes the connection; never rejects. */
  async serve(): Promise<void> {
    const { limits, budget } = this.#ctx;
    let buf = new Uint8Array(SMALL_READ_BUFFER);
    let have = 0;
    let large = false;
    let lastRead = this.openedAt;
    this.#arm(
      Math.min(
        this.#lastActivity + limits.idleTimeoutMs,
        limits.maxLifetimeMs > 0 ? this.openedAt + limits.maxLifetimeMs : Infinity,
      ),
    );
    try {
      let pos = 0;
      for (;;) {
        // Frames already buffered are answered before reading more.
        while (have - pos >= 2 && !this.#retiring) {
          const len = (buf[pos] << 8) | buf[pos + 1];
          if (have - pos < len + 2) break;
          // Whole: a wait from here on is the server's (or a client not reading), not slowloris.
          this.#partialSince = 0;
          // Backpressure on every path: at the bound nothing is answered (nor read) until the
          // client has read some answers; a client that never does is cut off by the watchdog.
          while (this.#full() && !this.#closed) await this.#changed();
          if (this.#closed) return;
          // UDP first, and every connection in turn: rest when TCP had its share (turn_budget.ts).
          while (budget.due()) {
            await budget.rest();
            if (this.#closed) return;
          }
          this.#lastActivity = this.lastQueryAt = performance.now();
          // Nothing to echo; a stream that cannot be parsed is closed.
          if (len < 12) return;
          // The handler reads the packet synchronously and keeps nothing of it: no copy.
          this.#answer(buf.subarray(pos + 2, pos + 2 + len));
          budget.done();
          pos += 2 + len;
          if (limits.maxQueries > 0 && ++this.#queries >= limits.maxQueries) {
            this.#retire(
              "tcp_queries",
              `${limits.maxQueries} queries on one connection (--dns-tcp-max-queries), closed after its answers`,
            );
          }
        }
        if (this.#retiring || this.#closed) break;
        // Compact once per read, not once per frame.
        if (pos > 0) {
          buf.copyWithin(0, pos, have);
          have -= pos;
          pos = 0;
        }
        // An incomplete message must be whole within the I/O timeout of its first bytes' read.
        if (have > 0) {
          if (this.#partialSince === 0) this.#partialSince = lastRead;
          this.#arm(this.#partialSince + limits.ioTimeoutMs);
        } else this.#partialSince = 0;
        if (large && have <= SMALL_READ_BUFFER / 2) {
          // The big message went through: back to the small buffer, and the large one to others.
          buf = buf.slice(0, SMALL_READ_BUFFER);
          large = false;
          this.#ctx.largeBuffers.give();
        }
        if (have === buf.length) {
          if (!large) {
            if (!this.#ctx.largeBuffers.take()) {
              this.#ctx.limitLog.hit(
                "tcp_buffers",
                this.address,
                `a message larger than ${SMALL_READ_BUFFER} bytes while every large read buffer is taken: connection closed`,
              );
              return;
            }
            large = true;
          }
          const bigger = new Uint8Array(Math.min(buf.length * 2, MAX_READ_BUFFER));
          if (bigger.length === buf.length) return;
          bigger.set(buf);
          buf = bigger;
        }
        const n = await this.#conn.read(buf.subarray(have));
        if (n === null) break;
        have += n;
        this.#lastActivity = lastRead = performance.now();
      }
      // The client closed its side, or the connection retires: finish the answers being worked
      // on and send them (the watchdog cuts off a client that never reads them), then close.
      while (this.owes && !this.#closed) await this.#changed();
    } catch {
      // The connection was closed under the read, or the client reset it.
    } finally {
      if (large) this.#ctx.largeBuffers.give();
      this.close();
    }
  }
}
