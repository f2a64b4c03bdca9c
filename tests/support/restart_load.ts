/**
 * A DNS client for restart tests and benchmarks: a process (run it in the lab's node namespace)
 * that sends UDP A queries at a fixed rate, round-robin over names whose answers it knows, and
 * judges every reply: right, wrong (another address, or none), SERVFAIL, another rcode, or lost
 * (no reply within the patience, by default 10 s: a query that waited in a kernel queue while
 * svcgate restarted and was then answered is late, not lost). On SIGINT it stops sending, waits
 * out the patience and prints one JSON line ({@link LoadReport}).
 *
 * Usage: `deno run --allow-net tests/support/restart_load.ts SERVER PORT NAME=IP [NAME=IP...]
 *   [--qps=2000] [--patience-ms=10000]`
 * @module
 */

import dgram from "node:dgram";
import { decodeReply, encodeQuery } from "../bench/kube_daemon_probe.ts";

/** What the client saw. */
export interface LoadReport {
  readonly sent: number;
  readonly right: number;
  readonly wrong: number;
  readonly servfail: number;
  /** Any rcode other than NOERROR and SERVFAIL. */
  readonly otherRcode: number;
  readonly lost: number;
  /** Replies later than 1 s (a client with a 1 s timeout would have retried). */
  readonly lateOver1s: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  /** Epoch ms of each reply later than 1 s, with its latency (the restarts' gaps). */
  readonly slow: readonly (readonly [sentAt: number, ms: number])[];
  /** A few wrong answers, for the failure message. */
  readonly examples: readonly string[];
}

/** The client as a child process of a lab namespace. */
export interface RestartLoad {
  /** Stops sending, waits out the patience and returns the report. */
  finish(): Promise<LoadReport>;
}

/** Starts the client through `spawn` (stdout must be piped). */
export function startRestartLoad(
  spawn: (cmd: string[]) => Deno.ChildProcess,
  target: {
    server: string;
    port: number;
    expect: Readonly<Record<string, string>>;
    qps?: number;
    patienceMs?: number;
  },
): RestartLoad {
  const child = spawn([
    Deno.execPath(),
    "run",
    "--allow-net",
    new URL(import.meta.url).pathname,
    target.server,
    String(target.port),
    ...Object.entries(target.expect).map(([name, ip]) => `${name}=${ip}`),
    `--qps=${target.qps ?? 2000}`,
    `--patience-ms=${target.patienceMs ?? 10_000}`,
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
      if (!line.startsWith("{")) throw new Error(`the load client printed ${text.slice(0, 300)}`);
      return JSON.parse(line) as LoadReport;
    },
  };
}

async function main(): Promise<void> {
  const args = Deno.args.filter((a) => !a.startsWith("--"));
  const opt = (flag: string, def: number) =>
    Number(Deno.args.find((a) => a.startsWith(`--${flag}=`))?.split("=")[1] ?? def);
  const [server, portText, ...pairs] = args;
  const qps = opt("qps", 2000), patience = opt("patience-ms", 10_000);
  const expect = pairs.map((p) => p.split("=") as [string, string]);
  if (!server || !(Number(portText) > 0) || expect.length === 0) {
    console.error("usage: restart_load.ts SERVER PORT NAME=IP [...] [--qps=N] [--patience-ms=N]");
    Deno.exit(2);
  }
  const sock = dgram.createSocket("udp4");
  await new Promise<void>((resolve) => sock.bind(0, resolve));
  // Replies can be 10 s late: a 4 MB buffer holds them while this process is busy sending.
  sock.setRecvBufferSize(4 << 20);
  const counts = { sent: 0, right: 0, wrong: 0, servfail: 0, otherRcode: 0, lateOver1s: 0 };
  const latencies: number[] = [];
  const slow: [number, number][] = [];
  const examples: string[] = [];
  const inFlight = new Map<
    number,
    { sentPerf: number; sentAt: number; expect: string; name: string }
  >();
  sock.on("message", (msg: Uint8Array) => {
    const now = performance.now();
    let reply;
    try {
      reply = decodeReply(new Uint8Array(msg));
    } catch {
      return;
    }
    const q = inFlight.get(reply.id);
    if (!q) return;
    inFlight.delete(reply.id);
    const ms = now - q.sentPerf;
    latencies.push(ms);
    if (ms > 1000) {
      counts.lateOver1s++;
      slow.push([q.sentAt, Math.round(ms)]);
    }
    if (reply.rcode === 2) counts.servfail++;
    else if (reply.rcode !== 0) counts.otherRcode++;
    else if (reply.addresses.length === 1 && reply.addresses[0] === q.expect) counts.right++;
    else {
      counts.wrong++;
      if (examples.length < 5) {
        examples.push(`${q.name}: ${reply.addresses.join(",") || "no address"}`);
      }
    }
  });
  let stopping = false;
  Deno.addSignalListener("SIGINT", () => stopping = true);
  const start = performance.now();
  let id = 0;
  while (!stopping) {
    const due = Math.floor(((performance.now() - start) / 1000) * qps);
    for (; counts.sent < due; counts.sent++) {
      // The next id not in flight (65,536 ids; at 2,000 qps and 10 s patience 20,000 are used).
      do id = (id + 1) & 0xffff; while (inFlight.has(id));
      const [name, ip] = expect[counts.sent % expect.length];
      inFlight.set(id, { sentPerf: performance.now(), sentAt: Date.now(), expect: ip, name });
      sock.send(encodeQuery(id, name), Number(portText), server);
    }
    await new Promise((r) => setTimeout(r, 5));
  }
  // Wait out the patience of the last queries (replies still arrive meanwhile).
  const deadline = performance.now() + patience;
  while (inFlight.size > 0 && performance.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
  }
  sock.close();
  latencies.sort((a, b) => a - b);
  const pct = (p: number) =>
    latencies.length === 0
      ? NaN
      : latencies[Math.min(latencies.length - 1, Math.ceil(p * latencies.length) - 1)];
  const report: LoadReport = {
    ...counts,
    lost: inFlight.size,
    p50Ms: pct(0.5),
    p99Ms: pct(0.99),
    maxMs: latencies.at(-1) ?? NaN,
    slow,
    examples,
  };
  console.log(JSON.stringify(report));
  Deno.exit(0);
}

if (import.meta.main) await main();
