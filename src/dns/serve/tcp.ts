/**
 * DNS over TCP (RFC 7766): the listener, and fair shares of its connections (issue 20). One
 * connection's budget and timeouts are tcp_connection.ts's.
 *
 * Fairness, after knotd's tcp-max-clients and unbound's tcp-connection-limit:
 * - at most `maxConnections` connections (`--dns-tcp-max-clients`, 1024), and at most
 *   `maxConnectionsPerIp` (`--dns-tcp-max-clients-per-ip`, 64) from one source address, so one
 *   client holds at most a sixteenth of the slots; a client at its own limit has its new
 *   connection closed at once (the cheapest answer to a flood: nothing is set up);
 * - when every slot is taken, the heaviest client (most connections, the newcomer counted) loses
 *   its oldest idle connection (one that owes no answer, oldest last query first: slowloris and
 *   trickling connections go first) to the newcomer, rather than the newcomer being refused; only
 *   when it has none is the newcomer closed;
 * - every refusal and eviction is counted in `svcgate_dns_limit_hits_total{limit}` and logged at
 *   most once a minute per client (limit_log.ts).
 *
 * Memory: at most `maxConnections` connection budgets (tcp_connection.ts), at most
 * `maxConnectionsPerIp` of them for one client, and at most `maxLargeBuffers` read buffers above
 * 4 KiB in all (1,000 connections each holding 60 KB of an unfinished message took 81 MB before
 * that allowance; 1,000 idle ones take 13 MB).
 *
 * Flood figures are in src/dns/README.md.
 * @module
 */

import type { AllowList } from "./allow_list.ts";
import type { QueryHandler } from "./handler.ts";
import { LimitLog } from "./limit_log.ts";
import {
  type ConnectionContext,
  type ConnectionLimits,
  type DnsConn,
  TcpConnection,
} from "./tcp_connection.ts";
import { FfiTcpListener } from "./tcp_ffi.ts";
import { TurnBudget } from "./turn_budget.ts";

/** Options of {@link TcpDnsServer.open}. */
export interface TcpDnsOptions {
  readonly hostname: string;
  readonly port: number;
  readonly handler: QueryHandler;
  readonly allow: AllowList;
  readonly onError: (message: string) => void;
  /** Where limit hits are counted and logged. Default: one over the handler's stats and onError. */
  readonly limitLog?: LimitLog;
  /** The TCP work budget shared with UDP (turn_budget.ts). Default: yields only, no UDP pump. */
  readonly budget?: TurnBudget;
  /** Connections served at once (knotd's tcp-max-clients). Default 1024. */
  readonly maxConnections?: number;
  /** Connections from one source address. Default 64. */
  readonly maxConnectionsPerIp?: number;
  /**
   * Close a connection idle (nothing read, nothing written) this long; when answers are still
   * unsent the client is counted as a slow client (knotd's tcp-idle-timeout). Default 10 s.
   */
  readonly idleTimeoutMs?: number;
  /**
   * A message that started arriving must arrive whole, and a write must make progress, within
   * this long; else the connection is closed (knotd's tcp-io-timeout). Default 5 s.
   */
  readonly ioTimeoutMs?: number;
  /**
   * A connection reads no more after this long, sends what it owes and closes, however active
   * it is (dnsdist's maxTCPConnectionDuration). 0: no cap. Default 120 s.
   */
  readonly maxLifetimeMs?: number;
  /** Queries one connection may ask; then it closes after their answers. 0: no cap (default). */
  readonly maxQueries?: number;
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
   * Connections that may hold a read buffer larger than 4 KiB at once (for a message that does
   * not fit; ~69 KB each); past it such a message closes its connection. Default 256 (~18 MB).
   */
  readonly maxLargeBuffers?: number;
  /**
   * The listening socket: Deno.listen (default), one opened through FFI with SO_REUSEPORT (a
   * second process may listen beside this one), or a descriptor inherited from systemd.
   */
  readonly socket?: TcpSocketChoice;
}

/** Where a TCP DNS listener comes from (tcp_ffi.ts says why FFI for the last two). */
export type TcpSocketChoice =
  | { readonly kind: "deno" }
  | { readonly kind: "reuseport" }
  | { readonly kind: "inherited"; readonly fd: number };

/** A listening socket as the server uses it. */
interface Listener {
  accept(): Promise<{ conn: DnsConn; address: string }>;
  readonly port: number;
  close(): void;
  /** Called once every connection is closed. */
  shutdown(): Promise<void>;
}

function denoListener(hostname: string, port: number): Listener {
  const l = Deno.listen({ hostname, port, transport: "tcp" });
  return {
    async accept() {
      const conn = await l.accept();
      return { conn, address: (conn.remoteAddr as Deno.NetAddr).hostname };
    },
    port: (l.addr as Deno.NetAddr).port,
    close: () => l.close(),
    shutdown: () => Promise.resolve(),
  };
}

function ffiListener(l: FfiTcpListener, closeFd: boolean): Listener {
  return {
    accept: () => l.accept(),
    port: l.port,
    close: () => l.close({ closeFd }),
    shutdown: () => l.shutdown(),
  };
}

const DEFAULTS = {
  maxConnections: 1024,
  maxConnectionsPerIp: 64,
  idleTimeoutMs: 10_000,
  ioTimeoutMs: 5_000,
  maxLifetimeMs: 120_000,
  maxQueries: 0,
  maxInFlight: 16,
  maxQueuedBytes: 65_536,
  maxQueuedAnswers: 128,
  maxLargeBuffers: 256,
} as const;

/** Options that may be 0 (no cap). */
const ZERO_MEANS_NONE = new Set<string>(["maxLifetimeMs", "maxQueries"]);

type Limits = { readonly [K in keyof typeof DEFAULTS]: number };

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
  readonly #listener: Listener;
  readonly #opts: TcpDnsOptions;
  readonly #limits: Limits;
  readonly #limitLog: LimitLog;
  readonly #context: ConnectionContext;
  /** Open connections by source address. */
  readonly #byAddress = new Map<string, Set<TcpConnection>>();
  #open = 0;
  #largeBuffers = 0;
  readonly #serving = new Set<Promise<void>>();
  readonly #loop: Promise<void>;
  #slowClients = 0;
  #peakBytes = 0;
  #peakAnswers = 0;
  #closed = false;
  #accepting = true;

  private constructor(listener: Listener, opts: TcpDnsOptions, limits: Limits) {
    this.#listener = listener;
    this.#opts = opts;
    this.#limits = limits;
    this.#limitLog = opts.limitLog ??
      new LimitLog({ stats: opts.handler.stats, warn: opts.onError });
    const connectionLimits: ConnectionLimits = limits;
    this.#context = {
      handler: opts.handler,
      limits: connectionLimits,
      limitLog: this.#limitLog,
      budget: opts.budget ?? new TurnBudget(),
      slowClient: (address, reason) => this.#slowClient(address, reason),
      unsent: (answers, bytes) => {
        if (bytes > this.#peakBytes) this.#peakBytes = bytes;
        if (answers > this.#peakAnswers) this.#peakAnswers = answers;
      },
      largeBuffers: {
        take: () => {
          if (this.#largeBuffers >= limits.maxLargeBuffers) return false;
          this.#largeBuffers++;
          return true;
        },
        give: () => void this.#largeBuffers--,
      },
    };
    this.#loop = this.#accept();
  }

  /** Listens; throws an error naming the address (or the bad option) when it cannot. */
  static open(opts: TcpDnsOptions): TcpDnsServer {
    const limits: { -readonly [K in keyof Limits]: number } = { ...DEFAULTS };
    for (const key of Object.keys(DEFAULTS) as (keyof Limits)[]) {
      const v = opts[key];
      if (v === undefined) continue;
      const least = ZERO_MEANS_NONE.has(key) ? 0 : 1;
      if (!Number.isSafeInteger(v) || v < least) {
        throw new Error(
          `Cannot serve DNS on TCP ${opts.hostname}:${opts.port}: ${key} must be an integer >= ${least}, got "${v}"`,
        );
      }
      limits[key] = v;
    }
    try {
      const socket = opts.socket ?? { kind: "deno" };
      const listener = socket.kind === "deno"
        ? denoListener(opts.hostname, opts.port)
        : socket.kind === "reuseport"
        ? ffiListener(FfiTcpListener.open(opts.hostname, opts.port, { reusePort: true }), true)
        : ffiListener(FfiTcpListener.adopt(socket.fd), false);
      return new TcpDnsServer(listener, opts, limits);
    } catch (e) {
      throw new Error(
        `Cannot listen for DNS on TCP ${opts.hostname}:${opts.port}: ${(e as Error).message}`,
      );
    }
  }

  /** The bound port. */
  get port(): number {
    return this.#listener.port;
  }

  /** Connections cut off because their client stopped reading, since start. */
  get slowClients(): number {
    return this.#slowClients;
  }

  /** Connections open now. */
  get connections(): number {
    return this.#open;
  }

  /** The most answers (and bytes of them) any one connection held unsent at once, since start. */
  get peakUnsent(): { readonly answers: number; readonly bytes: number } {
    return { answers: this.#peakAnswers, bytes: this.#peakBytes };
  }

  async #accept(): Promise<void> {
    while (!this.#closed) {
      let conn: DnsConn, address: string;
      try {
        ({ conn, address } = await this.#listener.accept());
      } catch (e) {
        if (this.#closed || !this.#accepting) return;
        this.#opts.onError(`TCP accept failed: ${(e as Error).message}`);
        await new Promise((r) => setTimeout(r, 50));
        continue;
      }
      if (this.#closed || !this.#accepting || !this.#admit(address)) {
        try {
          conn.close();
        } catch { /* gone */ }
        continue;
      }
      this.#serve(conn, address);
    }
  }

  /** Makes room for a connection from `address` (closing an idle one), or says no. */
  #admit(address: string): boolean {
    const { maxConnections: max, maxConnectionsPerIp: perIp } = this.#limits;
    const ownCount = this.#byAddress.get(address)?.size ?? 0;
    if (ownCount >= perIp) {
      // Closed at once: the cheapest answer to a flood from one address (nothing is set up).
      this.#limitLog.hit(
        "tcp_clients_per_ip",
        address,
        `${ownCount} connections open (--dns-tcp-max-clients-per-ip ${perIp}): the new one was closed`,
      );
      return false;
    }
    if (this.#open < max) return true;
    // Full: the heaviest client, the newcomer counted, gives up its oldest idle connection.
    let heaviest = address, most = ownCount + 1;
    for (const [a, set] of this.#byAddress) {
      if (set.size > most) [heaviest, most] = [a, set.size];
    }
    const victim = oldestIdle(this.#byAddress.get(heaviest) ?? new Set());
    if (victim) {
      this.#evict(victim, "tcp_clients", max);
      return true;
    }
    this.#limitLog.hit(
      "tcp_clients",
      address,
      `${this.#open} connections open (--dns-tcp-max-clients ${max}) and "${heaviest}", with ${most}, has none idle: the new one was closed`,
    );
    return false;
  }

  #evict(victim: TcpConnection, limit: "tcp_clients", max: number): void {
    this.#limitLog.hit(
      limit,
      victim.address,
      `--dns-tcp-max-clients ${max} reached: its connection idle for ${
        Math.round(performance.now() - victim.lastQueryAt)
      } ms was closed to make room`,
    );
    this.#opts.handler.stats.limit("tcp_evicted");
    this.#forget(victim);
    victim.close();
  }

  #forget(c: TcpConnection): void {
    const set = this.#byAddress.get(c.address);
    if (!set?.delete(c)) return;
    this.#open--;
    if (set.size === 0) this.#byAddress.delete(c.address);
  }

  #serve(conn: DnsConn, address: string): void {
    const c = new TcpConnection(
      conn,
      address,
      this.#opts.allow.allowsAddress(address),
      this.#context,
    );
    let set = this.#byAddress.get(address);
    if (!set) this.#byAddress.set(address, set = new Set());
    set.add(c);
    this.#open++;
    const serving: Promise<void> = c.serve().finally(() => {
      this.#forget(c);
      this.#serving.delete(serving);
    });
    this.#serving.add(serving);
  }

  /** Counts a cut-off slow client; logs it at most once per address per minute. */
  #slowClient(address: string, reason: string): void {
    this.#slowClients++;
    this.#opts.handler.stats.counters.tcpSlowClients++;
    this.#limitLog.note(
      "slow_reader",
      address,
      `Closed the TCP DNS connection of "${address}": the client stopped reading its answers, ${reason}`,
    );
  }

  /**
   * Stops accepting: new connections go to another process (SO_REUSEPORT) or wait in an
   * inherited socket's queue for the next one. Open connections are served until {@link stop}.
   */
  stopAccepting(): void {
    if (!this.#accepting) return;
    this.#accepting = false;
    try {
      this.#listener.close();
    } catch { /* closed already */ }
  }

  /** Stops accepting and closes every connection, even one whose writes are blocked. */
  async stop(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.stopAccepting();
    for (const set of this.#byAddress.values()) for (const c of set) c.close();
    await this.#loop;
    // Each close cancels the connection's pending read and write, so this is prompt.
    await Promise.all(this.#serving);
    await this.#listener.shutdown();
  }
}

/** The connection of `set` that owes nothing and asked last the longest ago, if any. */
function oldestIdle(set: ReadonlySet<TcpConnection>): TcpConnection | null {
  let best: TcpConnection | null = null;
  for (const c of set) {
    if (c.owes || c.closed) continue;
    if (!best || c.lastQueryAt < best.lastQueryAt) best = c;
  }
  return best;
}
