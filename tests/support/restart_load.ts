/**
 * DNS load for restart tests and benchmarks, in the lab's node namespace: dnsperf sends 2,000 UDP
 * queries a second (round-robin over names whose answers are known) and counts lost queries (no
 * reply within 10 s: a query that waited in a kernel queue while svcgate restarted and was then
 * answered is late, not lost) and rcodes; beside it this file's own client (its `main`) asks the
 * same names at a lower rate and judges every answer: right, wrong (another address, or none),
 * SERVFAIL, another rcode, or lost. (This client alone, in Deno's node:dgram, could not keep
 * 2,000 queries a second on a busy machine: it lost replies svcgate had sent.)
 *
 * Client usage: `deno run --allow-net tests/support/restart_load.ts SERVER PORT NAME=IP
 *   [NAME=IP...] [--qps=200] [--patience-ms=10000]`; on SIGINT it stops sending, waits out the
 *   patience and prints one JSON line ({@link CheckReport}).
 * @module
 */

import dgram from "node:dgram";
import { decodeReply, encodeQuery } from "../bench/kube_daemon_probe.ts";

/** What the answer checker saw. */
export interface CheckReport {
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
  /** Lost queries by the epoch second they were sent in, and by name (where the losses were). */
  readonly lostBySecond: Readonly<Record<string, number>>;
  readonly lostByName: Readonly<Record<string, number>>;
}

/** What dnsperf and the checker saw. */
export interface LoadReport {
  /** dnsperf: queries sent, lost (no reply in 10 s), in flight when it was stopped. */
  readonly sent: number;
  readonly lost: number;
  readonly interrupted: number;
  /** dnsperf's rcode counts, e.g. `{ NOERROR: 40000 }`. */
  readonly rcodes: Readonly<Record<string, number>>;
  readonly avgMs: number;
  readonly maxMs: number;
  readonly check: CheckReport;
}

/** The load as child processes of a lab namespace. */
export interface RestartLoad {
  /** Stops both, waits out the checker's patience and returns the report. */
  finish(): Promise<LoadReport>;
}

/** dnsperf's summary as numbers. */
function parseDnsperf(text: string): Omit<LoadReport, "check"> {
  const count = (label: string) =>
    Number(text.match(new RegExp(`${label}:\\s+(\\d+)`))?.[1] ?? NaN);
  const rcodes: Record<string, number> = {};
  for (const m of (text.match(/Response codes:\s+(.*)/)?.[1] ?? "").matchAll(/([A-Z]+) (\d+)/g)) {
    rcodes[m[1]] = Number(m[2]);
  }
  const latency = text.match(/Average Latency \(s\):\s+([\d.]+) \(min [\d.]+, max ([\d.]+)\)/);
  if (!latency || Number.isNaN(count("Queries sent"))) {
    throw new Error(`dnsperf printed no statistics:\n${text.slice(-1500)}`);
  }
  return {
    sent: count("Queries sent"),
    lost: count("Queries lost"),
    interrupted: count("Queries interrupted") || 0,
    rcodes,
    avgMs: Number(latency[1]) * 1000,
    maxMs: Number(latency[2]) * 1000,
  };
}

/**
 * Starts dnsperf (`qps`, default 2,000) and the checker (`checkQps`, default 200) through `spawn`
 * (stdout must be piped); `dir` holds dnsperf's query file.
 */
export async function startRestartLoad(
  spawn: (cmd: string[]) => Deno.ChildProcess,
  target: {
    server: string;
    port: number;
    expect: Readonly<Record<string, string>>;
    dir: string;
    qps?: number;
    checkQps?: number;
  },
): Promise<RestartLoad> {
  const queries = `${target.dir}/dnsperf-queries.txt`;
  await Deno.writeTextFile(queries, Object.keys(target.expect).map((n) => `${n} A\n`).join(""));
  const perf = spawn([
    ...["dnsperf", "-s", target.server, "-p", String(target.port), "-d", queries],
    ...["-Q", String(target.qps ?? 2000), "-l", "3600", "-t", "10", "-q", "30000"],
    // 8 MiB of socket buffers: the replies to the queries queued during a restart come at once.
    ...["-b", "8192"],
    // 16 sockets (source ports): SO_REUSEPORT hashes each to one process, so both overlapping
    // processes get some, the one that stops included.
    ...["-c", "16"],
  ]);
  const check = spawn([
    Deno.execPath(),
    "run",
    "--allow-net",
    new URL(import.meta.url).pathname,
    target.server,
    String(target.port),
    ...Object.entries(target.expect).map(([name, ip]) => `${name}=${ip}`),
    `--qps=${target.checkQps ?? 200}`,
  ]);
  const perfOut = new Response(perf.stdout).text();
  const checkOut = new Response(check.stdout).text();
  return {
    async finish() {
      for (const child of [perf, check]) {
        try {
          child.kill("SIGINT");
        } catch { /* already ended */ }
      }
      const [perfText, checkText] = await Promise.all([perfOut, checkOut]);
      await Promise.all([perf.status, check.status]);
      const line = checkText.trim().split("\n").pop() ?? "";
      if (!line.startsWith("{")) throw new Error(`the checker printed ${checkText.slice(0, 300)}`);
      return { ...parseDnsperf(perfText), check: JSON.parse(line) as CheckReport };
    },
  };
}

async function main(): Promise<void> {
  const args = Deno.args.filter((a) => !a.startsWith("--"));
  const opt = (flag: string, def: number) =>
    Number(Deno.args.find((a) => a.startsWith(`--${flag}=`))?.split("=")[1] ?? def);
  const [server, portText, ...pairs] = args;
  const qps = opt("qps", 200), patience = opt("patience-ms", 10_000);
  const expect = pairs.map((p) => p.split("=") as [string, string]);
  if (!server || !(Number(portText) > 0) || expect.length === 0) {
    console.error("usage: restart_load.ts SERVER PORT NAME=IP [...] [--qps=N] [--patience-ms=N]");
    Deno.exit(2);
  }
  const sock = dgram.createSocket("udp4");
  await new Promise<void>((resolve) => sock.bind(0, resolve));
  // Replies can be 10 s late: a 4 MB buffer holds them while this process is busy sending.
  sock.setRecvBufferSize(4 << 20);
  // Connected: a send() naming the address resolves it each time (getaddrinfo on a thread pool
  // in Deno's node:dgram), which held this client to a few hundred queries a second.
  await new Promise<void>((resolve) => sock.connect(Number(portText), server, resolve));
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
      sock.send(encodeQuery(id, name));
    }
    await new Promise((r) => setTimeout(r, 5));
  }
  // Wait out the patience of the last queries (replies still arrive meanwhile).
  const deadline = performance.now() + patience;
  while (inFlight.size > 0 && performance.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
  }
  sock.close();
  const lostBySecond: Record<string, number> = {}, lostByName: Record<string, number> = {};
  for (const q of inFlight.values()) {
    const second = String(Math.floor(q.sentAt / 1000));
    lostBySecond[second] = (lostBySecond[second] ?? 0) + 1;
    lostByName[q.name] = (lostByName[q.name] ?? 0) + 1;
  }
  latencies.sort((a, b) => a - b);
  const pct = (p: number) =>
    latencies.length === 0
      ? NaN
      : latencies[Math.min(latencies.length - 1, Math.ceil(p * latencies.length) - 1)];
  const report: CheckReport = {
    ...counts,
    lost: inFlight.size,
    p50Ms: pct(0.5),
    p99Ms: pct(0.99),
    maxMs: latencies.at(-1) ?? NaN,
    slow,
    examples,
    lostBySecond,
    lostByName,
  };
  console.log(JSON.stringify(report));
  Deno.exit(0);
}

if (import.meta.main) await main();
