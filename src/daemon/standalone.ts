/**
 * Standalone mode's source: manifest files, then VIP allocation, then health-check overrides,
 * then the store. Allocations are saved atomically under --state-dir (one write at a time, retried
 * on failure); a health verdict that flips re-runs the pipeline on the last loaded files.
 * @module
 */

import type { Cidr } from "../model/ip.ts";
import type { Logger } from "../observe/log.ts";
import type { MetricsRegistry } from "../observe/metrics.ts";
import { VipAllocator } from "../ipam/allocator.ts";
import { vipLockPath } from "../ipam/lock.ts";
import type { IpamState } from "../ipam/state.ts";
import { loadIpamState, readVipLock, saveIpamState } from "../ipam/state_file.ts";
import { HealthChecker } from "../health/checker.ts";
import { ManifestSource } from "../sources/manifests/source.ts";
import type { ManifestState } from "../sources/manifests/load.ts";

/** What standalone mode needs from the configuration. */
export interface StandaloneOptions {
  readonly manifests: string;
  readonly serviceCidrs: readonly Cidr[];
  readonly stateDir: string;
  /** VIPs the kernel serves now, by service key, so a lost state file moves none of them. */
  readonly liveVips: Readonly<Record<string, readonly string[]>>;
  readonly log: Logger;
  readonly metrics: MetricsRegistry;
}

/** The assembled standalone source and its lifecycle hooks. */
export interface Standalone {
  readonly source: ManifestSource;
  readonly health: HealthChecker;
  /** SIGHUP: re-read the VIP lock file and the manifests. */
  reload(): Promise<void>;
  /** Stops health checks and waits for the last state write. */
  stop(): Promise<void>;
  /** Allocation problems of the last load, for readiness detail. */
  problems(): readonly string[];
}

/** Serialises state writes: at most one in flight, the newest state wins, failures retry. */
class StateWriter {
  #pending: IpamState | null = null;
  #running: Promise<void> | null = null;
  constructor(
    private readonly dir: string,
    private readonly log: Logger,
    private readonly metrics: MetricsRegistry,
  ) {}

  save(state: IpamState): void {
    this.#pending = state;
    this.#running ??= this.#drain();
  }

  async #drain(): Promise<void> {
    let delayMs = 100;
    while (this.#pending) {
      const state = this.#pending;
      this.#pending = null;
      try {
        await saveIpamState(this.dir, state);
        delayMs = 100;
      } catch (e) {
        this.metrics.counter("svcgate_ipam_save_failures_total", "Failed writes of ipam.json")
          .inc();
        this.log.error("cannot save VIP allocations; retrying", { dir: this.dir, error: e });
        this.#pending ??= state;
        await new Promise((r) => setTimeout(r, delayMs));
        delayMs = Math.min(delayMs * 2, 10_000);
      }
    }
    this.#running = null;
  }

  async flush(): Promise<void> {
    while (this.#running) await this.#running;
  }
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isDirectory;
  } catch {
    return false;
  }
}

/** Reads the VIP lock beside the manifests; a bad lock is logged and ignored. */
async function readPins(
  manifests: string,
  log: Logger,
): Promise<Readonly<Record<string, readonly string[]>> | undefined> {
  const lock = await readVipLock(vipLockPath(manifests, await isDirectory(manifests)));
  if (typeof lock === "string") {
    log.error("ignoring the VIP lock file", { error: lock });
    return undefined;
  }
  return lock?.services;
}

/**
 * Builds standalone mode's source.
 *
 * @example
 * ```ts
 * const standalone = await createStandalone({ manifests: "deploy/examples", serviceCidrs,
 *   stateDir, liveVips: {}, log, metrics });
 * await standalone.source.start(sink);
 * ```
 */
export async function createStandalone(options: StandaloneOptions): Promise<Standalone> {
  const log = options.log.child("ipam");
  const loaded = await loadIpamState(options.stateDir, options.liveVips);
  if (loaded.problem) log.warn(loaded.problem, { recovered: loaded.adopted.length });
  for (const p of loaded.liveProblems) log.warn("live VIP not adopted", { problem: p });
  const writer = new StateWriter(options.stateDir, log, options.metrics);
  if (loaded.needsSave) writer.save(loaded.state);
  const allocator = new VipAllocator(loaded.state, {
    cidrs: options.serviceCidrs,
    pins: await readPins(options.manifests, log),
  });
  let problems: string[] = [];
  let source: ManifestSource | null = null;
  const health = new HealthChecker({
    onChange: () => source?.reapply(),
    logger: options.log.child("health"),
    metrics: options.metrics,
  });
  source = new ManifestSource({
    path: options.manifests,
    logger: options.log,
    metrics: options.metrics,
    transform(state: ManifestState): ManifestState {
      // While a file is unknown, its services keep their VIPs (they may still route).
      const result = allocator.allocate(state.services, Date.now(), {
        keepUnlisted: state.partial === true,
      });
      if (result.stateChanged) writer.save(result.state);
      const next = result.errors.map((e) => e.message);
      for (const p of next) {
        if (!problems.includes(p)) log.error("VIP allocation failed", { problem: p });
      }
      for (const w of result.warnings) log.warn("VIP allocation", { warning: w.message });
      problems = next;
      options.metrics.gauge("svcgate_ipam_errors", "Services whose VIP could not be allocated")
        .set(problems.length);
      health.update(result.services, state.endpointSets);
      return {
        ...state,
        services: result.services,
        endpointSets: health.apply(state.endpointSets),
      };
    },
  });
  return {
    source,
    health,
    async reload() {
      allocator.setPins(await readPins(options.manifests, log));
      await source!.reload();
      source!.reapply();
    },
    async stop() {
      await health.stop();
      await writer.flush();
    },
    problems: () => problems,
  };
}
