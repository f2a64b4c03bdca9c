/**
 * The DNS engine: zone state, handler, forwarder and listeners of one thread. DnsServer runs one
 * engine per worker (or one in-process); everything here is plain data in and out so it crosses
 * the worker boundary by structured clone.
 * @module
 */

import type { Cidr } from "../model/ip.ts";
import type { Snapshot } from "../model/snapshot.ts";
import { AnswerTableBuilder } from "./fast.ts";
import { AllowList, QueryHandler } from "./handler.ts";
import { DnsStats, type StatsDelta } from "./stats.ts";
import { TcpDnsServer } from "./tcp.ts";
import { ffiAvailability, FfiUdpServer } from "./udp_ffi.ts";
import { NodeUdpServer } from "./udp_node.ts";
import { DnsCache, Forwarder, type Upstream } from "./upstream.ts";
import { buildZoneSteps, ContributionCache } from "./zone.ts";
import { nameKey } from "./wire.ts";

/** Longest stretch a zone build runs before answering queued UDP queries. */
const SLICE_MS = 1;
/** Longest stretch a zone build runs before giving the event loop a turn. */
const TURN_MS = 15;

/** Which UDP transport to use. */
export type UdpTransportChoice = "auto" | "ffi" | "node";

/** Everything an engine needs; structured-clone friendly. */
export interface EngineOptions {
  readonly hostname: string;
  readonly port: number;
  readonly clusterDomain: string;
  readonly ttl: number;
  readonly reverseCidrs: readonly Cidr[];
  readonly upstreams: readonly Upstream[];
  readonly allowRecursion: readonly Cidr[];
  readonly udp: UdpTransportChoice;
  /** SO_REUSEPORT on the UDP socket (several engines share the port). */
  readonly reusePort: boolean;
  /** Serve TCP too (one engine does). */
  readonly tcp: boolean;
  readonly tcpIdleTimeoutMs: number;
  readonly upstreamTimeoutMs: number;
  readonly cacheSize: number;
}

/** A log line from an engine. */
export type EngineLog = (
  level: "debug" | "info" | "warn" | "error",
  msg: string,
  fields?: Record<string, unknown>,
) => void;

/** What a publish did. */
export interface PublishReport {
  readonly version: number;
  readonly records: number;
  readonly answers: number;
  readonly buildSeconds: number;
}

/**
 * One thread's DNS service.
 *
 * @example
 * ```ts
 * const engine = await DnsEngine.start(options, (level, msg) => console.log(level, msg));
 * engine.publish(snapshot, 1);
 * await engine.stop();
 * ```
 */
export class DnsEngine {
  readonly #handler: QueryHandler;
  readonly #forwarder: Forwarder | null;
  readonly #udp: FfiUdpServer | NodeUdpServer;
  readonly #udpLoop: Promise<void>;
  readonly #tcp: TcpDnsServer | null;
  readonly #options: EngineOptions;
  readonly udpMode: "ffi" | "node";

  private constructor(
    options: EngineOptions,
    handler: QueryHandler,
    forwarder: Forwarder | null,
    udp: FfiUdpServer | NodeUdpServer,
    udpLoop: Promise<void>,
    tcp: TcpDnsServer | null,
  ) {
    this.#options = options;
    this.#handler = handler;
    this.#forwarder = forwarder;
    this.#udp = udp;
    this.#udpLoop = udpLoop;
    this.#tcp = tcp;
    this.#contributions = new ContributionCache(nameKey(options.clusterDomain), options.ttl);
    this.udpMode = udp instanceof FfiUdpServer ? "ffi" : "node";
  }

  /** Binds the listeners; rejects with a message naming the address when one cannot bind. */
  static async start(options: EngineOptions, log: EngineLog): Promise<DnsEngine> {
    const stats = new DnsStats();
    const forwarder = options.upstreams.length > 0
      ? new Forwarder({
        upstreams: options.upstreams,
        timeoutMs: options.upstreamTimeoutMs,
        cache: new DnsCache({ maxEntries: options.cacheSize, now: () => Date.now() }),
      })
      : null;
    const handler = new QueryHandler({
      clusterDomain: options.clusterDomain,
      reverseCidrs: options.reverseCidrs,
      forwarder,
      stats,
    });
    const allow = new AllowList(options.allowRecursion);
    const onError = (message: string) => log("warn", message);
    let udp: FfiUdpServer | NodeUdpServer;
    let udpLoop: Promise<void>;
    const ffi = ffiAvailability();
    const useFfi = options.udp === "ffi" || (options.udp === "auto" && ffi.ok);
    if (useFfi) {
      if (!ffi.ok) throw new Error(`Cannot use the FFI UDP transport: ${ffi.reason}`);
      const s = FfiUdpServer.open({
        hostname: options.hostname,
        port: options.port,
        reusePort: options.reusePort,
        handler,
        allow,
        onError,
      });
      udp = s;
      udpLoop = s.run().catch((e) =>
        log("error", "UDP loop stopped", { error: (e as Error).message })
      );
    } else {
      if (options.udp === "auto" && !ffi.ok) {
        log("info", "using the portable UDP transport", { reason: ffi.reason });
      }
      udp = await NodeUdpServer.open({
        hostname: options.hostname,
        port: options.port,
        handler,
        allow,
        onError,
      });
      udpLoop = Promise.resolve();
    }
    let tcp: TcpDnsServer | null = null;
    if (options.tcp) {
      try {
        tcp = TcpDnsServer.open({
          hostname: options.hostname,
          port: udp.port,
          handler,
          allow,
          onError,
          idleTimeoutMs: options.tcpIdleTimeoutMs,
        });
      } catch (e) {
        if (udp instanceof FfiUdpServer) udp.stop();
        else await udp.stop();
        await udpLoop;
        throw e;
      }
    }
    return new DnsEngine(options, handler, forwarder, udp, udpLoop, tcp);
  }

  /** UDP port bound. */
  get udpPort(): number {
    return this.#udp.port;
  }

  /** TCP port bound, or null without TCP. */
  get tcpPort(): number | null {
    return this.#tcp?.port ?? null;
  }

  /**
   * Builds the zone from a snapshot and switches to it. The build runs in slices of a few
   * milliseconds with event-loop turns between them, so queries keep being answered from the
   * previous zone meanwhile. A newer publish supersedes one still building (resolves null).
   * Rejects only on bad options.
   */
  async publish(snapshot: Snapshot, serial: number): Promise<PublishReport | null> {
    const generation = ++this.#generation;
    const t0 = performance.now();
    let sliceStart = t0;
    let turnStart = t0;
    const udp = this.#udp;
    const breathe = async (): Promise<boolean> => {
      const now = performance.now();
      if (now - sliceStart < SLICE_MS) return true;
      sliceStart = now;
      // Queued UDP queries are answered right here; the event loop (TCP, forwarding, newer
      // publishes) gets a turn less often, since a turn costs more than a slice.
      if (udp instanceof FfiUdpServer && now - turnStart < TURN_MS) {
        udp.pump();
        return true;
      }
      if (udp instanceof FfiUdpServer) await udp.yieldTurn();
      else await new Promise((r) => setTimeout(r, 0));
      sliceStart = turnStart = performance.now();
      return generation === this.#generation;
    };
    const steps = buildZoneSteps(
      snapshot,
      {
        clusterDomain: this.#options.clusterDomain,
        ttl: this.#options.ttl,
        reverseCidrs: this.#options.reverseCidrs,
        serial,
      },
      64,
      this.#contributions,
    );
    let zone;
    for (;;) {
      const r = steps.next();
      if (r.done) {
        zone = r.value;
        break;
      }
      if (!(await breathe())) return null;
    }
    const builder = new AnswerTableBuilder();
    let n = 0;
    for (const [name, node] of zone.nodes) {
      builder.addNode(zone, name, node);
      if (++n % 256 === 0 && !(await breathe())) return null;
    }
    const table = builder.finish();
    if (generation !== this.#generation) return null;
    this.#handler.setZone(zone, table);
    return {
      version: snapshot.version,
      records: zone.recordCount,
      answers: table.count,
      buildSeconds: (performance.now() - t0) / 1000,
    };
  }

  #generation = 0;
  readonly #contributions: ContributionCache;

  /** Counters since the last drain (forwarder counters included). */
  drainStats(): StatsDelta {
    const stats = this.#handler.stats;
    const f = this.#forwarder?.stats;
    if (f) {
      stats.cacheHits += f.cacheHits;
      stats.cacheMisses += f.cacheMisses;
      stats.upstreamFailures += f.upstreamFailures;
      f.cacheHits =
        f.cacheMisses =
        f.upstreamFailures =
        f.upstreamQueries =
          0;
    }
    return stats.drain();
  }

  /** Stops listening and closes upstream sockets. */
  async stop(): Promise<void> {
    if (this.#udp instanceof FfiUdpServer) this.#udp.stop();
    else await this.#udp.stop();
    await this.#udpLoop;
    await this.#tcp?.stop();
    this.#forwarder?.close();
  }
}
