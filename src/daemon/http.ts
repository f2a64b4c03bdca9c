/**
 * The daemon's HTTP surface: /healthz (alive), /readyz (synced and programmed, with detail),
 * /metrics (Prometheus text). The handler is plain request -> response; the listener is apart.
 * @module
 */

import type { MetricsRegistry } from "../observe/metrics.ts";

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
    case "/livez":
      return new Response("ok\n");
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
