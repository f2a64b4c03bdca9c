/**
 * A steady DNS load for end-to-end tests and benchmarks: a process (run it in the lab's node
 * namespace) that sends UDP A queries for one name at a fixed rate, each with its own id and a
 * timeout, until stdin closes or the duration ends, then prints one JSON line: every query's send
 * time (epoch ms) and outcome (latency in ms, or null when it failed). A query fails when no reply
 * came within the timeout or the reply was not NOERROR with an address.
 *
 * The caller cuts the samples into windows ({@link windowStats}), so a test can ask "how did DNS do
 * while the daemon rejected this file".
 *
 * Usage: `deno run --allow-net tests/support/dns_load.ts SERVER PORT NAME [--qps=500]
 *   [--timeout-ms=1000] [--max-seconds=600]`
 * @module
 */

import dgram from "node:dgram";
import { decodeReply, encodeQuery, epochMs } from "../bench/kube_daemon_probe.ts";

/** One query: when it was sent (epoch ms) and its latency in ms, or null when it failed. */
export type Sample = readonly [sentAt: number, latencyMs: number | null];

/** Outcome of the queries sent in a window. */
export interface WindowStats {
  readonly sent: number;
  readonly failed: number;
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
}

/** The queries sent in [from, to) epoch ms: count, failures and latency percentiles (ms). */
export function windowStats(samples: readonly Sample[], from: number, to: number): WindowStats {
  const inWindow = samples.filter(([at]) => at >= from && at < to);
  const ok = inWindow.flatMap(([, ms]) => ms === null ? [] : [ms]).sort((a, b) => a - b);
  const pct = (p: number) =>
    ok.length === 0 ? NaN : ok[Math.min(ok.length - 1, Math.ceil((p / 100) * ok.length) - 1)];
  return {
    sent: inWindow.length,
    failed: inWindow.length - ok.length,
    p50: pct(50),
    p99: pct(99),
    max: ok.length ? ok[ok.length - 1] : NaN,
  };
}

/** `sent 2500, failed 0, p50 0.31 ms, p99 1.2 ms, max 3.4 ms`. */
export function formatStats(s: WindowStats): string {
  const ms = (v: number) => Number.isNaN(v) ? "n/a" : `${v.toFixed(v < 10 ? 2 : 1)} ms`;
  return `sent ${s.sent}, failed ${s.failed}, p50 ${ms(s.p50)}, p99 ${ms(s.p99)}, max ${ms(s.max)}`;
}

/** The load client as a child process of a lab namespace. */
export interface DnsLoad {
  /** Stops sending, waits for the last timeouts and returns every sample. */
  finish(): Promise<Sample[]>;
}

/**
 * Starts the load client through `spawn` (for example `(cmd) => lab.spawn(lab.node.ns, cmd,
 * { stdout: "piped", stderr: "inherit" })`; stdin must be piped or null).
 */
export function startDnsLoad(
  spawn: (cmd: string[]) => Deno.ChildProcess,
  target: { server: string; port: number; name: string; qps?: number; timeoutMs?: number },
): DnsLoad {
  const child = spawn([
    Deno.execPath(),
    "run",
    "--allow-net",
    new URL(import.meta.url).pathname,
    target.server,
    String(target.port),
    target.name,
    `--qps=${target.qps ?? 500}`,
    `--timeout-ms=${target.timeoutMs ?? 1000}`,
  ]);
  const output = new Response(child.stdout).text();
  return {
    async finish() {
      try {
        child.kill("SIGINT");
      } catch { /* already ended */ }
      const text = await output;
      await child.status;
      const line = text.trim().split("\n").pop() ?? "";
      if (!line.startsWith("{")) {
        throw new Error(`the DNS load client printed ${text.slice(0, 200)}`);
      }
      return (JSON.parse(line) as { samples: Sample[] }).samples;
    },
  };
}

async function main(): Promise<void> {
  const [server, portText, name] = Deno.args;
  const opt = (flag: string, def: number) =>
    Number(Deno.args.find((a) => a.startsWith(`--${flag}=`))?.split("=")[1] ?? def);
  const qps = opt("qps", 500), timeoutMs = opt("timeout-ms", 1000);
  const maxMs = opt("max-seconds", 600) * 1000;
  if (!server || !name || !(Number(portText) > 0)) {
    console.error("usage: dns_load.ts SERVER PORT NAME [--qps=N] [--timeout-ms=N]");
    Deno.exit(2);
  }
  const sock = dgram.createSocket("udp4");
  await new Promise<void>((resolve) => sock.bind(0, resolve));
  const samples: [number, number | null][] = [];
  // id -> index in samples, for the queries in flight.
  const inFlight = new Map<number, { index: number; sentPerf: number }>();
  sock.on("message", (msg: Uint8Array) => {
    const receivedPerf = performance.now();
    let reply;
    try {
      reply = decodeReply(new Uint8Array(msg));
    } catch {
      return;
    }
    const q = inFlight.get(reply.id);
    if (!q) return; // a late reply: already counted as failed
    inFlight.delete(reply.id);
    if (reply.rcode === 0 && reply.addresses.length > 0) {
      samples[q.index][1] = receivedPerf - q.sentPerf;
    }
  });
  let stopping = false;
  Deno.addSignalListener("SIGINT", () => stopping = true);
  const start = performance.now();
  let sent = 0, id = 0;
  // Send in 10 ms ticks, catching up to the rate by the clock (timers may fire late).
  while (!stopping && performance.now() - start < maxMs) {
    const due = Math.floor(((performance.now() - start) / 1000) * qps);
    for (; sent < due; sent++) {
      id = (id + 1) & 0xffff;
      const qid = id;
      const sentPerf = performance.now();
      const index = samples.push([epochMs(), null]) - 1;
      inFlight.set(qid, { index, sentPerf });
      setTimeout(() => {
        if (inFlight.get(qid)?.index === index) inFlight.delete(qid);
      }, timeoutMs);
      sock.send(encodeQuery(qid, name), Number(portText), server);
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  await new Promise((r) => setTimeout(r, timeoutMs + 50));
  // A reply that came in after its timeout was already recorded: count it as failed.
  for (const s of samples) if (s[1] !== null && s[1] > timeoutMs) s[1] = null;
  sock.close();
  console.log(JSON.stringify({ samples }));
  Deno.exit(0);
}

if (import.meta.main) await main();
