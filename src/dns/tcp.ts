/**
 * DNS over TCP (RFC 7766): length-prefixed messages, several queries per connection answered as
 * they complete (pipelining), an idle timeout, and bounds on connections and queries in flight.
 * @module
 */

import type { AllowList, QueryHandler } from "./handler.ts";

/** Options of {@link TcpDnsServer.open}. */
export interface TcpDnsOptions {
  readonly hostname: string;
  readonly port: number;
  readonly handler: QueryHandler;
  readonly allow: AllowList;
  readonly onError: (message: string) => void;
  /** Close a connection idle this long. Default 10 s. */
  readonly idleTimeoutMs?: number;
  /** Connections served at once; more are closed at once. Default 256. */
  readonly maxConnections?: number;
  /** Queries in flight per connection before reading pauses. Default 16. */
  readonly maxInFlight?: number;
}

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
  readonly #conns = new Set<Deno.TcpConn>();
  readonly #loop: Promise<void>;
  #closed = false;

  private constructor(listener: Deno.TcpListener, opts: TcpDnsOptions) {
    this.#listener = listener;
    this.#opts = opts;
    this.#loop = this.#accept();
  }

  /** Listens; throws an error naming the address when it cannot. */
  static open(opts: TcpDnsOptions): TcpDnsServer {
    try {
      const listener = Deno.listen({ hostname: opts.hostname, port: opts.port, transport: "tcp" });
      return new TcpDnsServer(listener, opts);
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

  async #accept(): Promise<void> {
    const max = this.#opts.maxConnections ?? 256;
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
      if (this.#conns.size >= max) {
        try {
          conn.close();
        } catch { /* gone */ }
        continue;
      }
      this.#conns.add(conn);
      this.#serve(conn).catch(() => {}).finally(() => {
        this.#conns.delete(conn);
        try {
          conn.close();
        } catch { /* closed already */ }
      });
    }
  }

  async #serve(conn: Deno.TcpConn): Promise<void> {
    const idle = this.#opts.idleTimeoutMs ?? 10_000;
    const maxInFlight = this.#opts.maxInFlight ?? 16;
    const remote = conn.remoteAddr as Deno.NetAddr;
    const allowed = this.#opts.allow.allowsAddress(remote.hostname);
    const handler = this.#opts.handler;
    let buf = new Uint8Array(4096);
    let have = 0;
    let writing: Promise<void> = Promise.resolve();
    let inFlight = 0;
    let slot: (() => void) | null = null;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const resetTimer = () => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        try {
          conn.close();
        } catch { /* closed already */ }
      }, idle);
    };
    const write = (bytes: Uint8Array) => {
      const framed = new Uint8Array(bytes.length + 2);
      framed[0] = bytes.length >> 8;
      framed[1] = bytes.length & 0xff;
      framed.set(bytes, 2);
      // Replies go out whole and one at a time, in completion order.
      writing = writing.then(async () => {
        let off = 0;
        while (off < framed.length) off += await conn.write(framed.subarray(off));
      }).catch(() => {});
    };
    resetTimer();
    try {
      for (;;) {
        // Frames already buffered are answered before reading more.
        while (have >= 2) {
          const len = (buf[0] << 8) | buf[1];
          if (have < len + 2) break;
          const packet = buf.slice(2, 2 + len);
          buf.copyWithin(0, 2 + len, have);
          have -= 2 + len;
          resetTimer();
          if (len < 12) {
            // Nothing to echo; a stream that cannot be parsed is closed.
            return;
          }
          const t0 = performance.now();
          const outcome = handler.handle(packet, allowed, false);
          if (outcome instanceof Promise) {
            inFlight++;
            outcome.then((bytes) => {
              if (bytes) write(bytes);
              handler.stats.latency((performance.now() - t0) / 1000);
            }).finally(() => {
              inFlight--;
              slot?.();
            });
            if (inFlight >= maxInFlight) await new Promise<void>((r) => (slot = r));
            slot = null;
          } else if (outcome) {
            write(outcome);
            handler.stats.latency((performance.now() - t0) / 1000);
          }
        }
        if (have === buf.length) {
          const bigger = new Uint8Array(Math.min(buf.length * 2, 65537 + 4096));
          if (bigger.length === buf.length) return;
          bigger.set(buf);
          buf = bigger;
        }
        const n = await conn.read(buf.subarray(have));
        if (n === null) break;
        have += n;
      }
      // The client closed its side: finish the answers still being worked on, then close.
      while (inFlight > 0) await new Promise<void>((r) => (slot = r));
      await writing;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Stops accepting and closes every connection. */
  async stop(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#listener.close();
    } catch { /* closed already */ }
    for (const c of this.#conns) {
      try {
        c.close();
      } catch { /* closed already */ }
    }
    await this.#loop;
  }
}
