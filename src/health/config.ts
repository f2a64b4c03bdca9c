/**
 * Active health-check settings, read from a Service's annotations. Pure.
 *
 * | annotation                                   | value                         | default |
 * | -------------------------------------------- | ----------------------------- | ------- |
 * | `svcgate.io/health-check`                    | `tcp`, `http`, `http:/PATH`   | (off)   |
 * | `svcgate.io/health-check-interval`           | duration (`5s`, `500ms`)      | 5s      |
 * | `svcgate.io/health-check-timeout`            | duration, at most the interval | 1s (or the interval, if shorter) |
 * | `svcgate.io/health-check-healthy-threshold`  | successes in a row            | 2       |
 * | `svcgate.io/health-check-unhealthy-threshold`| failures in a row             | 3       |
 * | `svcgate.io/health-check-port`               | port number on the endpoints  | the first service port's target port |
 * @module
 */

import type { Service } from "../model/types.ts";
import { parseDuration } from "../model/text.ts";

/** The annotation that turns checks on: `tcp`, `http` or `http:/PATH`. */
export const HEALTH_CHECK_ANNOTATION = "svcgate.io/health-check";
/** Time between probes of one endpoint (default 5s). */
export const HEALTH_CHECK_INTERVAL_ANNOTATION = "svcgate.io/health-check-interval";
/** Time a probe may take (default 1s, at most the interval). */
export const HEALTH_CHECK_TIMEOUT_ANNOTATION = "svcgate.io/health-check-timeout";
/** Successes in a row that bring an endpoint (back) in (default 2). */
export const HEALTH_CHECK_HEALTHY_THRESHOLD_ANNOTATION =
  "svcgate.io/health-check-healthy-threshold";
/** Failures in a row that take an endpoint out (default 3). */
export const HEALTH_CHECK_UNHEALTHY_THRESHOLD_ANNOTATION =
  "svcgate.io/health-check-unhealthy-threshold";
/** Port probed on every endpoint instead of the first service port's target port. */
export const HEALTH_CHECK_PORT_ANNOTATION = "svcgate.io/health-check-port";

const KNOWN = new Set([
  HEALTH_CHECK_ANNOTATION,
  HEALTH_CHECK_INTERVAL_ANNOTATION,
  HEALTH_CHECK_TIMEOUT_ANNOTATION,
  HEALTH_CHECK_HEALTHY_THRESHOLD_ANNOTATION,
  HEALTH_CHECK_UNHEALTHY_THRESHOLD_ANNOTATION,
  HEALTH_CHECK_PORT_ANNOTATION,
]);

/** Defaults for settings a service does not set. */
export const HEALTH_CHECK_DEFAULTS = Object.freeze({
  intervalMs: 5000,
  timeoutMs: 1000,
  healthyThreshold: 2,
  unhealthyThreshold: 3,
});

/** Shortest interval accepted: probing faster only loads the backends. */
export const MIN_INTERVAL_MS = 100;

/** One service's check. */
export interface HealthCheckConfig {
  readonly kind: "tcp" | "http";
  /** Request path for `http`, starting with "/"; "" for `tcp`. */
  readonly path: string;
  readonly intervalMs: number;
  readonly timeoutMs: number;
  readonly healthyThreshold: number;
  readonly unhealthyThreshold: number;
  /** Port probed on every endpoint; absent means the first service port's target port. */
  readonly port?: number;
}

/** Result of {@link parseHealthCheck}. */
export interface ParsedHealthCheck {
  /** The check, or null when the service has none or its annotations are invalid. */
  readonly config: HealthCheckConfig | null;
  /** Every problem found, each starting with the service key. */
  readonly errors: readonly string[];
}

/** Formats milliseconds back to a short duration for messages (`5s`, `250ms`). */
export function formatDuration(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}

/**
 * Reads a service's health check from its annotations. No `svcgate.io/health-check` annotation
 * means no check (endpoints count as declared); any invalid value means no check and an error.
 *
 * @example
 * ```ts
 * const { config, errors } = parseHealthCheck(service);
 * // service annotated svcgate.io/health-check: "http:/healthz" ->
 * // config = { kind: "http", path: "/healthz", intervalMs: 5000, timeoutMs: 1000, ... }
 * ```
 */
export function parseHealthCheck(service: Service): ParsedHealthCheck {
  const key = `${service.namespace}/${service.name}`;
  const a = service.annotations;
  const errors: string[] = [];
  const bad = (name: string, value: string, what: string) =>
    errors.push(`${key}: annotation ${name} ${JSON.stringify(value)} ${what}`);

  for (const name of Object.keys(a).sort()) {
    if (name.startsWith(`${HEALTH_CHECK_ANNOTATION}-`) && !KNOWN.has(name)) {
      errors.push(`${key}: annotation ${name} is not a known svcgate.io/health-check-* annotation`);
    }
  }
  const main = a[HEALTH_CHECK_ANNOTATION];
  if (main === undefined) {
    for (const name of Object.keys(a).sort()) {
      if (KNOWN.has(name)) {
        errors.push(`${key}: annotation ${name} is set but ${HEALTH_CHECK_ANNOTATION} is not`);
      }
    }
    return { config: null, errors };
  }

  let kind: "tcp" | "http" | null = null;
  let path = "";
  const mainValue = main.trim();
  if (mainValue === "tcp") kind = "tcp";
  else if (mainValue === "http") [kind, path] = ["http", "/"];
  else if (mainValue.startsWith("http:")) {
    path = mainValue.slice("http:".length);
    if (!path.startsWith("/")) {
      bad(HEALTH_CHECK_ANNOTATION, main, `has a path not starting with "/"`);
    } else if (!/^[!-~]+$/.test(path)) {
      // Printable ASCII only: the path goes verbatim into the request line.
      bad(
        HEALTH_CHECK_ANNOTATION,
        main,
        "has a path with spaces or characters other than printable ASCII",
      );
    } else kind = "http";
  } else bad(HEALTH_CHECK_ANNOTATION, main, "is not one of tcp, http, http:/PATH");

  const duration = (name: string, fallback: number): number => {
    const value = a[name];
    if (value === undefined) return fallback;
    const parsed = parseDuration(value.trim());
    const ms = parsed === null ? null : Math.round(parsed);
    if (ms === null) bad(name, value, "is not a duration");
    else if (ms <= 0) bad(name, value, "is not longer than zero");
    return ms ?? fallback;
  };
  const count = (name: string, fallback: number): number => {
    const value = a[name];
    if (value === undefined) return fallback;
    const t = value.trim();
    if (!/^\d+$/.test(t) || Number(t) < 1 || Number(t) > 1000) {
      bad(name, value, "is not a whole number from 1 to 1000");
      return fallback;
    }
    return Number(t);
  };

  const intervalMs = duration(HEALTH_CHECK_INTERVAL_ANNOTATION, HEALTH_CHECK_DEFAULTS.intervalMs);
  // The default timeout shrinks with a short interval, so `interval: 500ms` alone is valid.
  const timeoutMs = duration(
    HEALTH_CHECK_TIMEOUT_ANNOTATION,
    Math.min(HEALTH_CHECK_DEFAULTS.timeoutMs, intervalMs),
  );
  const healthyThreshold = count(
    HEALTH_CHECK_HEALTHY_THRESHOLD_ANNOTATION,
    HEALTH_CHECK_DEFAULTS.healthyThreshold,
  );
  const unhealthyThreshold = count(
    HEALTH_CHECK_UNHEALTHY_THRESHOLD_ANNOTATION,
    HEALTH_CHECK_DEFAULTS.unhealthyThreshold,
  );
  if (errors.length === 0 && intervalMs < MIN_INTERVAL_MS) {
    bad(
      HEALTH_CHECK_INTERVAL_ANNOTATION,
      a[HEALTH_CHECK_INTERVAL_ANNOTATION],
      `is shorter than the minimum ${formatDuration(MIN_INTERVAL_MS)}`,
    );
  }
  if (errors.length === 0 && timeoutMs > intervalMs) {
    bad(
      HEALTH_CHECK_TIMEOUT_ANNOTATION,
      a[HEALTH_CHECK_TIMEOUT_ANNOTATION],
      `is longer than the interval (${formatDuration(intervalMs)})`,
    );
  }

  let port: number | undefined;
  const portText = a[HEALTH_CHECK_PORT_ANNOTATION];
  if (portText !== undefined) {
    const t = portText.trim();
    if (!/^\d+$/.test(t) || Number(t) < 1 || Number(t) > 65535) {
      bad(HEALTH_CHECK_PORT_ANNOTATION, portText, "is not a port (1-65535)");
    } else port = Number(t);
  } else if (service.ports.length === 0) {
    errors.push(`${key}: has no ports to check; set ${HEALTH_CHECK_PORT_ANNOTATION}`);
  } else if (service.ports[0].protocol !== "TCP") {
    errors.push(
      `${key}: its first port is ${service.ports[0].protocol}; a ${
        kind ?? "tcp"
      } check needs ${HEALTH_CHECK_PORT_ANNOTATION}`,
    );
  }

  if (errors.length > 0 || kind === null) return { config: null, errors };
  return {
    config: {
      kind,
      path,
      intervalMs,
      timeoutMs,
      healthyThreshold,
      unhealthyThreshold,
      ...(port !== undefined ? { port } : {}),
    },
    errors,
  };
}
