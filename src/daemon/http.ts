/**
 * The daemon's HTTP surface: /healthz and /livez (kube-proxy's semantics and bodies, see
 * proxier_health.ts), /readyz (synced and programmed, with detail), /metrics (Prometheus text).
 * The handler is plain request -> response; the listener is apart.
 * @module
 */

import type { MetricsRegistry } from "../observe/metrics.ts";
import type { HealthAnswer } from "./proxier_health.ts";

/** What readiness is judged on, gathered by the daemon at request time. */
export interface ReadinessDetail {
  readonly ready: boolean;
  readonly [part: string]: unknown;
}

/** What the handler reads. */
export interface HttpState {
  readiness(): ReadinessDetail;
  readonly metrics: MetricsRegistry;
  /** Refreshes gauges read at scrape time (process memory). */
  readonly beforeMetrics?: () => void;
  /** `/healthz` (proxy and node); without it, always "ok". */
  readonly healthz?: () => HealthAnswer;
  /** `/livez` (proxy alone); without it, always "ok". */
  readonly livez?: () => HealthAnswer;
}

function healthResponse(answer: HealthAnswer): Response {
  return new Response(answer.body, {
    status: answer.status,
    headers: { "content-type": "application/json", "x-content-type-options": "nosniff" },
  });
}

/**
 * Answers one request.
 *
 * @example
 * ```ts
 * const res = handleHttp(new Request("http://x/readyz"), state);
 * ```
 */
export function handleHttp(req: Request, state: HttpState): Response {
  const path = new URL(req.url).pathname;
  switch (path) {
    case "/healthz":
      return state.healthz ? healthResponse(state.healthz()) : new Response("ok\n");
    case "/livez":
      return state.livez ? healthResponse(state.livez()) : new Response("ok\n");
    case "/readyz": {
      const detail = state.readiness();
      return new Response(JSON.stringify(detail, null, 2) + "\n", {
        status: detail.ready ? 200 : 503,
        headers: { "content-type": "application/json" },
      });
    }
    case "/metrics":
      state.beforeMetrics?.();
      return new Response(state.metrics.render(), {
        headers: { "content-type": "text/plain; version=0.0.4" },
      });
    default:
      return new Response(`no such path ${JSON.stringify(path)}\n`, { status: 404 });
  }
}
