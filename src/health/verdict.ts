/**
 * The per-endpoint health state machine: consecutive successes and failures against thresholds.
 * Pure.
 *
 * An endpoint starts `unknown` (it then counts as declared, so a restart never blackholes a
 * service while the first probes run). It becomes `healthy` after `healthyThreshold` successes in
 * a row and `unhealthy` after `unhealthyThreshold` failures in a row; one result of the other kind
 * resets the count, so a flapping endpoint does not flip on every probe.
 * @module
 */

/** What the checks concluded about one endpoint. */
export type Verdict = "unknown" | "healthy" | "unhealthy";

/** Thresholds of a check. */
export interface Thresholds {
  readonly healthyThreshold: number;
  readonly unhealthyThreshold: number;
}

/** The state of one endpoint. */
export interface EndpointHealth {
  readonly verdict: Verdict;
  /** Successes in a row (capped at the threshold). */
  readonly successes: number;
  /** Failures in a row (capped at the threshold). */
  readonly failures: number;
}

/** Where every endpoint starts. */
export const INITIAL_HEALTH: EndpointHealth = Object.freeze({
  verdict: "unknown",
  successes: 0,
  failures: 0,
});

/**
 * The state after one probe result.
 *
 * @example
 * ```ts
 * let h = INITIAL_HEALTH;
 * for (const ok of [false, false, false]) h = recordProbe(h, ok, { healthyThreshold: 2, unhealthyThreshold: 3 });
 * h.verdict; // "unhealthy"
 * ```
 */
export function recordProbe(h: EndpointHealth, ok: boolean, t: Thresholds): EndpointHealth {
  if (ok) {
    const successes = Math.min(h.successes + 1, t.healthyThreshold);
    const verdict = successes >= t.healthyThreshold ? "healthy" : h.verdict;
    return { verdict, successes, failures: 0 };
  }
  const failures = Math.min(h.failures + 1, t.unhealthyThreshold);
  const verdict = failures >= t.unhealthyThreshold ? "unhealthy" : h.verdict;
  return { verdict, successes: 0, failures };
}

/**
 * True when an endpoint with this verdict must be taken out of rotation. Only `unhealthy` does:
 * `unknown` keeps the declared readiness.
 */
export function isOut(verdict: Verdict): boolean {
  return verdict === "unhealthy";
}
