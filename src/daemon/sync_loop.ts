/**
 * The sync loop: commits the model into a snapshot, has the dataplane apply it, and only then
 * publishes it to DNS. Bursts inside the minimum sync period are coalesced; failures retry with
 * backoff while the last good state keeps serving. It never throws.
 * @module
 */

import type { ModelStore } from "../model/store.ts";
import type { Snapshot } from "../model/snapshot.ts";
import type { Logger } from "../observe/log.ts";
import type { MetricsRegistry } from "../observe/metrics.ts";
import { METRICS } from "../observe/metrics_catalogue.ts";
import type { ProxierHealth } from "./proxier_health.ts";
import { KubeProxyMetrics } from "./kube_proxy_metrics.ts";

/**
 * The dataplane as the loop sees it: apply a snapshot atomically, or throw and change nothing.
 * A result with `mode: "full"` says the apply reconciled against the kernel (kube-proxy's "full
 * sync", for its metrics); anything else counts as partial.
 */
export interface SnapshotApplier {
  apply(snapshot: Snapshot): Promise<unknown>;
}

/** Timers and clock, injected so tests can drive them. */
export interface LoopClock {
  /** Monotonic milliseconds, for durations. */
  now(): number;
  /** Wall-clock milliseconds since the epoch, for timestamps (default Date.now). */
  wallNow?(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(id: unknown): void;
}

/** The real clock. */
export const realClock: LoopClock = {
  now: () => performance.now(),
  wallNow: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (id) => clearTimeout(id as number),
};

/** Options of {@link SyncLoop}. */
export interface SyncLoopOptions {
  readonly store: ModelStore;
  readonly dataplane: SnapshotApplier;
  /** Called with each snapshot after the dataplane committed it (DNS answers from it). */
  readonly publish: (snapshot: Snapshot) => void;
  readonly minSyncPeriodMs: number;
  readonly log: Logger;
  readonly metrics: MetricsRegistry;
  readonly clock?: LoopClock;
  /** First retry delay after a failure; doubles up to maxBackoffMs. */
  readonly initialBackoffMs?: number;
  readonly maxBackoffMs?: number;
  /** Told of every requested sync and every successful one (/healthz, /livez). */
  readonly health?: ProxierHealth;
}

/**
 * Runs syncs on request.
 *
 * @example
 * ```ts
 * const loop = new SyncLoop({ store, dataplane, publish: (s) => dns.publish(s), minSyncPeriodMs: 5,
 *   log, metrics });
 * store.setService(service);
 * loop.requestSync();
 * ```
 */
export class SyncLoop {
  #o: SyncLoopOptions;
  #clock: LoopClock;
  #timer: unknown = null;
  #running = false;
  #again = false;
  #stopped = false;
  #lastStart = -Infinity;
  #backoffMs = 0;
  #pendingSince: number | null = null;
  #applied: Snapshot | null = null;
  #target: Snapshot | null = null;
  #idleWaiters: (() => void)[] = [];
  #lastError: string | undefined;
  readonly #kubeProxy: KubeProxyMetrics;

  constructor(options: SyncLoopOptions) {
    this.#o = options;
    this.#clock = options.clock ?? realClock;
    this.#kubeProxy = new KubeProxyMetrics(options.metrics, options.store, this.#wallNow());
  }

  /** The snapshot the dataplane last committed (and DNS serves), or null before the first. */
  get applied(): Snapshot | null {
    return this.#applied;
  }

  /** The last sync error, or undefined after a success. */
  get lastError(): string | undefined {
    return this.#lastError;
  }

  #wallNow(): number {
    return this.#clock.wallNow?.() ?? Date.now();
  }

  /** Asks for a sync; cheap and safe to call after every change. */
  requestSync(): void {
    if (this.#stopped) return;
    const wallNow = this.#wallNow();
    this.#o.health?.queued(wallNow);
    this.#kubeProxy.queued(wallNow);
    this.#pendingSince ??= this.#clock.now();
    if (this.#running) {
      this.#again = true;
      return;
    }
    if (this.#timer !== null) return;
    const wait = Math.max(
      this.#backoffMs,
      this.#lastStart + this.#o.minSyncPeriodMs - this.#clock.now(),
      0,
    );
    this.#timer = this.#clock.setTimeout(() => {
      this.#timer = null;
      this.#run();
    }, wait);
  }

  /** Resolves once no sync is running or scheduled (for tests and orderly shutdown). */
  whenIdle(): Promise<void> {
    if (!this.#running && this.#timer === null) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /** Stops scheduling; a sync in flight finishes. */
  stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer !== null) {
      this.#clock.clearTimeout(this.#timer);
      this.#timer = null;
    }
    return this.whenIdle();
  }

  async #run(): Promise<void> {
    if (this.#stopped) return this.#settle();
    this.#running = true;
    this.#again = false;
    const started = this.#clock.now();
    this.#lastStart = started;
    const pendingSince = this.#pendingSince ?? started;
    this.#pendingSince = null;
    const { metrics, log } = this.#o;
    try {
      const { snapshot, pending } = this.#o.store.commit();
      this.#kubeProxy.committed(pending);
      this.#target = snapshot;
      if (snapshot === this.#applied) this.#kubeProxy.unchanged();
      else {
        const result = await this.#o.dataplane.apply(snapshot);
        this.#applied = snapshot;
        this.#o.publish(snapshot);
        const done = this.#clock.now();
        this.#kubeProxy.synced({
          full: (result as { mode?: unknown } | undefined)?.mode === "full",
          seconds: (done - started) / 1000,
          wallNow: this.#wallNow(),
        });
        metrics.of(METRICS.networkProgramming).observe((done - pendingSince) / 1000);
        metrics.of(METRICS.syncDuration)
          .observe((done - started) / 1000);
        metrics.of(METRICS.snapshotVersion)
          .set(snapshot.version);
        metrics.of(METRICS.services)
          .set(snapshot.services.size);
        log.debug("synced", {
          version: snapshot.version,
          services: snapshot.services.size,
          ms: Math.round((done - started) * 100) / 100,
        });
      }
      this.#backoffMs = 0;
      this.#lastError = undefined;
      this.#o.health?.updated(this.#wallNow());
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e);
      this.#lastError = message;
      this.#backoffMs = Math.min(
        this.#o.maxBackoffMs ?? 30_000,
        this.#backoffMs === 0 ? (this.#o.initialBackoffMs ?? 100) : this.#backoffMs * 2,
      );
      metrics.of(METRICS.syncFailures)
        .inc();
      log.error("sync failed; the previous state keeps serving, retrying", {
        error: message,
        retryInMs: this.#backoffMs,
      });
      // The failed snapshot is retried even when nothing new arrives.
      this.#pendingSince ??= pendingSince;
      this.#again = true;
    } finally {
      this.#running = false;
    }
    if (this.#again && !this.#stopped) this.requestSync();
    this.#settle();
  }

  #settle(): void {
    if (this.#running || this.#timer !== null) return;
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const w of waiters) w();
  }

  /** True when the snapshot applied is the newest one committed. */
  get converged(): boolean {
    return this.#applied !== null && this.#applied === this.#target && !this.#o.store.hasChanges;
  }
}
