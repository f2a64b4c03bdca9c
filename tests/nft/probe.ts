/**
 * A client that runs inside a lab namespace and reports, as one JSON line, what the lab's pod
 * servers answered. One process makes many connections, so tests need not spawn one per try.
 *
 * Usage (deno run --allow-net probe.ts MODE …):
 * - `tcp HOST PORT COUNT [TIMEOUT_MS] [PARALLEL]`: COUNT HTTP requests, one connection each;
 *   prints `{"answers": {"pod-0": n, …}, "errors": {"ConnectionRefused": n, …}, "maxErrorMs": x}`.
 * - `load HOST PORT DURATION_MS [PARALLEL] [GAP_MS]`: connections back to back (or GAP_MS apart)
 *   for a while; prints
 *   `{"ok": n, "failed": n, "errors": {…}, "answers": {…}}`.
 * - `udp HOST PORT DURATION_MS INTERVAL_MS [SOURCE_PORT]`: one UDP socket (one conntrack flow)
 *   sends every INTERVAL_MS; prints `{"replies": [[ms, "pod-1"], …]}` with ms since start.
 * - `tcpseq HOST PORT COUNT GAP_MS`: COUNT connections GAP_MS apart, in order; prints
 *   `{"sequence": ["pod-0", "ERR:ConnectionRefused", …]}`.
 * @module
 */

import dgram from "node:dgram";

const [mode, host, portText, ...rest] = Deno.args;
const port = Number(portText);
const encoder = new TextEncoder();
const decoder = new TextDecoder();

function errorName(e: unknown): string {
  if (e instanceof Error) {
    if (e.name && e.name !== "Error") return e.name;
    return e.message.split(":")[0];
  }
  return String(e);
}

/** One HTTP request over a fresh connection; resolves to the pod name. */
async function ask(timeoutMs: number): Promise<string> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(Object.assign(new Error("timeout"), { name: "TimedOut" })),
      timeoutMs,
    );
  });
  let conn: Deno.TcpConn | null = null;
  try {
    const work = (async () => {
      conn = await Deno.connect({ hostname: host, port });
      await conn.write(encoder.encode("GET / HTTP/1.0\r\n\r\n"));
      let text = "";
      const buf = new Uint8Array(4096);
      while (true) {
        const n = await conn.read(buf);
        if (n === null) break;
        text += decoder.decode(buf.subarray(0, n));
      }
      const body = text.split("\r\n\r\n")[1]?.trim();
      if (!body) throw Object.assign(new Error("empty reply"), { name: "EmptyReply" });
      return body;
    })();
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
    try {
      (conn as Deno.TcpConn | null)?.close();
    } catch { /* closed */ }
  }
}

function bump(m: Record<string, number>, k: string): void {
  m[k] = (m[k] ?? 0) + 1;
}

if (mode === "tcp") {
  const [countText, timeoutText = "2000", parallelText = "4"] = rest;
  const count = Number(countText), parallel = Number(parallelText);
  const answers: Record<string, number> = {}, errors: Record<string, number> = {};
  let next = 0, maxErrorMs = 0;
  await Promise.all(Array.from({ length: parallel }, async () => {
    while (next < count) {
      next++;
      const t0 = performance.now();
      try {
        bump(answers, await ask(Number(timeoutText)));
      } catch (e) {
        bump(errors, errorName(e));
        maxErrorMs = Math.max(maxErrorMs, performance.now() - t0);
      }
    }
  }));
  console.log(JSON.stringify({ answers, errors, maxErrorMs: Math.round(maxErrorMs) }));
} else if (mode === "load") {
  const [durationText, parallelText = "2", gapText = "0"] = rest;
  const end = performance.now() + Number(durationText);
  const gapMs = Number(gapText);
  const answers: Record<string, number> = {}, errors: Record<string, number> = {};
  let ok = 0, failed = 0;
  await Promise.all(Array.from({ length: Number(parallelText) }, async () => {
    while (performance.now() < end) {
      try {
        bump(answers, await ask(2000));
        ok++;
      } catch (e) {
        bump(errors, errorName(e));
        failed++;
      }
      if (gapMs > 0) await new Promise((r) => setTimeout(r, gapMs));
    }
  }));
  console.log(JSON.stringify({ ok, failed, errors, answers }));
} else if (mode === "tcpseq") {
  const [countText, gapText] = rest;
  const sequence: string[] = [];
  for (let i = 0; i < Number(countText); i++) {
    try {
      sequence.push(await ask(1000));
    } catch (e) {
      sequence.push(`ERR:${errorName(e)}`);
    }
    await new Promise((r) => setTimeout(r, Number(gapText)));
  }
  console.log(JSON.stringify({ sequence }));
} else if (mode === "udp") {
  const [durationText, intervalText, sourcePortText = "0"] = rest;
  const socket = dgram.createSocket(host.includes(":") ? "udp6" : "udp4");
  const replies: [number, string][] = [];
  const t0 = performance.now();
  socket.on(
    "message",
    (msg) => replies.push([Math.round(performance.now() - t0), msg.toString().trim()]),
  );
  await new Promise<void>((resolve) => socket.bind(Number(sourcePortText), resolve));
  const timer = setInterval(() => socket.send("hi", port, host), Number(intervalText));
  await new Promise((r) => setTimeout(r, Number(durationText)));
  clearInterval(timer);
  await new Promise((r) => setTimeout(r, 200));
  socket.close();
  console.log(JSON.stringify({ replies }));
} else {
  console.error(`probe.ts: unknown mode "${mode}"`);
  Deno.exit(2);
}
// Connections abandoned after a timeout would keep the process alive until the kernel gives up.
Deno.exit(0);
