/**
 * kube-proxy's sync metrics under its own names (pkg/proxy/metrics/metrics.go), counted by the
 * sync loop beside svcgate's, so kube-proxy's dashboards and alerts keep working after a cutover:
 * sync durations (full and partial), the last sync and last queued timestamps, pending and total
 * Service and endpoint changes, and network programming latency measured from the EndpointSlice's
 * `endpoints.kubernetes.io/last-change-trigger-time`, as kube-proxy and the Kubernetes SLO do.
 *
 * svcgate applies both families in one transaction, so each sync is one observation per family
 * (`ip_family="IPv4"` and `"IPv6"`), as a dual-stack kube-proxy's two proxiers report.
 * @module
 */

import type { ModelStore, PendingChanges, TriggerTime } from "../model/store.ts";
import type { MetricsRegistry } from "../observe/metrics.ts";
import { METRICS } from "../observe/metrics_catalogue.ts";

const FAMILIES = ["IPv4", "IPv6"] as const;

/** The label value of an IP family. */
function familyLabel(family: 4 | 6): string {
  return family === 4 ? "IPv4" : "IPv6";
}

/**
 * Records kube-proxy's metrics for one sync loop.
 *
 * @example
 * ```ts
 * const m = new KubeProxyMetrics(metrics, store, Date.now());
 * m.queued(Date.now());
 * m.committed(commit.pending);
 * m.synced({ full: false, seconds: 0.004, wallNow: Date.now() });
 * ```
 */
export class KubeProxyMetrics {
  readonly #metrics: MetricsRegistry;
  readonly #store: ModelStore;
  /**
   * Trigger times from before this are not measured (kube-proxy's trackerStartTime): at a start,
   * every object listed carries a trigger time from hours or days before.
   */
  readonly #since: number;
  #triggers: TriggerTime[] = [];
  #totals = { services: 0, endpoints: 0 };

  constructor(metrics: MetricsRegistry, store: ModelStore, startedWallMs: number) {
    this.#metrics = metrics;
    this.#store = store;
    this.#since = startedWallMs;
  }

  /** A sync was requested: the last queued timestamp, and the changes pending and seen. */
  queued(wallNow: number): void {
    const m = this.#metrics;
    for (const ip_family of FAMILIES) {
      m.of(METRICS.kubeProxyLastQueuedTimestamp).set(wallNow / 1000, { ip_family });
    }
    const pending = this.#store.pending;
    m.of(METRICS.kubeProxyServiceChangesPending).set(pending.services);
    m.of(METRICS.kubeProxyEndpointChangesPending).set(pending.endpoints);
    this.#countTotals();
  }

  /** The sync took the pending changes in: nothing is pending now; their trigger times wait. */
  committed(pending: PendingChanges): void {
    for (const t of pending.triggerTimes) if (t.time >= this.#since) this.#triggers.push(t);
    this.#metrics.of(METRICS.kubeProxyServiceChangesPending).set(0);
    this.#metrics.of(METRICS.kubeProxyEndpointChangesPending).set(0);
    this.#countTotals();
  }

  /**
   * The dataplane applied a snapshot: durations, the last sync timestamp, and programming latency
   * for every trigger time taken in since the last success.
   */
  synced(
    sync: { readonly full: boolean; readonly seconds: number; readonly wallNow: number },
  ): void {
    const m = this.#metrics;
    for (const ip_family of FAMILIES) {
      m.of(METRICS.kubeProxySyncDuration).observe(sync.seconds, { ip_family });
      m.of(sync.full ? METRICS.kubeProxySyncFullDuration : METRICS.kubeProxySyncPartialDuration)
        .observe(sync.seconds, { ip_family });
      m.of(METRICS.kubeProxyLastTimestamp).set(sync.wallNow / 1000, { ip_family });
    }
    for (const t of this.#triggers) {
      // A trigger time ahead of this clock (clock skew with the control plane) is not a latency.
      const seconds = (sync.wallNow - t.time) / 1000;
      if (seconds >= 0) {
        m.of(METRICS.kubeProxyNetworkProgramming).observe(seconds, {
          ip_family: familyLabel(t.family),
        });
      }
    }
    this.#triggers = [];
  }

  /**
   * The snapshot did not change (writes that cancelled out): as kube-proxy, their trigger times
   * measure nothing, since no programming followed them.
   */
  unchanged(): void {
    this.#triggers = [];
  }

  #countTotals(): void {
    const now = this.#store.changeTotals;
    this.#metrics.of(METRICS.kubeProxyServiceChangesTotal).inc(
      undefined,
      now.services - this.#totals.services,
    );
    this.#metrics.of(METRICS.kubeProxyEndpointChangesTotal).inc(
      undefined,
      now.endpoints - this.#totals.endpoints,
    );
    this.#totals = { ...now };
  }
}
