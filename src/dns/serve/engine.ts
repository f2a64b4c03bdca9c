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
import { type TcpDnsOptions, TcpDnsServer, type TcpSocketChoice } from "./tcp.ts";
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

/** How long a socket that left its SO_REUSEPORT group keeps reading what was queued to it. */
const LEAVE_GROUP_DRAIN_MS = 50;

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
  /** Where the TCP listener comes from; default Deno.listen. */
  readonly tcpSocket?: TcpSocketChoice;
  /** A UDP socket inherited from systemd (socket activation) to serve instead of binding one. */
  readonly inheritedUdpFd?: number;
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

  /**
   * Binds the listeners; rejects with a message naming the address when one cannot bind. With
   * `initial` (a saved snapshot, after a restart) the zone is built first, so the first query
   * read is answered from it; answers that would say NXDOMAIN say SERVFAIL until a publish.
   */
  static async start(
    options: EngineOptions,
    log: EngineLog,
    initial?: { readonly snapshot: Snapshot; readonly serial: number },
  ): Promise<DnsEngine> {
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
    // Built before any socket is read: a restarted process answers its first query.
    const index = initial
      ? await buildInitialZone(options, initial.snapshot, initial.serial)
      : null;
    const ffi = ffiAvailability();
    const useFfi = options.udp === "ffi" || (options.udp === "auto" && ffi.ok) ||
      options.inheritedUdpFd !== undefined;
    if (useFfi) {
      if (!ffi.ok) throw new Error(`Cannot use the FFI UDP transport: ${ffi.reason}`);
      const udpOptions = {
        hostname: options.hostname,
        port: options.port,
        reusePort: options.reusePort,
        handler,
        allow,
        onError,
        limitLog,
        ...(rrl ? { rrl } : {}),
      };
      const s = options.inheritedUdpFd !== undefined
        ? FfiUdpServer.adopt(options.inheritedUdpFd, udpOptions)
        : FfiUdpServer.open(udpOptions);
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
          ...(options.tcpSocket ? { socket: options.tcpSocket } : {}),
        });
      } catch (e) {
        if (udp instanceof FfiUdpServer) udp.stop();
        else await udp.stop();
        await udpLoop;
        throw e;
      }
    }
    const engine = new DnsEngine(
      options,
      clients,
      handler,
      forwarder,
      udp,
      udpLoop,
      tcp,
      allow,
      log,
    );
    if (index) engine.#serveInitial(index);
    return engine;
  }

  /** Answers from a zone built before the sockets opened; NXDOMAIN is not said until a publish. */
  #serveInitial(index: ZoneIndex): void {
    this.#index = index;
    this.#table.clear();
    this.#handler.setZone(index.zone(), this.#table.view(), this.#fill);
    this.#handler.provisional = true;
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
  publish(snapshot: Snapshot, serial: number, provisional = false): Promise<PublishReport | null> {
    return new Promise((resolve, reject) => {
      this.#pending?.resolve(null);
      this.#pending = { snapshot, serial, provisional, resolve, reject };
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
          const report = await this.#apply(job.snapshot, job.serial);
          // A saved snapshot (after a restart) does not prove a name absent: SERVFAIL, not
          // NXDOMAIN, until a snapshot this process committed is served.
          this.#handler.provisional = job.provisional;
          job.resolve(report);
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
    const options = zoneOptionsOf(this.#options, serial);
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
    provisional: boolean;
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

  /**
   * Stops listening and closes upstream sockets, losing no query it took: it first stops taking
   * new ones (leaving the SO_REUSEPORT group, whose other members get them, or leaving them queued
   * in an inherited socket for the next process), answers what it holds and waits for the
   * answers of questions it forwarded (at most the upstream timeout).
   */
  async stop(): Promise<void> {
    const udp = this.#udp;
    const leftGroup = udp instanceof FfiUdpServer && udp.leaveGroup();
    if (udp instanceof FfiUdpServer && !leftGroup) udp.pause();
    this.#tcp?.stopAccepting();
    const forwarded = this.#forwarder?.idle() ?? Promise.resolve();
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      forwarded,
      new Promise((r) => (timer = setTimeout(r, this.#options.upstreamTimeoutMs + 100))),
    ]);
    clearTimeout(timer);
    // Datagrams the kernel steered here before the connect are read in this pause.
    if (leftGroup) await new Promise((r) => setTimeout(r, LEAVE_GROUP_DRAIN_MS));
    if (this.#udp instanceof FfiUdpServer) this.#udp.stop();
    else await this.#udp.stop();
    await this.#udpLoop;
    await this.#tcp?.stop();
    this.#forwarder?.close();
  }
}

/** Builds a snapshot's zone before any socket is open (nothing to answer between slices). */
async function buildInitialZone(
  options: EngineOptions,
  snapshot: Snapshot,
  serial: number,
): Promise<ZoneIndex> {
  const steps = ZoneIndex.buildSteps(snapshot, zoneOptionsOf(options, serial));
  let turn = performance.now();
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
    // The event loop still runs the daemon's other work (HTTP, the source starting).
    if (performance.now() - turn > TURN_MS) {
      await new Promise((res) => setTimeout(res, 0));
      turn = performance.now();
    }
  }
}

/** The zone options of an engine's options; throws on bad ones. */
function zoneOptionsOf(options: EngineOptions, serial: number): ZoneOptions {
  const answers = options.answers ?? {};
  const zoneOptions: ZoneOptions = {
    clusterDomain: options.clusterDomain,
    ttl: options.ttl,
    reverseCidrs: options.reverseCidrs,
    serial,
    strictSpec: answers.strictSpec ?? false,
    endpointPodNames: answers.endpointPodNames ?? false,
    indexEndpoints: answers.indexEndpoints ?? false,
    nsAddresses: answers.nsAddresses ?? [],
    podRecords: answers.podRecords ?? "insecure",
  };
  const problem = validateZoneOptions(zoneOptions);
  if (problem) throw new Error(problem);
  return zoneOptions;
}
