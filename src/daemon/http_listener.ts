/**
 * The HTTP listeners (/healthz, /readyz, /metrics) with SO_REUSEPORT (`--reuse-port`), so the
 * next svcgate binds beside this one during a rolling update. Deno.serve offers `reusePort` only
 * behind `--unstable-net`; node:http serves a listening descriptor (`listen({ fd })`, which Deno
 * 2.9.6 implements: a connection queued on it before the process started was accepted), so the
 * socket is opened through FFI (dns/serve/tcp_ffi.ts) and node:http serves it, the same
 * Request -> Response handler behind.
 * @module
 */

import http from "node:http";
import { openListeningSocket } from "../dns/serve/tcp_ffi.ts";
import type { HostPort } from "../config/flags.ts";

/** A listener as the daemon stops it. */
export interface HttpListener {
  shutdown(): Promise<void>;
}

/**
 * Serves `handler` on `bind` with SO_REUSEPORT; `onListen` once listening. Throws naming the
 * address when it cannot bind.
 */
export function serveReusePort(
  bind: HostPort,
  handler: (req: Request) => Response | Promise<Response>,
  onListen: () => void,
): HttpListener {
  const fd = openListeningSocket(bind.hostname, bind.port, true, "HTTP");
  const server = http.createServer(async (req, res) => {
    try {
      const url = `http://${bind.hostname}:${bind.port}${req.url ?? "/"}`;
      const headers = new Headers();
      for (const [k, v] of Object.entries(req.headers)) {
        if (typeof v === "string") headers.set(k, v);
      }
      const response = await handler(new Request(url, { method: req.method, headers }));
      const body = new Uint8Array(await response.arrayBuffer());
      res.writeHead(response.status, Object.fromEntries(response.headers));
      res.end(body);
    } catch (e) {
      res.writeHead(500, { "content-type": "text/plain" });
      res.end(`${(e as Error).message}\n`);
    }
  });
  server.listen({ fd }, onListen);
  return {
    shutdown: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections?.();
      }),
  };
}
