// Real probes against real servers on loopback (the only network these unit tests touch).
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { httpProbe, tcpProbe } from "./probe.ts";

/** A port with nothing listening: bound, then released. */
function closedPort(hostname: string): number {
  const l = Deno.listen({ hostname, port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

Deno.test("tcpProbe: an open port is healthy, a closed one is refused (IPv4 and IPv6)", async () => {
  for (const hostname of ["127.0.0.1", "::1"]) {
    const listener = Deno.listen({ hostname, port: 0 });
    const port = (listener.addr as Deno.NetAddr).port;
    const accepting = (async () => {
      for await (const conn of listener) conn.close();
    })();
    try {
      assertEquals(
        await tcpProbe({ address: hostname, port }, AbortSignal.timeout(2000)),
        { ok: true, detail: "connected" },
      );
    } finally {
      listener.close();
      await accepting.catch(() => {});
    }
    const refused = await tcpProbe(
      { address: hostname, port: closedPort(hostname) },
      AbortSignal.timeout(2000),
    );
    assertEquals(refused, { ok: false, detail: "Connection refused (os error 111)" });
  }
});

Deno.test("httpProbe: 2xx and 3xx are healthy, 4xx/5xx and timeouts are not; proxies are bypassed", async () => {
  const stalls: (() => void)[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const path = new URL(req.url).pathname;
    if (path === "/healthz") return new Response("ok");
    if (path === "/moved") return new Response(null, { status: 302, headers: { location: "/x" } });
    if (path === "/missing") return new Response("no", { status: 404 });
    if (path === "/broken") return new Response("no", { status: 503 });
    if (path === "/agent") return new Response(req.headers.get("user-agent"));
    // /stall: answers only when the test lets it (after the probe gave up).
    await new Promise<void>((resolve) => stalls.push(resolve));
    return new Response("late");
  });
  const port = server.addr.port;
  const saved = Deno.env.get("HTTP_PROXY");
  // A proxy that does not exist: a probe that used it would fail.
  Deno.env.set("HTTP_PROXY", "http://127.0.0.1:1");
  try {
    const probe = (path: string, ms = 2000) =>
      httpProbe({ address: "127.0.0.1", port }, path, AbortSignal.timeout(ms));
    assertEquals(await probe("/healthz"), { ok: true, detail: "HTTP 200" });
    assertEquals(await probe("/moved"), { ok: true, detail: "HTTP 302" });
    assertEquals(await probe("/missing"), { ok: false, detail: "HTTP 404" });
    assertEquals(await probe("/broken"), { ok: false, detail: "HTTP 503" });
    assertEquals(await probe("/stall", 200), { ok: false, detail: "timed out" });
    const refused = await httpProbe(
      { address: "127.0.0.1", port: closedPort("127.0.0.1") },
      "/",
      AbortSignal.timeout(2000),
    );
    assertEquals(refused.ok, false);
  } finally {
    if (saved === undefined) Deno.env.delete("HTTP_PROXY");
    else Deno.env.set("HTTP_PROXY", saved);
    for (const s of stalls) s();
    await server.shutdown();
  }
});

Deno.test("httpProbe: IPv6 endpoints", async () => {
  const server = Deno.serve({ hostname: "::1", port: 0, onListen() {} }, () => new Response("ok"));
  try {
    assertEquals(
      await httpProbe({ address: "::1", port: server.addr.port }, "/", AbortSignal.timeout(2000)),
      { ok: true, detail: "HTTP 200" },
    );
  } finally {
    await server.shutdown();
  }
});
