/**
 * The proxy's own health, with kube-proxy's semantics (pkg/proxy/healthcheck/proxier_health.go):
 * unhealthy once a change has waited longer than the health timeout without a successful sync;
 * healthy while starting and whenever nothing is pending. `/healthz` is also unhealthy while this
 * node is being deleted or carries the cluster autoscaler's ToBeDeletedByClusterAutoscaler taint
 * (load balancers then drain it); `/livez` looks at the proxy alone. Bodies are kube-proxy's, byte
 * for byte, so probes and scripts written against kube-proxy keep working.
 *
 * Pure: the caller passes the wall clock (milliseconds since the epoch).
 * @module
 */

/** A health answer: HTTP status and JSON body. */
export interface HealthAnswer {
  readonly status: 200 | 503;
  readonly body: string;
}

/**
 * The time as Go's `time.Time.String()` prints it in UTC, which is what kube-proxy's bodies hold:
 * `2025-06-01 12:00:00.25 +0000 UTC` (fraction without trailing zeros, none when whole).
 *
 * @example
 * ```ts
 * goTimeString(0); // "1970-01-01 00:00:00 +0000 UTC"
 * ```
 */
export function goTimeString(ms: number | null): string {
  // Go's zero time, what kube-proxy prints before its first sync.
  if (ms === null) return "0001-01-01 00:00:00 +0000 UTC";
  const iso = new Date(ms).toISOString(); // 2025-06-01T12:00:00.250Z
  const fraction = iso.slice(20, 23).replace(/0+$/, "");
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)}${fraction ? `.${fraction}` : ""} +0000 UTC`;
}

/**
 * Tracks pending changes and successful syncs.
 *
 * @example
 * ```ts
 * const health = new ProxierHealth(60_000);
 * health.queued(Date.now());   // a change arrived
 * health.updated(Date.now());  // and was synced
 * health.healthz(Date.now(), true).status; // 200
 * ```
 */
export class ProxierHealth {
  #oldestPending: number | null = null;
  #lastUpdated: number | null = null;

  /** `timeoutMs`: how long a change may wait for a successful sync (kube-proxy: 2 x sync period). */
  constructor(readonly timeoutMs: number) {}

  /** A change that needs a sync arrived (kube-proxy's QueuedUpdate); the oldest one counts. */
  queued(now: number): void {
    this.#oldestPending ??= now;
  }

  /** A sync succeeded: nothing is pending any more (kube-proxy's Updated). */
  updated(now: number): void {
    this.#oldestPending = null;
    this.#lastUpdated = now;
  }

  /** The wall time of the last successful sync, or null before the first. */
  get lastUpdated(): number | null {
    return this.#lastUpdated;
  }

  /** The proxy's health, node left aside (what a service's health check reports). */
  isHealthy(now: number): boolean {
    return this.#oldestPending === null || now - this.#oldestPending < this.timeoutMs;
  }

  /**
   * `/healthz`: the proxy's health and the node's eligibility. A healthy answer reports the
   * current time as lastUpdated, as kube-proxy does for compatibility with older releases.
   */
  healthz(now: number, nodeEligible: boolean): HealthAnswer {
    const healthy = this.isHealthy(now) && nodeEligible;
    const lastUpdated = healthy ? now : this.#lastUpdated;
    return {
      status: healthy ? 200 : 503,
      body: `{"lastUpdated": ${JSON.stringify(goTimeString(lastUpdated))},"currentTime": ${
        JSON.stringify(goTimeString(now))
      }, "nodeEligible": ${nodeEligible}}`,
    };
  }

  /** `/livez`: the proxy's health alone. */
  livez(now: number): HealthAnswer {
    const healthy = this.isHealthy(now);
    const lastUpdated = healthy ? now : this.#lastUpdated;
    return {
      status: healthy ? 200 : 503,
      body: `{"lastUpdated": ${JSON.stringify(goTimeString(lastUpdated))},"currentTime": ${
        JSON.stringify(goTimeString(now))
      }}`,
    };
  }
}

/** The node facts eligibility reads. */
export interface NodeEligibility {
  readonly deleting: boolean;
  readonly toBeDeleted: boolean;
}

/**
 * Whether this node should receive traffic from load balancers: not being deleted and not tainted
 * ToBeDeletedByClusterAutoscaler. Unknown (no Node object, standalone mode): eligible, as
 * kube-proxy is until its first Node event says otherwise.
 */
export function nodeEligible(node: NodeEligibility | null | undefined): boolean {
  return !node || (!node.deleting && !node.toBeDeleted);
}
