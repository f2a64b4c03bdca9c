/**
 * The DNS engine: zone state, handler, forwarder and listeners of one thread. DnsServer runs one
 * engine per worker (or one in-process); everything here is plain data in and out so it crosses
 * the worker boundary by structured clone.
 * @module
 */

import type { Cidr, IpText } from "../../model/ip.ts";
import { type ClientNamespaceRule, ClientNamespaces } from "../answer/client_namespace.ts";
import type { Snapshot } from "../../model/snapshot.ts";
import { AnswerTableBuilder } from "../answer/fast.ts";
import { AllowList } from "./allow_list.ts";
import { type AnswerFiller, QueryHandler } from "./handler.ts";
import { DnsStats, type StatsDelta } from "./stats.ts";
import { type TcpDnsOptions, TcpDnsServer } from "./tcp.ts";
import { LimitLog } from "./limit_log.ts";
import { ResponseRateLimiter } from "./rrl.ts";
import { TurnBudget } from "./turn_budget.ts";
import { ffiAvailability, FfiUdpServer } from "./udp_ffi.ts";
import { NodeUdpServer } from "./udp_node.ts";
import { DnsCache } from "./dns_cache.ts";
import { Forwarder, type Upstream } from "./upstream.ts";
import { type ForwardZone, ForwardZones } from "./forward_zones.ts";
import { type PodRecords, validateZoneOptions, type ZoneOptions } from "../zone/zone.ts";
import { applyUpdate } from "../answer/fast.ts";
import { ZoneIndex } from "../zone/zone_index.ts";

/** Longest stretch a zone build runs before answering queued UDP queries. */
const SLICE_MS = 1;
/** Longest stretch a zone build runs before giving the event loop a turn. */
const TURN_MS = 15;
/** Services updated per synchronous batch of an incremental publish (~1-3 ms of work at 10k). */
const UPDATE_BATCH = 8;
/** Up to this many changed services (or a quarter of all) are updated in place, not rebuilt. */
const INCREMENTAL_MIN = 2048;
/**
 * Names whose answers the fast path keeps at most (~1 MB of answers); past it the table starts
 * afresh and refills with the names still asked.
 */
const CACHED_NAMES = 4096;

/** Which UDP transport to use. */
export type UdpTransportChoice = "auto" | "ffi" | "node";

/** The TCP limits a user sets (`--dns-tcp-*`); tcp.ts documents each and its default. */
export type TcpLimits = Partial<
  Pick<
    TcpDnsOptions,
    "maxConnections" | "maxConnectionsPerIp" | "ioTimeoutMs" | "maxLifetimeMs" | "maxQueries"
  >
>;
/**
 * What the zone answers and how (zone.ts ZoneOptions), and the search path walked on the
 * server (answer/autopath.ts); structured-clone friendly.
 */
export interface EngineAnswerOptions {
  readonly strictSpec?: boolean;
  readonly podRecords?: PodRecords;
  readonly endpointPodNames?: boolean;
  /** Keep IP -> services for every endpoint (verified pods, client namespaces from endpoints). */
  readonly indexEndpoints?: boolean;
  /** What `ns.dns.<zone>` answers: svcgate's own addresses. */
  readonly nsAddresses?: readonly IpText[];
  /** Walk the search path on the server for clients whose namespace is known. */
  readonly autopath?: boolean;
  /** The host's search domains, walked after the cluster's. */
  readonly searchDomains?: readonly string[];
  /** `--client-namespace CIDR=NAMESPACE`. */
  readonly clientNamespaces?: readonly ClientNamespaceRule[];
  /** Standalone mode: a client that is an endpoint is in its services' namespace. */
  readonly clientNamespacesFromEndpoints?: boolean;
}

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
  /** Connection limits and timeouts of TCP; unset ones take tcp.ts's defaults. */
  readonly tcpLimits?: TcpLimits;
  /** UDP responses per second per source address (`--dns-rrl`); 0 or absent: no limit. */
  readonly rrlResponsesPerSecond?: number;
  readonly upstreamTimeoutMs: number;
  readonly cacheSize: number;
  /** The node's resolver (issue 15): per-zone forwarding and the cache in outages. */
  readonly forwarding?: ForwardingOptions;
  /** Default: CoreDNS's answers, no search path on the server. */
  readonly answers?: EngineAnswerOptions;
}

/** `--forward-zone`, `--dns-serve-stale`, `--dns-prefetch` and the cache's TTL caps. */
export interface ForwardingOptions {
  readonly zones?: readonly ForwardZone[];
  /** How long an expired answer may be served when no upstream answers, ms. Default 0. */
  readonly staleMs?: number;
  /** Fresh hits that make an answer worth refreshing before it expires (0: never). */
  readonly prefetchHits?: number;
  /** Caps of positive and negative TTLs in the cache, seconds (defaults 3600 and 1800). */
  readonly maxTtl?: number;
  readonly maxNegativeTtl?: number;
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
  readonly buildSeconds: number;
  /** Services updated in place; -1 when the whole zone was built. */
  readonly changedServices: number;
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
  readonly #clients: ClientNamespaces;
  readonly #forwarder: Forwarder | null;
  readonly #udp: FfiUdpServer | NodeUdpServer;
  readonly #udpLoop: Promise<void>;
  readonly #tcp: TcpDnsServer | null;
  readonly #allow: AllowList;
  readonly #options: EngineOptions;
  readonly #log: EngineLog;
  readonly udpMode: "ffi" | "node";

  private constructor(
    options: EngineOptions,
    clients: ClientNamespaces,
    handler: QueryHandler,
    forwarder: Forwarder | null,
    udp: FfiUdpServer | NodeUdpServer,
    udpLoop: Promise<void>,
    tcp: TcpDnsServer | null,
    allow: AllowList,
    log: EngineLog,
  ) {
    this.#allow = allow;
    this.#options = options;
    this.#log = log;
    this.#clients = clients;
    this.#handler = handler;
    this.#forwarder = forwarder;
    this.#udp = udp;
    this.#udpLoop = udpLoop;
    this.#tcp = tcp;
    this.udpMode = udp instanceof FfiUdpServer ? "ffi" : "node";
  }

  /** Binds the listeners; rejects with a message naming the address when one cannot bind. */
  static async start(options: EngineOptions, log: EngineLog): Promise<DnsEngine> {
    const stats = new DnsStats();
    const fw = options.forwarding ?? {};
    const zones = new ForwardZones(fw.zones ?? []);
    const forwarder = options.upstreams.length > 0 || zones.size > 0
      ? new Forwarder({
        upstreams: options.upstreams,
        zones,
        timeoutMs: options.upstreamTimeoutMs,
        cache: new DnsCache({
          maxEntries: options.cacheSize,
          now: () => Date.now(),
          staleMs: fw.staleMs ?? 0,
          prefetchHits: fw.prefetchHits ?? 0,
          ...(fw.maxTtl !== undefined ? { maxTtl: fw.maxTtl } : {}),
          ...(fw.maxNegativeTtl !== undefined ? { maxNegativeTtl: fw.maxNegativeTtl } : {}),
        }),
        stats: stats.counters,
        onExchange: (to, rcode) => stats.forwarded(to, rcode),
      })
      : null;
    const answers = options.answers ?? {};
    const clients = new ClientNamespaces({
      rules: answers.clientNamespaces ?? [],
      fromEndpoints: answers.clientNamespacesFromEndpoints ?? false,
    });
    const handler = new QueryHandler({
      clusterDomain: options.clusterDomain,
      reverseCidrs: options.reverseCidrs,
      forwarder,
      stats,
      clients,
      autopath: answers.autopath ?? false,
      searchDomains: answers.searchDomains ?? [],
    });
    const allow = new AllowList(options.allowRecursion);
    const onError = (message: string) => log("warn", message);
    // One place counts and logs every limit hit of this engine, whichever transport saw it.
    const limitLog = new LimitLog({ stats, warn: onError });
    const rrl = options.rrlResponsesPerSecond
      ? new ResponseRateLimiter({ responsesPerSecond: options.rrlResponsesPerSecond })
      : undefined;
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
        limitLog,
        ...(rrl ? { rrl } : {}),
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
        limitLog,
        ...(rrl ? { rrl } : {}),
      });
      udpLoop = Promise.resolve();
    }
    let tcp: TcpDnsServer | null = null;
    if (options.tcp) {
      // UDP first: TCP work stops every half millisecond to answer queued UDP queries, and
      // rests a millisecond after 2 ms of work so the runtime polls every socket (turn_budget.ts).
      const ffi = udp instanceof FfiUdpServer ? udp : null;
      const budget = new TurnBudget(ffi ? { pumpUdp: () => void ffi.pump() } : {});
      try {
        tcp = TcpDnsServer.open({
          hostname: options.hostname,
          port: udp.port,
          handler,
          allow,
          onError,
          limitLog,
          budget,
          idleTimeoutMs: options.tcpIdleTimeoutMs,
          ...options.tcpLimits,
        });
      } catch (e) {
        if (udp instanceof FfiUdpServer) udp.stop();
        else await udp.stop();
        await udpLoop;
        throw e;
      }
    }
    return new DnsEngine(options, clients, handler, forwarder, udp, udpLoop, tcp, allow, log);
  }

  /** Who may recurse, from now on (the node's addresses changed). */
  setAllowRecursion(cidrs: readonly Cidr[]): void {
    this.#allow.replace(cidrs);
  }

  /** The global upstreams, from now on (the node's resolv.conf changed). */
  setUpstreams(upstreams: readonly Upstream[]): void {
    if (this.#forwarder) this.#forwarder.setUpstreams(upstreams);
    else if (upstreams.length > 0) {
      this.#log("warn", "DNS upstreams changed but this engine started without forwarding");
    }
  }

  /** UDP port bound. */
  get udpPort(): number {
    return this.#udp.port;
  }

  /**
   * This node's pods (canonical IP -> namespace), from the Kubernetes source: their queries get
   * the search path walked on the server, and `pods verified` knows them.
   */
  setNodePods(pods: ReadonlyMap<string, string>): void {
    this.#clients.setNodePods(pods);
  }

  /** TCP port bound, or null without TCP. */
  get tcpPort(): number | null {
    return this.#tcp?.port ?? null;
  }

  /**
   * Switches to a snapshot's zone. The first publish (and one that changes most services)
   * builds the whole zone in slices of a few milliseconds with event-loop turns between them,
   * answering from the previous zone meanwhile; later ones update only the names of services
   * that were added, removed or changed, in small synchronous batches. A publish arriving while
   * another is applied waits, and only the newest waiting one is applied next (the ones it
   * replaced resolve null): nothing in flight is abandoned, so DNS always converges.
   * Rejects only on bad options.
   */
  publish(snapshot: Snapshot, serial: number): Promise<PublishReport | null> {
    return new Promise((resolve, reject) => {
      this.#pending?.resolve(null);
      this.#pending = { snapshot, serial, resolve, reject };
      if (!this.#running) void this.#drainPending();
    });
  }

  async #drainPending(): Promise<void> {
    this.#running = true;
    try {
      while (this.#pending) {
        const job = this.#pending;
        this.#pending = null;
        try {
          job.resolve(await this.#apply(job.snapshot, job.serial));
        } catch (e) {
          job.reject(e);
        }
      }
    } finally {
      this.#running = false;
    }
  }

  /** Yields to queued queries every SLICE_MS, to the event loop every TURN_MS. */
  #breather(): () => Promise<void> {
    let sliceStart = performance.now();
    let turnStart = sliceStart;
    const udp = this.#udp;
    return async () => {
      const now = performance.now();
      if (now - sliceStart < SLICE_MS) return;
      sliceStart = now;
      // Queued UDP queries are answered right here; the event loop (TCP, forwarding, newer
      // publishes) gets a turn less often, since a turn costs more than a slice.
      if (udp instanceof FfiUdpServer && now - turnStart < TURN_MS) {
        udp.pump();
        return;
      }
      if (udp instanceof FfiUdpServer) await udp.yieldTurn();
      else await new Promise((r) => setTimeout(r, 0));
      sliceStart = turnStart = performance.now();
    };
  }

  async #apply(snapshot: Snapshot, serial: number): Promise<PublishReport> {
    const t0 = performance.now();
    const answers = this.#options.answers ?? {};
    const options: ZoneOptions = {
      clusterDomain: this.#options.clusterDomain,
      ttl: this.#options.ttl,
      reverseCidrs: this.#options.reverseCidrs,
      serial,
      strictSpec: answers.strictSpec ?? false,
      endpointPodNames: answers.endpointPodNames ?? false,
      indexEndpoints: answers.indexEndpoints ?? false,
      nsAddresses: answers.nsAddresses ?? [],
      podRecords: answers.podRecords ?? "insecure",
    };
    const problem = validateZoneOptions(options);
    if (problem) throw new Error(problem);
    const breathe = this.#breather();
    const index = this.#index, table = this.#table;
    const fill = this.#fill;
    if (index && index.fits(options)) {
      const keys = index.diff(snapshot);
      if (keys.length <= Math.max(INCREMENTAL_MIN, index.size / 4)) {
        try {
          for (let i = 0; i === 0 || i < keys.length; i += UPDATE_BATCH) {
            // Each batch is applied whole between two queries: every service is either wholly
            // old or wholly new to a client, never half updated.
            const batch = keys.slice(i, i + UPDATE_BATCH);
            const zone = applyUpdate(index, table, snapshot, serial, batch, i === 0);
            this.#handler.setZone(zone, table.view(), fill);
            await breathe();
          }
          return this.#report(snapshot, index.zone().recordCount, t0, keys.length);
        } catch (e) {
          // A bug here must not leave a half-updated zone: rebuild it whole.
          this.#log("error", "DNS incremental update failed; rebuilding the zone", {
            error: (e as Error).message,
          });
          this.#index = null;
        }
      }
    }
    const steps = ZoneIndex.buildSteps(snapshot, options);
    let built: ZoneIndex;
    for (;;) {
      const r = steps.next();
      if (r.done) {
        built = r.value;
        break;
      }
      await breathe();
    }
    const zone = built.zone();
    this.#index = built;
    // Answers are precomputed per name on first ask (#fill), from the new zone only.
    table.clear();
    this.#handler.setZone(zone, table.view(), fill);
    return this.#report(snapshot, zone.recordCount, t0, -1);
  }

  /**
   * Precomputes a name's answers after the general path answered it, so later asks take the
   * fast path. Past {@link CACHED_NAMES} names the table starts afresh: it holds the names
   * clients ask, never the whole zone.
   */
  readonly #fill: AnswerFiller = (name) => {
    const index = this.#index, table = this.#table;
    if (index === null || table.has(name)) return null;
    const zone = index.zone();
    const node = zone.nodes.get(name);
    if (!node || node.records.length === 0) return null;
    if (table.names >= CACHED_NAMES) table.clear();
    table.addNode(zone, name, node);
    return table.view();
  };

  #report(
    snapshot: Snapshot,
    records: number,
    t0: number,
    changed: number,
  ): PublishReport {
    return {
      version: snapshot.version,
      records,
      buildSeconds: (performance.now() - t0) / 1000,
      changedServices: changed,
    };
  }

  #pending: {
    snapshot: Snapshot;
    serial: number;
    resolve: (r: PublishReport | null) => void;
    reject: (e: unknown) => void;
  } | null = null;
  #running = false;
  #index: ZoneIndex | null = null;
  /** Answers of the names asked since the last full build (see #fill). */
  readonly #table = new AnswerTableBuilder();

  /** Counters since the last drain (forwarder counters included). */
  drainStats(): StatsDelta {
    return this.#handler.stats.drain(this.#forwarder?.cacheCounts() ?? null);
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
