/**
 * DNS over TCP (RFC 7766): length-prefixed messages, several queries per connection answered as
 * they complete (pipelining), an idle timeout, and bounds on connections, queries in flight and
 * answers waiting to be sent.
 *
 * Every connection has a fixed memory budget, whatever its client does (a client that pipelines
 * queries and never reads its answers must not grow the daemon; src/dns/README.md):
 * - answers not yet written (queued or being written) are bounded in bytes and in count, on
 *   every path, the synchronous fast path included. At the bound the connection is not read
 *   (nor are buffered queries answered) until the writer drains it: the client's own writes then
 *   block on TCP flow control, as with knotd;
 * - a client that stops reading is cut off: a write that makes no progress for `writeTimeoutMs`,
 *   or the idle timeout firing while answers are unsent, closes the connection, counts
 *   `svcgate_dns_tcp_slow_clients_total` and logs at most once per client address per minute.
 *
 * Per connection the memory held is then at most the read buffer (<= 69,633 B), the unsent
 * answers (`maxQueuedBytes`, plus the answers that complete after the bound was reached: the one
 * being handled and at most `maxInFlight` forwarded ones) and the queries in flight; the whole
 * server holds at most `maxConnections` such budgets.
 * @module
 */

import { tcpFrame } from "../codec/encode.ts";
import type { AllowList } from "./allow_list.ts";
import type { QueryHandler } from "./handler.ts";

/** Options of {@link TcpDnsServer.open}. */
export interface TcpDnsOptions {
  readonly hostname: string;
  readonly port: number;
  readonly handler: QueryHandler;
  readonly allow: AllowList;
  readonly onError: (message: string) => void;
  /**
   * Close a connection idle (nothing read, nothing written) this long; when answers are still
   * unsent the client is counted as a slow client. Default 10 s.
   */
  readonly idleTimeoutMs?: number;
  /** Connections served at once; more are closed at once. Default 256. */
  readonly maxConnections?: number;
  /** Queries in flight (forwarded, answered later) per connection before reading pauses. Default 16. */
  readonly maxInFlight?: number;
  /**
   * Bytes of answers (framing included) a connection may hold unsent before reading pauses until
   * the client reads them. One answer is always accepted, so a 64 KiB answer still goes out.
   * Default 64 KiB.
   */
  readonly maxQueuedBytes?: number;
  /** Answers a connection may hold unsent, queries in flight included, before reading pauses. Default 128. */
  readonly maxQueuedAnswers?: number;
  /**
   * A write that makes no progress this long means the client stopped reading: the connection is
   * closed and counted (knotd's tcp-io-timeout). Default 5 s.
   */
  readonly writeTimeoutMs?: number;
}

const DEFAULTS = {
  idleTimeoutMs: 10_000,
  maxConnections: 256,
  maxInFlight: 16,
  maxQueuedBytes: 65_536,
  maxQueuedAnswers: 128,
  writeTimeoutMs: 5_000,
} as const;

type Limits = { readonly [K in keyof typeof DEFAULTS]: number };

/** Small answers are written together up to this many bytes (one syscall for a burst). */
const COALESCE_BYTES = 16_384;
/** The read buffer grows to hold one whole message (65,535 + 2) and what follows it. */
const MAX_READ_BUFFER = 65_537 + 4_096;
/** A slow client's address is logged at most once per this long. */
const SLOW_LOG_INTERVAL_MS = 60_000;
/** Addresses remembered for that rate limit (oldest forgotten first). */
const SLOW_LOG_ADDRESSES = 1_024;

/**
 * A TCP DNS listener.
 *
 * @example
 * ```ts
 * const tcp = TcpDnsServer.open({ hostname: "127.0.0.1", port: 5353, handler, allow, onError });
 * await tcp.stop();
 * ```
 */
export class TcpDnsServer {
  readonly #listener: Deno.TcpListener;
  readonly #opts: TcpDnsOptions;
  readonly #limits: Limits;
  /** Open connections and how to close each (waking whatever it waits on). */
  readonly #conns = new Map<Deno.TcpConn, () => void>();
  readonly #serving = new Set<Promise<void>>();
  readonly #loop: Promise<void>;
  readonly #slowLogged = new Map<string, { at: number; suppressed: number }>();
  #slowClients = 0;
  #peakBytes = 0;
  #peakAnswers = 0;
  #closed = false;

  private constructor(listener: Deno.TcpListener, opts: TcpDnsOptions, limits: Limits) {
    this.#listener = listener;
    this.#opts = opts;
    this.#limits = limits;
    this.#loop = this.#accept();
  }

  /** Listens; throws an error naming the address (or the bad option) when it cannot. */
  static open(opts: TcpDnsOptions): TcpDnsServer {
    const limits: { -readonly [K in keyof Limits]: number } = { ...DEFAULTS };
    for (const key of Object.keys(DEFAULTS) as (keyof Limits)[]) {
      const v = opts[key];
      if (v === undefined) continue;
      if (!Number.isSafeInteger(v) || v < 1) {
        throw new Error(
          `Cannot serve DNS on TCP ${opts.hostname}:${opts.port}: ${key} must be a positive integer, got "${v}"`,
        );
      }
      limits[key] = v;
    }
    try {
      const listener = Deno.listen({ hostname: opts.hostname, port: opts.port, transport: "tcp" });
      return new TcpDnsServer(listener, opts, limits);
    } catch (e) {
      throw new Error(
        `Cannot listen for DNS on TCP ${opts.hostname}:${opts.port}: ${(e as Error).message}`,
      );
    }
  }

  /** The bound port. */
  get port(): number {
    return (this.#listener.addr as Deno.NetAddr).port;
  }

  /** Connections cut off because their client stopped reading, since start. */
  get slowClients(): number {
    return this.#slowClients;
  }

  /** The most answers (and bytes of them) any one connection held unsent at once, since start. */
  get peakUnsent(): { readonly answers: number; readonly bytes: number } {
    return { answers: this.#peakAnswers, bytes: this.#peakBytes };
  }

  async #accept(): Promise<void> {
    const max = this.#limits.maxConnections;
    while (!this.#closed) {
      let conn: Deno.TcpConn;
      try {
        conn = await this.#listener.accept();
      } catch (e) {
        if (this.#closed) return;
        this.#opts.onError(`TCP accept failed: ${(e as Error).message}`);
        await new Promise((r) => setTimeout(r, 50));
        continue;
      }
      if (this.#conns.size >= max || this.#closed) {
        try {
          conn.close();
        } catch { /* gone */ }
        continue;
      }
      const serving: Promise<void> = this.#serve(conn).catch(() => {}).finally(() => {
        const close = this.#conns.get(conn);
        if (close) close();
        else {
          try {
            conn.close();
          } catch { /* closed already */ }
        }
        this.#conns.delete(conn);
        this.#serving.delete(serving);
      });
      this.#serving.add(serving);
    }
  }

  async #serve(conn: Deno.TcpConn): Promise<void> {
    const { idleTimeoutMs: idle, maxInFlight, maxQueuedBytes, maxQueuedAnswers, writeTimeoutMs } =
      this.#limits;
    const remote = conn.remoteAddr as Deno.NetAddr;
    const allowed = this.#opts.allow.allowsAddress(remote.hostname);
    const handler = this.#opts.handler;
    let buf = new Uint8Array(4096);
    let have = 0;
    // Answers framed and not yet written, oldest first; unsent* include the chunk being written.
    const queue: Uint8Array[] = [];
    let unsentBytes = 0;
    let unsentAnswers = 0;
    let inFlight = 0;
    let pumping = false;
    let writePending = false;
    let writeSince = 0;
    let lastActivity = performance.now();
    let closed = false;
    // The reader waits here for room (or, at the end, for the last answers to go out).
    let wake: (() => void) | null = null;
    const notify = () => {
      const w = wake;
      wake = null;
      w?.();
    };
    const changed = () => new Promise<void>((r) => (wake = r));

    // One lazily re-armed timer per connection serves the idle and write timeouts, so the hot
    // path only notes timestamps.
    let timer: ReturnType<typeof setTimeout> | undefined;
    let timerAt = Infinity;
    const close = () => {
      if (closed) return;
      closed = true;
      clearTimeout(timer);
      try {
        conn.close();
      } catch { /* closed already */ }
      notify();
    };
    const cutOff = (reason: string) => {
      if (closed) return;
      this.#slowClient(remote.hostname, reason);
      close();
    };
    const arm = (at: number) => {
      if (closed || at >= timerAt) return;
      clearTimeout(timer);
      timerAt = at;
      timer = setTimeout(watchdog, Math.max(0, at - performance.now()));
    };
    const watchdog = () => {
      timer = undefined;
      timerAt = Infinity;
      if (closed) return;
      const now = performance.now();
      if (writePending && now - writeSince >= writeTimeoutMs) {
        return cutOff(
          `a write made no progress for ${writeTimeoutMs} ms (${unsentAnswers} answers unsent)`,
        );
      }
      if (now - lastActivity >= idle) {
        if (unsentAnswers > 0) {
          return cutOff(`idle for ${idle} ms with ${unsentAnswers} answers unsent`);
        }
        return close();
      }
      arm(Math.min(lastActivity + idle, writePending ? writeSince + writeTimeoutMs : Infinity));
    };

    const pump = async () => {
      try {
        while (queue.length > 0 && !closed) {
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
            writePending = true;
            writeSince = performance.now();
            arm(writeSince + writeTimeoutMs);
            off += await conn.write(chunk.subarray(off));
            writePending = false;
            lastActivity = performance.now();
          }
          queue.splice(0, count);
          unsentBytes -= chunk.length;
          unsentAnswers -= count;
          notify();
        }
      } catch {
        // The client is gone (or the connection was closed under the write).
        close();
      } finally {
        writePending = false;
        pumping = false;
      }
    };
    const send = (bytes: Uint8Array) => {
      if (closed) return;
      const framed = tcpFrame(bytes);
      queue.push(framed);
      unsentBytes += framed.length;
      unsentAnswers++;
      if (unsentBytes > this.#peakBytes) this.#peakBytes = unsentBytes;
      if (unsentAnswers > this.#peakAnswers) this.#peakAnswers = unsentAnswers;
      if (!pumping) {
        pumping = true;
        // Started after the current synchronous burst, so its answers share one write.
        queueMicrotask(pump);
      }
    };
    const full = () =>
      inFlight >= maxInFlight || unsentBytes >= maxQueuedBytes ||
      unsentAnswers + inFlight >= maxQueuedAnswers;

    this.#conns.set(conn, close);
    arm(lastActivity + idle);
    try {
      let pos = 0;
      for (;;) {
        // Frames already buffered are answered before reading more.
        while (have - pos >= 2) {
          const len = (buf[pos] << 8) | buf[pos + 1];
          if (have - pos < len + 2) break;
          // Backpressure on every path: at the bound nothing is answered (nor read) until the
          // client has read some answers; a client that never does is cut off by the watchdog.
          while (full() && !closed) await changed();
          if (closed) return;
          lastActivity = performance.now();
          if (len < 12) {
            // Nothing to echo; a stream that cannot be parsed is closed.
            return;
          }
          const packet = buf.slice(pos + 2, pos + 2 + len);
          pos += 2 + len;
          const t0 = performance.now();
          const outcome = handler.handle(packet, allowed, false, remote.hostname);
          if (outcome instanceof Promise) {
            inFlight++;
            outcome.then((bytes) => {
              if (bytes) send(bytes);
              handler.stats.latency((performance.now() - t0) / 1000);
            }).catch(() => {}).finally(() => {
              inFlight--;
              notify();
            });
          } else if (outcome) {
            send(outcome);
            handler.stats.latency((performance.now() - t0) / 1000);
          }
        }
        // Compact once per read, not once per frame.
        if (pos > 0) {
          buf.copyWithin(0, pos, have);
          have -= pos;
          pos = 0;
        }
        if (have === buf.length) {
          const bigger = new Uint8Array(Math.min(buf.length * 2, MAX_READ_BUFFER));
          if (bigger.length === buf.length) return;
          bigger.set(buf);
          buf = bigger;
        }
        const n = await conn.read(buf.subarray(have));
        if (n === null) break;
        have += n;
        lastActivity = performance.now();
      }
      // The client closed its side: finish the answers being worked on and send them (the
      // watchdog cuts off a client that never reads them), then close.
      while ((inFlight > 0 || unsentAnswers > 0) && !closed) await changed();
    } finally {
      close();
    }
  }

  /** Counts a cut-off slow client; logs it at most once per address per minute. */
  #slowClient(address: string, reason: string): void {
    this.#slowClients++;
    this.#opts.handler.stats.counters.tcpSlowClients++;
    const now = performance.now();
    const seen = this.#slowLogged.get(address);
    if (seen && now - seen.at < SLOW_LOG_INTERVAL_MS) {
      seen.suppressed++;
      return;
    }
    this.#slowLogged.delete(address);
    if (this.#slowLogged.size >= SLOW_LOG_ADDRESSES) {
      // Maps iterate in insertion order: the first entry is the oldest report.
      this.#slowLogged.delete(this.#slowLogged.keys().next().value!);
    }
    this.#slowLogged.set(address, { at: now, suppressed: 0 });
    const more = seen?.suppressed ? ` (${seen.suppressed} more since the last report)` : "";
    this.#opts.onError(
      `Closed the TCP DNS connection of "${address}": the client stopped reading its answers, ${reason}${more}`,
    );
  }

  /** Stops accepting and closes every connection, even one whose writes are blocked. */
  async stop(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#listener.close();
    } catch { /* closed already */ }
    for (const close of this.#conns.values()) close();
    await this.#loop;
    // Each close cancels the connection's pending read and write, so this is prompt.
    await Promise.all(this.#serving);
  }
}
