/**
 * The daemon: starts the parts in a safe order, runs the sync loop, repairs drift, serves
 * /healthz /readyz /metrics, and stops cleanly. Publish order is the product's promise: DNS
 * answers from a snapshot only after the dataplane committed it.
 * @module
 */

import type { Snapshot } from "../model/snapshot.ts";
import { ModelStore } from "../model/store.ts";
import type { Logger } from "../observe/log.ts";
import type { MetricsRegistry } from "../observe/metrics.ts";
import type { MallocTrimmer } from "../observe/memory.ts";
import type { Source, SourceStatus } from "../sources/source.ts";
import type { HostPort } from "../config/flags.ts";
import type { Family } from "../nft/ruleset.ts";
import type { DriftScope } from "../nft/monitor_events.ts";
import { handleHttp } from "./http.ts";
import { serveReusePort } from "./http_listener.ts";
import { type SnapshotApplier, SyncLoop } from "./sync_loop.ts";
import { nodeEligible, ProxierHealth } from "./proxier_health.ts";
import { ServiceHealthServers } from "./service_health.ts";
import { applyConntrackSysctls, type ConntrackSettings } from "./conntrack_sysctls.ts";
import type { Cidr } from "../model/ip.ts";
import { METRICS } from "../observe/metrics_catalogue.ts";
import { type LoadedSnapshot, loadSavedSnapshot, SnapshotSaver } from "./saved_snapshot.ts";
import { routedOnly } from "../model/snapshot_codec.ts";

/**
 * One periodic drift check in this many reads every element (the others read the outline only):
 * a full read costs seconds of nft CPU at 10,000 services (README.md) and delays syncs queued
 * behind it, so it runs about hourly with the default 30 s --sync-period, as kube-proxy's full
 * resync.
 */
export const FULL_DRIFT_CHECK_EVERY = 120;

/** How long foreign changes are gathered before one repair. */
const FOREIGN_REPAIR_DELAY_MS = 20;

/** Sets the process memory gauges (as kube-proxy and CoreDNS export them) from this process. */
function recordMemory(metrics: MetricsRegistry): void {
  const usage = Deno.memoryUsage();
  metrics.of(METRICS.residentMemory).set(usage.rss);
  metrics.of(METRICS.heapUsed).set(usage.heapUsed, { isolate: "main" });
}

/** The dataplane as the daemon drives it. */
export interface DaemonDataplane extends SnapshotApplier {
  /** Reads existing kernel state once so a restart rewrites only the difference. */
  adopt(): Promise<void>;
  /**
   * Compares the kernel with what was applied and repairs any difference; true if it did. With
   * `elements: false` only the outline (tables, sets, chains) is read: cheap at any size.
   */
  checkDrift(options?: DriftCheckRequest): Promise<boolean>;
  /** The ClusterIPs the kernel routes now (a small read: nft/dataplane.ts). */
  liveVips?(): Promise<ReadonlySet<string>>;
}

/** What a drift check reads: the outline, every element, or what another process changed. */
export interface DriftCheckRequest {
  readonly elements?: boolean;
  readonly scopes?: ReadonlyMap<Family, DriftScope>;
}

/** Reports changes another process makes to svcgate's tables (nft/kernel_monitor.ts). */
export interface DaemonKernelMonitor {
  start(onForeignChange: (scopes: Map<Family, DriftScope>) => void): void;
  stop(): Promise<void>;
}

/** The DNS server as the daemon drives it. */
export interface DaemonDns {
  /** The snapshot version every DNS engine answers from; 0 before the first publish arrived. */
  readonly servingVersion: number;
  start(): Promise<void>;
  publish(snapshot: Snapshot): void;
  /** Answers from a snapshot saved by an earlier process until the first publish (before start). */
  restore?(snapshot: Snapshot): void;
  stop(): Promise<void>;
}

/** The parts a daemon is made of; built from the config by `buildDaemon`. */
export interface DaemonParts {
  readonly log: Logger;
  readonly metrics: MetricsRegistry;
  readonly source: Source;
  readonly dataplane: DaemonDataplane;
  readonly dns: DaemonDns | null;
  readonly minSyncPeriodMs: number;
  readonly syncPeriodMs: number;
  readonly initialSyncTimeoutMs: number;
  readonly healthzBind: HostPort | null;
  readonly metricsBind: HostPort | null;
  /** A store to use; a new one by default. */
  readonly store?: ModelStore;
  /** Told of every committed sync, to hand freed memory back once things are quiet. */
  readonly trimmer?: MallocTrimmer;
  /** Repairs drift as soon as another process causes it; the periodic check stays a backstop. */
  readonly kernelMonitor?: DaemonKernelMonitor;
  /**
   * How long a change may wait for a successful sync before /healthz and /livez say 503
   * (kube-proxy: twice its sync period). Default 60 s.
   */
  readonly healthTimeoutMs?: number;
  /**
   * Serve healthCheckNodePort checks for LoadBalancer services with externalTrafficPolicy Local,
   * for this node, on its addresses in `nodePortAddresses` (empty: every address).
   */
  readonly serviceHealth?: {
    readonly nodeName: string;
    readonly nodePortAddresses: readonly Cidr[];
  };
  /** kube-proxy's conntrack sysctls, set at start (failures are warnings). */
  readonly conntrack?: ConntrackSettings;
  // Restarts and upgrades without a lost query (issue 15).
  /** Save each committed snapshot here, and answer DNS from it at the next start. */
  readonly savedSnapshot?: { readonly stateDir: string; readonly version: string };
  /**
   * After a stop is asked with `lameDuck`, keep serving this long while /readyz says not ready
   * (`--dns-lameduck`), so a process started beside this one (SO_REUSEPORT) takes over.
   */
  readonly lameDuckMs?: number;
  /** SO_REUSEPORT on the HTTP listeners too (`--reuse-port`): the next process binds beside. */
  readonly reusePort?: boolean;
}

/** kube-proxy's health timeout with its default 30 s sync period. */
export const DEFAULT_HEALTH_TIMEOUT_MS = 60_000;

/**
 * Runs svcgate.
 *
 * @example
 * ```ts
 * const daemon = new Daemon(parts);
 * await daemon.start();
 * // ... later, on SIGTERM:
 * await daemon.stop();
 * ```
 */
export class Daemon {
  readonly store: ModelStore;
  readonly loop: SyncLoop;
  /** The proxy's health as /healthz and /livez report it. */
  readonly health: ProxierHealth;
  readonly #serviceHealth: ServiceHealthServers | null;
  #parts: DaemonParts;
  #servers: { shutdown(): Promise<void> }[] = [];
  #driftTimer: ReturnType<typeof setTimeout> | null = null;
  #sourceSynced = false;
  #stopped = false;
  #driftRunning = false;
  #driftChecks = 0;
  #foreign: Map<Family, { structural: boolean; sets: Set<string>; chains: Set<string> }> | null =
    null;
  #foreignTimer: ReturnType<typeof setTimeout> | null = null;
  readonly #saver: SnapshotSaver | null;
  #lameDuck = false;

  constructor(parts: DaemonParts) {
    this.#parts = parts;
    this.store = parts.store ?? new ModelStore();
    this.health = new ProxierHealth(parts.healthTimeoutMs ?? DEFAULT_HEALTH_TIMEOUT_MS);
    this.#serviceHealth = parts.serviceHealth
      ? new ServiceHealthServers({
        ...parts.serviceHealth,
        proxyHealthy: () => this.health.isHealthy(Date.now()),
        log: parts.log.child("service-health"),
        metrics: parts.metrics,
      })
      : null;
    this.#saver = parts.savedSnapshot && parts.dns
      ? new SnapshotSaver({ ...parts.savedSnapshot, log: parts.log.child("state") })
      : null;
    this.loop = new SyncLoop({
      store: this.store,
      dataplane: parts.dataplane,
      publish: (snapshot) => {
        parts.dns?.publish(snapshot);
        // In the background, coalesced: the next start answers DNS from it at once.
        this.#saver?.save(snapshot);
        // Local endpoints as the rules now program them: 200/503 within the sync that moved them.
        this.#serviceHealth?.sync(snapshot);
        parts.trimmer?.workDone();
      },
      minSyncPeriodMs: parts.minSyncPeriodMs,
      log: parts.log.child("sync"),
      metrics: parts.metrics,
      health: this.health,
    });
  }

  /** Everything /readyz reports. */
  readiness(): { ready: boolean; [k: string]: unknown } {
    const source: SourceStatus = this.#parts.source.status();
    const applied = this.loop.applied;
    const dns = this.#parts.dns;
    // Ready once DNS answers from a committed snapshot too (workers get it a moment after).
    const dnsServing = dns === null || dns.servingVersion > 0;
    const ready = this.#sourceSynced && source.synced && applied !== null && dnsServing &&
      !this.#lameDuck;
    return {
      ready,
      ...(this.#lameDuck ? { lameDuck: true } : {}),
      source,
      dataplane: {
        appliedVersion: applied?.version ?? null,
        services: applied?.services.size ?? 0,
        converged: this.loop.converged,
        ...(this.loop.lastError ? { lastError: this.loop.lastError } : {}),
      },
      dns: dns ? { serving: dnsServing, version: dns.servingVersion } : { enabled: false },
      ...(this.#serviceHealth ? { serviceHealthChecks: this.#serviceHealth.status() } : {}),
      ...this.#parts.source.details?.(),
    };
  }

  /** Starts every part; resolves once listeners are up and the source is started. */
  async start(): Promise<void> {
    const { log, metrics } = this.#parts;
    const state = {
      readiness: () => this.readiness(),
      metrics,
      beforeMetrics: () => recordMemory(metrics),
      healthz: () => {
        const answer = this.health.healthz(Date.now(), nodeEligible(this.store.node));
        metrics.of(METRICS.kubeProxyHealthz).inc({ code: String(answer.status) });
        return answer;
      },
      livez: () => {
        const answer = this.health.livez(Date.now());
        metrics.of(METRICS.kubeProxyLivez).inc({ code: String(answer.status) });
        return answer;
      },
    };
    // One listener per distinct address: /healthz and /metrics may share one.
    const binds = new Map<string, HostPort>();
    for (const bind of [this.#parts.healthzBind, this.#parts.metricsBind]) {
      if (bind) binds.set(`${bind.hostname}:${bind.port}`, bind);
    }
    for (const [address, bind] of binds) {
      const onListen = () => log.info("http listening", { address });
      // --reuse-port: the next process binds beside this one (Deno.serve cannot without
      // --unstable-net; http_listener.ts).
      this.#servers.push(
        this.#parts.reusePort
          ? serveReusePort(bind, (req) => handleHttp(req, state), onListen)
          : Deno.serve({ hostname: bind.hostname, port: bind.port, onListen }, (req) =>
            handleHttp(req, state)),
      );
    }
    if (this.#parts.conntrack) applyConntrackSysctls(this.#parts.conntrack, log.child("conntrack"));
    const dns = this.#parts.dns;
    const saved: LoadedSnapshot = this.#parts.savedSnapshot && dns?.restore
      ? await loadSavedSnapshot(
        this.#parts.savedSnapshot.stateDir,
        this.#parts.savedSnapshot.version,
      )
      : { status: "missing" };
    if (saved.status === "ignored") log.warn(saved.problem);
    if (saved.status === "loaded" && dns?.restore) {
      // After a restart: the kernel says which saved VIPs still route (one small set read, not
      // the whole table), then DNS answers from those at once (names it lacks: SERVFAIL until
      // the first sync, as without it), then the table is adopted.
      let vips: ReadonlySet<string> = new Set();
      try {
        vips = await this.#parts.dataplane.liveVips?.() ?? vips;
      } catch (e) {
        log.warn("cannot read the routed VIPs; DNS serves no saved ClusterIP", { error: e });
      }
      const { snapshot, dropped } = routedOnly(saved.snapshot, vips);
      dns.restore(snapshot);
      log.info("DNS answers from the saved snapshot until the first sync", {
        services: snapshot.services.size,
        notRouted: dropped.length,
        savedSecondsAgo: Math.round((Date.now() - saved.savedAt) / 1000),
      });
      await dns.start();
      await this.#parts.dataplane.adopt();
    } else {
      // DNS listens first: until the first publish it answers SERVFAIL for cluster names.
      await dns?.start();
      await this.#parts.dataplane.adopt();
    }
    const sink = { store: this.store, requestSync: () => this.#onSourceChange() };
    const started = this.#parts.source.start(sink).then(() => {
      this.#sourceSynced = true;
      log.info("source synced; programming");
      this.loop.requestSync();
    });
    const timeout = new Promise<"timeout">((resolve) => {
      const id = setTimeout(() => resolve("timeout"), this.#parts.initialSyncTimeoutMs);
      const clear = () => clearTimeout(id);
      started.then(clear, clear);
    });
    started.catch((e) => {
      if (this.#stopped) return;
      log.error("source failed to start; nothing is programmed", { error: e });
      metrics.of(METRICS.sourceErrors).inc();
    });
    if (
      await Promise.race([started.then(() => "synced" as const, () => "failed"), timeout]) ===
        "timeout"
    ) {
      log.warn("source has not synced yet; DNS answers SERVFAIL and nothing is programmed", {
        waitedMs: this.#parts.initialSyncTimeoutMs,
      });
    }
    this.#scheduleDriftCheck();
    this.#parts.kernelMonitor?.start((scopes) => this.#onForeignChange(scopes));
  }

  #onSourceChange(): void {
    // Nothing is written before the initial state is complete (as kube-proxy).
    if (this.#sourceSynced) this.loop.requestSync();
  }

  #scheduleDriftCheck(): void {
    if (this.#stopped || this.#parts.syncPeriodMs <= 0) return;
    this.#driftTimer = setTimeout(async () => {
      this.#driftTimer = null;
      const full = ++this.#driftChecks % FULL_DRIFT_CHECK_EVERY === 0;
      await this.checkDrift({ elements: full });
      this.#scheduleDriftCheck();
    }, this.#parts.syncPeriodMs);
  }

  /** Gathers what other processes changed and repairs it soon, reading only what they touched. */
  #onForeignChange(scopes: Map<Family, DriftScope>): void {
    if (this.#stopped || this.loop.applied === null) return;
    this.#parts.metrics.of(METRICS.nftForeignChanges).inc();
    const pending = this.#foreign ??= new Map();
    for (const [family, s] of scopes) {
      const into = pending.get(family);
      if (!into) {
        pending.set(family, {
          structural: s.structural,
          sets: new Set(s.sets),
          chains: new Set(s.chains),
        });
        continue;
      }
      into.structural ||= s.structural;
      for (const n of s.sets) into.sets.add(n);
      for (const n of s.chains) into.chains.add(n);
    }
    // A burst of foreign transactions (a script of nft commands) is repaired once.
    this.#foreignTimer ??= setTimeout(() => {
      this.#foreignTimer = null;
      const todo = this.#foreign;
      this.#foreign = null;
      if (todo) void this.#repairForeign(todo);
    }, FOREIGN_REPAIR_DELAY_MS);
  }

  async #repairForeign(scopes: ReadonlyMap<Family, DriftScope>): Promise<void> {
    const { log, metrics } = this.#parts;
    try {
      if (await this.#parts.dataplane.checkDrift({ scopes })) {
        log.warn("another process changed svcgate's nftables tables; repaired", {
          families: [...scopes.keys()].join(","),
        });
      }
    } catch (e) {
      metrics.of(METRICS.driftCheckFailures).inc();
      log.error("drift repair failed; checking in full", { error: e });
      setTimeout(() => void this.checkDrift({ elements: true }), 1000);
    }
  }

  /**
   * Runs one drift check now (also used by the periodic timer). The periodic timer reads every
   * element only every {@link FULL_DRIFT_CHECK_EVERY}th time: a full read costs seconds of nft CPU
   * at 10,000 services. Never throws.
   */
  async checkDrift(options: DriftCheckRequest = {}): Promise<boolean> {
    if (this.#driftRunning || this.loop.applied === null) return false;
    this.#driftRunning = true;
    const { log, metrics } = this.#parts;
    try {
      const repaired = await this.#parts.dataplane.checkDrift(options);
      if (repaired) {
        log.warn("kernel ruleset drifted from the applied state; repaired");
      }
      return repaired;
    } catch (e) {
      metrics.of(METRICS.driftCheckFailures).inc();
      log.error("drift check failed; will retry", { error: e });
      return false;
    } finally {
      this.#driftRunning = false;
    }
  }

  /** SIGHUP: re-read the configuration where the source supports it. */
  async reload(): Promise<void> {
    const source = this.#parts.source;
    if (!source.reload) return;
    try {
      await source.reload();
    } catch (e) {
      this.#parts.log.error("reload failed; the last good state keeps serving", { error: e });
    }
  }

  /**
   * Stops everything; the kernel ruleset stays so traffic keeps flowing across a restart. With
   * `lameDuck` (SIGTERM) and a lame-duck period, everything keeps serving that long first while
   * /readyz says not ready, so a process started beside this one takes over.
   */
  stop(options: { readonly lameDuck?: boolean } = {}): Promise<void> {
    const lameDuckMs = this.#parts.lameDuckMs ?? 0;
    if (options.lameDuck && lameDuckMs > 0 && !this.#lameDuck && !this.#stopping) {
      this.#lameDuck = true;
      this.#parts.log.info("lame duck: still serving, /readyz says not ready", { ms: lameDuckMs });
      // A second signal meanwhile stops at once; this then waits for that same stop.
      return new Promise((r) => setTimeout(r, lameDuckMs)).then(() => this.stop());
    }
    return this.#stopping ??= this.#stopNow();
  }

  #stopping: Promise<void> | null = null;

  async #stopNow(): Promise<void> {
    this.#stopped = true;
    if (this.#driftTimer !== null) clearTimeout(this.#driftTimer);
    if (this.#foreignTimer !== null) clearTimeout(this.#foreignTimer);
    await this.#parts.kernelMonitor?.stop();
    await this.#parts.source.stop();
    await this.loop.stop();
    await this.#saver?.flush();
    await this.#parts.dns?.stop();
    await this.#serviceHealth?.stop();
    await Promise.all(this.#servers.map((s) => s.shutdown()));
    this.#parts.trimmer?.stop();
  }
}
