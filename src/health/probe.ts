/**
 * The real probes: a TCP connect and an HTTP GET, each bounded by an abort signal. The I/O edge of
 * src/health; the checker takes any function of this shape, so its tests can inject outcomes.
 * @module
 */

import type { HealthCheckConfig } from "./config.ts";

/** The address and port a probe goes to. */
export interface ProbeTarget {
  /** IP address, canonical text. */
  readonly address: string;
  readonly port: number;
}

/** What one probe found. */
export interface ProbeOutcome {
  readonly ok: boolean;
  /** Short reason, for logs: `connected`, `HTTP 503`, `Connection refused (os error 111)`. */
  readonly detail: string;
}

/**
 * Probes one endpoint. Must settle soon after `signal` aborts (the checker aborts it at the
 * check's timeout) and should not throw (a throw counts as a failure).
 */
export type ProbeFn = (
  target: ProbeTarget,
  check: HealthCheckConfig,
  signal: AbortSignal,
) => Promise<ProbeOutcome>;

function reason(e: unknown, signal: AbortSignal): string {
  if (signal.aborted) return "timed out";
  if (!(e instanceof Error)) return String(e);
  // fetch says only "fetch failed"; the cause says why (connection refused, reset...).
  const cause = e.cause instanceof Error ? e.cause.message : "";
  return cause ? `${e.message}: ${cause}` : e.message;
}

/**
 * Healthy when a TCP connection opens; the connection is closed at once.
 *
 * @example
 * ```ts
 * await tcpProbe({ address: "198.18.0.10", port: 8080 }, AbortSignal.timeout(1000));
 * ```
 */
export async function tcpProbe(target: ProbeTarget, signal: AbortSignal): Promise<ProbeOutcome> {
  try {
    const conn = await Deno.connect({ hostname: target.address, port: target.port, signal });
    conn.close();
    return { ok: true, detail: "connected" };
  } catch (e) {
    return { ok: false, detail: reason(e, signal) };
  }
}

/**
 * Healthy when `GET path` answers 2xx or 3xx (redirects are not followed). The request goes
 * straight to the endpoint (never through HTTP_PROXY) on a connection used once.
 *
 * @example
 * ```ts
 * await httpProbe({ address: "198.18.0.10", port: 8080 }, "/healthz", AbortSignal.timeout(1000));
 * ```
 */
export async function httpProbe(
  target: ProbeTarget,
  path: string,
  signal: AbortSignal,
): Promise<ProbeOutcome> {
  const host = target.address.includes(":") ? `[${target.address}]` : target.address;
  // A "tcp" transport pins the connection to the endpoint whatever proxy variables say.
  const client = Deno.createHttpClient({
    proxy: { transport: "tcp", hostname: host, port: target.port },
    poolMaxIdlePerHost: 0,
    http2: false,
  });
  try {
    const res = await fetch(`http://${host}:${target.port}${path}`, {
      client,
      signal,
      redirect: "manual",
      headers: { "user-agent": "svcgate-health-check" },
    });
    await res.body?.cancel();
    const ok = res.status >= 200 && res.status < 400;
    return { ok, detail: `HTTP ${res.status}` };
  } catch (e) {
    return { ok: false, detail: reason(e, signal) };
  } finally {
    client.close();
  }
}

/**
 * The default probe: TCP or HTTP as the check says.
 *
 * @example
 * ```ts
 * const checker = new HealthChecker({ probe: realProbe, onChange });
 * ```
 */
export function realProbe(
  target: ProbeTarget,
  check: HealthCheckConfig,
  signal: AbortSignal,
): Promise<ProbeOutcome> {
  return check.kind === "tcp" ? tcpProbe(target, signal) : httpProbe(target, check.path, signal);
}
