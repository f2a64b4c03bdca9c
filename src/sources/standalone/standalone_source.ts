/**
 * Standalone mode's source: manifest files, then VIP allocation, then health-check overrides,
 * then the store, behind the same {@link Source} seam as the Kubernetes source. It owns the three
 * parts: the manifest reader ({@link ManifestSource}), the VIP allocator (src/ipam) and the health
 * checker (src/health). Allocations are saved atomically under --state-dir (one write at a time,
 * retried on failure); a health verdict that flips runs the pipeline again on the last loaded
 * files. `svcgate render` and `svcgate ipam pin` load the same way once: see load_once.ts.
 * @module
 */

import type { Cidr } from "../../model/ip.ts";
import type { Logger } from "../../observe/log.ts";
import type { MetricsRegistry } from "../../observe/metrics.ts";
import type { VipPins } from "../../ipam/allocator.ts";
import { VipAllocator } from "../../ipam/vip_allocator.ts";
import { loadIpamState } from "../../ipam/state_file.ts";
import { StateWriter } from "../../ipam/state_writer.ts";
import { type CheckerClock, HealthChecker } from "../../health/checker.ts";
import type { ProbeFn } from "../../health/probe.ts";
import type { ManifestState } from "../manifests/load.ts";
import type { ManifestLimits } from "../manifests/parse_file.ts";
import { ManifestSource } from "../manifests/source.ts";
import type { Source, SourceSink, SourceStatus } from "../source.ts";
import { readManifestLock } from "./manifest_lock.ts";
import { METRICS } from "../../observe/metrics_catalogue.ts";

/** How a {@link StandaloneSource} is set up: the standalone part of the configuration. */
export interface StandaloneSourceOptions {
  /** A manifest file, or a folder read recursively (--manifests). */
  readonly manifests: string;
  /** Where VIPs come from (--service-cidr). */
  readonly serviceCidrs: readonly Cidr[];
  /** Where the VIP allocations are kept (--state-dir). */
  readonly stateDir: string;
  /**
   * VIPs the kernel serves now, by service key, read from the dataplane by the caller: a lost or
   * corrupt state file is rebuilt from them, so a restart moves none of them.
   */
  readonly liveVips: Readonly<Record<string, readonly string[]>>;
  readonly log: Logger;
  readonly metrics: MetricsRegistry;
  /** Health-check probe; the real TCP/HTTP probe by default. */
  readonly probe?: ProbeFn;
  /** Clock and timers of the health checks; the process's by default. */
  readonly clock?: CheckerClock;
  /** Watch the manifest files; default true. */
  readonly watch?: boolean;
  /** Milliseconds between periodic checks of the manifest files; 0 turns them off. Default 2000. */
  readonly checkIntervalMs?: number;
  /** Bounds on each manifest file and object; the defaults of parse_file.ts when absent. */
  readonly limits?: ManifestLimits;
  /** Keep the names of endpoints' pods (`--endpoint-pod-names`). Default false. */
  readonly keepPodNames?: boolean;
}

/**
 * Serves the Services and endpoints of manifest files, with VIPs allocated and unhealthy
 * endpoints taken out.
 *
 * @example
 * ```ts
 * const source = new StandaloneSource({ manifests: "deploy/examples", serviceCidrs, stateDir,
 *   liveVips: await readLiveVips(executor), log, metrics });
 * await source.start({ store, requestSync: () => loop.requestSync() });
 * Deno.addSignalListener("SIGHUP", () => void source.reload());
 * ```
 */
export class StandaloneSource implements Source {
  readonly #options: StandaloneSourceOptions;
  readonly #log: Logger;
  readonly #manifests: ManifestSource;
  readonly #health: HealthChecker;
  readonly #writer: StateWriter;
  /** Set by start(), once the persisted allocations are loaded. */
  #allocator?: VipAllocator;
  #started = false;
  /** Allocation errors of the last pass, for readiness detail. */
  #problems: readonly string[] = [];

  constructor(options: StandaloneSourceOptions) {
    this.#options = options;
    this.#log = options.log.child("ipam");
    this.#writer = new StateWriter(options.stateDir, this.#log, options.metrics);
    this.#health = new HealthChecker({
      onChange: () => this.#manifests.reapply(),
      logger: options.log.child("health"),
      metrics: options.metrics,
      ...(options.probe ? { probe: options.probe } : {}),
      ...(options.clock ? { clock: options.clock } : {}),
    });
    this.#manifests = new ManifestSource({
      path: options.manifests,
      logger: options.log,
      metrics: options.metrics,
      transform: (state) => this.#prepare(state),
      ...(options.limits ? { limits: options.limits } : {}),
      keepPodNames: options.keepPodNames ?? false,
      ...(options.watch !== undefined ? { watch: options.watch } : {}),
      ...(options.checkIntervalMs !== undefined
        ? { checkIntervalMs: options.checkIntervalMs }
        : {}),
    });
  }

  /**
   * Loads the persisted allocations (made to agree with the live VIPs) and the lock file, then the
   * manifests into the store, and starts watching. Rejects when the manifest path cannot be read.
   */
  async start(sink: SourceSink): Promise<void> {
    if (this.#started) {
      throw new Error(
        `Cannot start the standalone source for "${this.#options.manifests}": already started`,
      );
    }
    this.#started = true;
    const loaded = await loadIpamState(this.#options.stateDir, this.#options.liveVips);
    if (loaded.problem) this.#log.warn(loaded.problem, { recovered: loaded.adopted.length });
    for (const p of loaded.liveProblems) this.#log.warn("live VIP not adopted", { problem: p });
    if (loaded.needsSave) this.#writer.save(loaded.state);
    this.#allocator = new VipAllocator(loaded.state, {
      cidrs: this.#options.serviceCidrs,
      pins: await this.#readPins(),
    });
    await this.#manifests.start(sink);
  }

  /** Stops watching and probing, and waits for the last state write. Idempotent. */
  async stop(): Promise<void> {
    await this.#manifests.stop();
    await this.#health.stop();
    await this.#writer.flush();
  }

  /** The manifest files' health: degraded while any file has an error. */
  status(): SourceStatus {
    return this.#manifests.status();
  }

  /** SIGHUP: re-reads the VIP lock file and the manifests, and applies them. */
  async reload(): Promise<void> {
    if (!this.#allocator) return;
    this.#allocator.setPins(await this.#readPins());
    await this.#manifests.reload();
    this.#manifests.reapply();
  }

  /** Readiness detail: services without a VIP, and endpoints the health checks took out. */
  details(): Record<string, unknown> {
    return {
      ipam: { problems: this.#problems },
      health: {
        unhealthy: this.#health.status().filter((e) => e.verdict === "unhealthy")
          .map((e) => `${e.service} ${e.address}:${e.port}`),
      },
    };
  }

  /** The lock file's pins; a bad lock is logged and ignored. */
  async #readPins(): Promise<VipPins | undefined> {
    const { lock } = await readManifestLock(this.#options.manifests);
    if (typeof lock === "string") {
      this.#log.error("ignoring the VIP lock file", { error: lock });
      return undefined;
    }
    return lock?.services;
  }

  /** The manifest state as served: VIPs allocated, unhealthy endpoints marked not ready. */
  #prepare(state: ManifestState): ManifestState {
    const { metrics } = this.#options;
    // While a file is unknown, its services keep their VIPs (they may still route).
    const result = this.#allocator!.allocate(state.services, Date.now(), {
      keepUnlisted: state.partial === true,
    });
    if (result.stateChanged) this.#writer.save(result.state);
    const next = result.errors.map((e) => e.message);
    for (const p of next) {
      if (!this.#problems.includes(p)) this.#log.error("VIP allocation failed", { problem: p });
    }
    for (const w of result.warnings) this.#log.warn("VIP allocation", { warning: w.message });
    this.#problems = next;
    metrics.of(METRICS.ipamErrors)
      .set(next.length);
    this.#health.update(result.services, state.endpointSets);
    return {
      ...state,
      services: result.services,
      endpointSets: this.#health.apply(state.endpointSets),
    };
  }
}
