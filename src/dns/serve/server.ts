/**
 * svcgate's DNS server: authoritative for the cluster domain and its reverse zones, forwarding
 * the rest for allowed clients, over UDP and TCP. It runs one engine (engine.ts) on the main
 * thread (`workers: 0`) or one per worker, the workers sharing the port (SO_REUSEPORT), and hands
 * the engines only the services whose DNS content changed. Why it is shaped so, with the
 * measurements: src/dns/README.md.
 *
 * Permissions: --allow-net (TCP, fallback UDP, upstream sockets), --allow-ffi (fast UDP),
 * --allow-read (worker module and /etc/resolv.conf when no upstreams are given).
 * @module
 */

import type { ServiceEntry, Snapshot } from "../../model/snapshot.ts";
import { type Logger, silentLogger } from "../../observe/log.ts";
import { DnsEngine, type EngineOptions } from "./engine.ts";
import {
  type DnsServerOptions,
  engineAnswers,
  engineOptions,
  zoneRecords,
} from "./engine_setup.ts";
import { setDnsGauge, type StatsDelta } from "./stats.ts";
import { DnsStatsExporter, serverLabel } from "./coredns_metrics.ts";
import { NodeResolver, type ResolverChange } from "./node_resolver.ts";
import { shadowedZones } from "./forward_zones.ts";
import { DNS_WORKER_NAME, type FromWorker, type ToWorker } from "./worker.ts";
import { DnsChangeTracker } from "../zone/change_tracker.ts";
import { slimEntry } from "../zone/slim_entry.ts";
import { reverseZoneApexes, validateZoneOptions } from "../zone/zone.ts";
import { METRICS } from "../../observe/metrics_catalogue.ts";

/** Where the server listens, once started. */
export interface DnsServerAddr {
  readonly hostname: string;
  readonly udpPort: number;
  readonly tcpPort: number | null;
  /** UDP transport in use. */
  readonly udpMode: "ffi" | "node";
}

/** Entries per upsert message: each deserialises in about a millisecond inside the worker. */
const UPSERT_CHUNK = 500;

interface WorkerSlot {
  worker: Worker;
  started: boolean;
  /** True once the worker holds every entry of the last snapshot sent. */
  synced: boolean;
  publishedVersion: number;
}

/**
 * The DNS server.
 *
 * @example
 * ```ts
 * const dns = new DnsServer({
 *   bind: { hostname: "127.0.0.1", port: 5353 },
 *   clusterDomain: "cluster.local",
 *   ttl: 30,
 *   reverseCidrs: [serviceCidr],
 *   upstreams: ["198.18.0.53:53"],
 *   allowRecursion: [loopback],
 * });
 * await dns.start();
 * dns.publish(snapshot); // only after the dataplane committed it
 * await dns.stop();
 * ```
 */
export class DnsServer {
  readonly #opts: DnsServerOptions;
  readonly #log: Logger;
  #engine: DnsEngine | null = null;
  #workers: WorkerSlot[] = [];
  #addr: DnsServerAddr | null = null;
  #lastSnapshot: Snapshot | null = null;
  #lastSerial = 0;
  #waiters: { version: number; resolve: () => void }[] = [];
  #drains = new Map<number, { left: number; resolve: () => void }>();
  #drainToken = 0;
  #stopped = false;
  /** Moves an in-process engine's counters to the registry, as workers post theirs each second. */
  #statsTimer: ReturnType<typeof setInterval> | undefined;
  /** The node's addresses and resolv.conf, watched (null before start). */
  #node: NodeResolver | null = null;
  /** Moves counters to the metrics (engine keys: 0 in-process, else the worker's slot). */
  readonly #stats: DnsStatsExporter | null;
  /** This node's pods as last set (canonical IP -> namespace), for workers that start later. */
  #nodePods: ReadonlyMap<string, string> = new Map();
  /** Services whose DNS content changed, waiting to be sent. */
  readonly #changes: DnsChangeTracker;
  /** A snapshot saved by an earlier process, answered until the first publish ({@link restore}). */
  #restored: Snapshot | null = null;
  /** Workers hold #restored: the first publish resets them. */
  #restoredInWorkers = false;

  constructor(options: DnsServerOptions) {
    const problem = validateZoneOptions({ ...options, serial: 0 });
    if (problem) throw new Error(problem);
    const workers = options.workers ?? 1;
    if (!Number.isInteger(workers) || workers < 0 || workers > 64) {
      throw new Error(
        `Cannot start ${workers} DNS workers: the count must be an integer from 0 to 64`,
      );
    }
    this.#opts = options;
    this.#log = (options.log ?? silentLogger).child("dns");
    this.#changes = new DnsChangeTracker(zoneRecords(options));
    const bind = options.bind;
    this.#stats = options.metrics
      ? new DnsStatsExporter(
        options.metrics,
        () => serverLabel(bind.hostname, this.#addr?.udpPort ?? bind.port),
      )
      : null;
  }

  /** Where the server listens; null before start. */
  get addr(): DnsServerAddr | null {
    return this.#addr;
  }

  /** Binds UDP and TCP and starts serving (SERVFAIL for cluster names until the first publish). */
  async start(): Promise<void> {
    if (this.#addr) return;
    const node = this.#node = await NodeResolver.open({
      bind: this.#opts.bind,
      allowRecursion: this.#opts.allowRecursion,
      allowNodeAddresses: this.#opts.allowNodeAddresses ?? false,
      ...(this.#opts.upstreams ? { upstreams: this.#opts.upstreams } : {}),
      ...(this.#opts.resolvConfPath ? { resolvConfPath: this.#opts.resolvConfPath } : {}),
      requireUpstreams: this.#opts.requireUpstreams ?? false,
      log: this.#log,
      ...(this.#opts.nodePollMs !== undefined ? { pollMs: this.#opts.nodePollMs } : {}),
    });
    const upstreams = node.upstreams;
    const forwarding = this.#opts.forwarding ?? {};
    const apexes = this.#opts.reverseCidrs.flatMap(reverseZoneApexes);
    for (const w of shadowedZones(forwarding.zones ?? [], this.#opts.clusterDomain, apexes)) {
      this.#log.warn(w);
    }
    const answers = await engineAnswers(
      this.#opts,
      node.resolvConfPath ?? this.#opts.resolvConfPath ?? "/etc/resolv.conf",
    );
    const base = engineOptions(this.#opts, node, answers);
    const count = this.#opts.workers ?? 1;
    if (count === 0) {
      this.#engine = await DnsEngine.start(
        base,
        (level, msg, fields) => this.#log[level](msg, fields),
        this.#restored && !this.#lastSnapshot
          ? { snapshot: this.#restored, serial: this.#lastSerial }
          : undefined,
      );
      this.#addr = {
        hostname: base.hostname,
        udpPort: this.#engine.udpPort,
        tcpPort: this.#engine.tcpPort,
        udpMode: this.#engine.udpMode,
      };
      // Without this the daemon's /metrics (which never calls flushMetrics) would show no DNS
      // counters at all with the default --dns-workers 0.
      const metrics = this.#opts.metrics;
      if (metrics) {
        this.#statsTimer = setInterval(() => {
          if (this.#engine) this.#export(this.#engine.drainStats(), 0);
        }, 1000);
        Deno.unrefTimer(this.#statsTimer);
      }
    } else {
      const first = await this.#spawn(base, true);
      this.#addr = {
        hostname: base.hostname,
        udpPort: first.udpPort,
        tcpPort: first.tcpPort,
        udpMode: first.udpMode,
      };
      for (let i = 1; i < count; i++) {
        await this.#spawn({ ...base, port: first.udpPort, tcp: false });
      }
    }
    this.#log.info("DNS listening", {
      address: `${base.hostname}:${this.#addr.udpPort}`,
      udp: this.#addr.udpMode,
      workers: count,
      upstreams: upstreams.map((u) => u.text).join(",") || "none",
      ...(forwarding.zones?.length
        ? { forwardZones: forwarding.zones.map((z) => z.zone).join(",") }
        : {}),
      allowRecursion: node.allow.map((c) => c.text).join(","),
      answers: answers.strictSpec ? "spec" : "coredns",
      autopath: answers.autopath
        ? `on${answers.searchDomains?.length ? ` (then ${answers.searchDomains.join(" ")})` : ""}`
        : "off",
    });
    if (this.#addr.udpMode === "node") {
      this.#log.warn("DNS UDP runs on node:dgram (slower): grant --allow-ffi for batched syscalls");
    }
    if (this.#engine) this.#engine.setNodePods(this.#nodePods);
    if (this.#engine && this.#lastSnapshot) this.#send(this.#lastSnapshot);
    this.#syncFresh();
    node.watch((change) => this.#applyNodeChange(change));
  }

  /** Pushes a change of the node's addresses or resolv.conf to every engine. */
  #applyNodeChange(change: ResolverChange): void {
    if (change.allow) {
      this.#engine?.setAllowRecursion(change.allow);
      const m: ToWorker = { type: "allow", cidrs: [...change.allow] };
      for (const w of this.#workers) w.worker.postMessage(m);
    }
    if (change.upstreams) {
      this.#engine?.setUpstreams(change.upstreams);
      const m: ToWorker = { type: "upstreams", upstreams: [...change.upstreams] };
      for (const w of this.#workers) w.worker.postMessage(m);
    }
  }

  /** Moves an engine's counters to the registry, svcgate's names and CoreDNS's. */
  #export(delta: StatsDelta, engine: unknown): void {
    this.#stats?.apply(delta, engine);
  }

  /**
   * This node's pods (canonical IP -> namespace), from the Kubernetes source: their queries get
   * the search path walked on the server, and `pods verified` knows them. Applies at once.
   */
  setNodePods(pods: ReadonlyMap<string, string>): void {
    this.#nodePods = pods;
    if (this.#engine) this.#engine.setNodePods(pods);
    const message: ToWorker = { type: "pods", pods: [...pods] };
    for (const w of this.#workers) w.worker.postMessage(message);
  }

  #spawn(
    options: EngineOptions,
    first = false,
  ): Promise<{ udpPort: number; tcpPort: number | null; udpMode: "ffi" | "node" }> {
    const url = this.#opts.workerUrl ?? new URL("./worker_main.ts", import.meta.url);
    const worker = new Worker(url, { type: "module", name: DNS_WORKER_NAME });
    const slot: WorkerSlot = { worker, started: false, synced: false, publishedVersion: 0 };
    // After a restart the first worker builds the saved snapshot's zone before it listens.
    const restored = first && !this.#lastSnapshot ? this.#restored : null;
    if (restored) {
      this.#post([slot], [...restored.services.values()]);
      slot.synced = true;
      this.#restoredInWorkers = true;
    }
    return new Promise((resolve, reject) => {
      worker.onmessage = (e: MessageEvent<FromWorker>) => {
        const m = e.data;
        if (m.type === "started") {
          slot.started = true;
          this.#workers.push(slot);
          resolve(m);
          return;
        }
        if (m.type === "failed") {
          worker.terminate();
          reject(new Error(m.message));
          return;
        }
        this.#onWorkerMessage(slot, m);
      };
      worker.onerror = (e: ErrorEvent) => {
        e.preventDefault();
        this.#log.error("DNS worker crashed", { error: e.message });
        if (!slot.started) reject(new Error(`DNS worker failed to start: ${e.message}`));
        else this.#restart(slot, options);
      };
      worker.postMessage(
        {
          type: "start",
          options,
          ...(restored
            ? { initial: { serial: this.#lastSerial, namespaces: [...restored.namespaces] } }
            : {}),
        } satisfies ToWorker,
      );
    });
  }

  #restart(slot: WorkerSlot, options: EngineOptions): void {
    if (this.#stopped) return;
    this.#workers = this.#workers.filter((w) => w !== slot);
    this.#stats?.forget(slot);
    slot.worker.terminate();
    // Keep serving on the remaining workers; bring this one back after a pause.
    setTimeout(() => {
      if (this.#stopped) return;
      const port = this.#addr?.udpPort ?? options.port;
      // The node's allow-list and upstreams as they are now, not as they were at start.
      const node = this.#node;
      const now = node ? { allowRecursion: [...node.allow], upstreams: [...node.upstreams] } : {};
      this.#spawn({ ...options, ...now, port }).then(() => this.#syncFresh()).catch((e) =>
        this.#log.error("DNS worker restart failed", { error: (e as Error).message })
      );
    }, 1000);
  }

  #onWorkerMessage(slot: WorkerSlot, m: FromWorker): void {
    switch (m.type) {
      case "published":
        slot.publishedVersion = m.version;
        this.#log.debug("DNS zone published", {
          version: m.version,
          records: m.records,
          seconds: m.buildSeconds,
          changedServices: m.changedServices,
        });
        this.#recordPublish(m.version, m.records, m.buildSeconds);
        this.#settle();
        break;
      case "publishFailed":
        this.#log.error("DNS zone build failed; serving the previous one", {
          version: m.version,
          error: m.message,
        });
        break;
      case "stats":
        if (this.#opts.metrics) {
          this.#export(m.delta, slot);
          this.#opts.metrics.of(METRICS.heapUsed).set(m.heapUsed, {
            isolate: `dns-${this.#workers.indexOf(slot)}`,
          });
        }
        if (m.token !== undefined) {
          const d = this.#drains.get(m.token);
          if (d && --d.left === 0) {
            this.#drains.delete(m.token);
            d.resolve();
          }
        }
        break;
      case "log":
        this.#log[m.level](m.msg, m.fields);
        break;
      default:
        break;
    }
  }

  #recordPublish(version: number, records: number, seconds: number): void {
    const m = this.#opts.metrics;
    if (!m) return;
    setDnsGauge(m, "zoneRecords", records);
    setDnsGauge(m, "zoneVersion", version);
    setDnsGauge(m, "zoneBuild", seconds);
  }

  #settle(): void {
    const current = this.#currentVersion();
    this.#waiters = this.#waiters.filter((w) => {
      if (current >= w.version) {
        w.resolve();
        return false;
      }
      return true;
    });
  }

  #currentVersion(): number {
    if (this.#engine) return this.#engineVersion;
    if (this.#workers.length === 0) return 0;
    return Math.min(...this.#workers.map((w) => w.publishedVersion));
  }

  #engineVersion = 0;

  /** The snapshot version every engine answers from (0: none yet, cluster names get SERVFAIL). */
  get servingVersion(): number {
    return this.#currentVersion();
  }

  /**
   * Answers from this snapshot from now on. Call it only after the dataplane committed the
   * snapshot. Workers switch within milliseconds; {@link settled} waits for that.
   */
  publish(snapshot: Snapshot): void {
    this.#lastSnapshot = snapshot;
    if (!this.#changes.examine(snapshot)) {
      // Nothing DNS shows changed (endpoint readiness behind a ClusterIP, labels...): the zone
      // being served is already this snapshot's zone, so skip the rebuild.
      this.#settle();
      return;
    }
    // The SOA serial is the time of the last change that DNS shows.
    this.#lastSerial = Math.max(this.#lastSerial + 1, Math.floor(Date.now() / 1000)) >>> 0;
    this.#requiredVersion = snapshot.version;
    if (this.#addr) this.#send(snapshot);
  }

  /** Version of the last snapshot that changed DNS; later ones answer the same. */
  #requiredVersion = 0;

  #send(snapshot: Snapshot): void {
    const serial = this.#lastSerial;
    if (this.#engine) {
      this.#changes.clear();
      this.#engine.publish(snapshot, serial).then(
        (r) => {
          if (!r) return;
          this.#engineVersion = r.version;
          this.#recordPublish(r.version, r.records, r.buildSeconds);
          this.#settle();
        },
        (e) =>
          this.#log.error("DNS zone build failed; serving the previous one", {
            error: (e as Error).message,
          }),
      );
      return;
    }
    if (this.#restoredInWorkers) {
      // They hold a saved snapshot, not this one's predecessor: send them this one whole.
      this.#restoredInWorkers = false;
      for (const w of this.#workers) w.synced = false;
    }
    // Only services whose DNS content changed cross to the workers.
    const fresh = this.#workers.filter((w) => !w.synced);
    const synced = this.#workers.filter((w) => w.synced);
    const { upserts, removed } = this.#changes.take(snapshot);
    const commit: ToWorker = {
      type: "commit",
      version: snapshot.version,
      serial,
      removed,
      namespaces: [...snapshot.namespaces],
    };
    this.#post(synced, upserts);
    for (const w of synced) w.worker.postMessage(commit);
    if (fresh.length > 0) this.#syncFresh();
  }

  /**
   * Answers from a snapshot saved by an earlier process until the first {@link publish}: names
   * it holds are answered at once after a restart, names it lacks get SERVFAIL (not NXDOMAIN).
   * Give only what the adopted kernel table routes (snapshot_codec.ts routedOnly). Call it before
   * {@link start}; with workers the zone is built in them just after they start. Ignored after a
   * publish.
   */
  restore(snapshot: Snapshot): void {
    if (this.#lastSnapshot || this.#addr) return;
    this.#restored = snapshot;
    this.#lastSerial = Math.floor(Date.now() / 1000) >>> 0;
  }

  /** Sends the whole last snapshot to workers that do not hold it (new or restarted ones). */
  #syncFresh(): void {
    const provisional = !this.#lastSnapshot && this.#restored !== null;
    const snapshot = this.#lastSnapshot ?? this.#restored;
    const fresh = this.#workers.filter((w) => !w.synced);
    if (fresh.length === 0 || this.#engine) return;
    const pods: ToWorker = { type: "pods", pods: [...this.#nodePods] };
    for (const w of fresh) w.worker.postMessage(pods);
    if (!snapshot) return;
    for (const w of fresh) w.worker.postMessage({ type: "reset" } satisfies ToWorker);
    this.#post(fresh, [...snapshot.services.values()]);
    const commit: ToWorker = {
      type: "commit",
      version: snapshot.version,
      serial: this.#lastSerial,
      removed: [],
      namespaces: [...snapshot.namespaces],
      ...(provisional ? { provisional } : {}),
    };
    if (provisional) this.#restoredInWorkers = true;
    for (const w of fresh) {
      w.worker.postMessage(commit);
      w.synced = true;
    }
    // Every worker now holds the last published snapshot.
    this.#changes.clear();
  }

  #post(workers: WorkerSlot[], entries: ServiceEntry[]): void {
    for (let i = 0; i < entries.length; i += UPSERT_CHUNK) {
      const records = this.#changes.records;
      const chunk = entries.slice(i, i + UPSERT_CHUNK).map((e) => slimEntry(e, undefined, records));
      for (const w of workers) {
        w.worker.postMessage({ type: "upsert", entries: chunk } satisfies ToWorker);
      }
    }
  }

  /** Resolves when every engine answers from the last published snapshot. */
  settled(): Promise<void> {
    const version = this.#requiredVersion;
    if (this.#currentVersion() >= version) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push({ version, resolve }));
  }

  /** Pulls the latest counters from every engine into the metrics registry. */
  flushMetrics(): Promise<void> {
    if (this.#engine) {
      this.#export(this.#engine.drainStats(), 0);
      return Promise.resolve();
    }
    if (this.#workers.length === 0) return Promise.resolve();
    const token = ++this.#drainToken;
    return new Promise((resolve) => {
      this.#drains.set(token, { left: this.#workers.length, resolve });
      for (const w of this.#workers) {
        w.worker.postMessage({ type: "drain", token } satisfies ToWorker);
      }
    });
  }

  /** Stops listening and ends the workers. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    clearInterval(this.#statsTimer);
    this.#node?.stop();
    if (this.#engine) {
      this.#export(this.#engine.drainStats(), 0);
      await this.#engine.stop();
      this.#engine = null;
    }
    await Promise.all(this.#workers.map((w) =>
      new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 3000);
        const prev = w.worker.onmessage;
        w.worker.onmessage = (e: MessageEvent<FromWorker>) => {
          if (e.data.type === "stopped") {
            clearTimeout(timer);
            resolve();
            return;
          }
          prev?.call(w.worker, e);
        };
        w.worker.postMessage({ type: "stop" } satisfies ToWorker);
      }).finally(() => w.worker.terminate())
    ));
    this.#workers = [];
    for (const d of this.#drains.values()) d.resolve();
    this.#drains.clear();
    for (const w of this.#waiters) w.resolve();
    this.#waiters = [];
    this.#addr = null;
  }
}
