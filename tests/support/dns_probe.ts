/**
 * The good client of issue 20's attack test and benchmark: UDP queries at a steady rate, and
 * queries over fresh TCP connections (connect, ask, read, close), each with its latency or the
 * reason it failed.
 *
 * Only the addresses the caller passes are contacted (lab namespaces or loopback).
 * @module
 */

import dgram from "node:dgram";
import { frame, plainQuery } from "./dns_attack.ts";

const HEADER = 12;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** What a probe saw. */
export interface ProbeReport {
  readonly transport: "udp" | "tcp";
  sent: number;
  answered: number;
  /** Failures by reason (timeout, refused, reset, wrong answer...). */
  failures: Record<string, number>;
  /** Latencies of the answered queries, milliseconds, sorted ascending. */
  latenciesMs: number[];
}

/** The q-quantile of sorted values (NaN when empty). */
export function quantileOf(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

/** Whether a reply answers query `id` with NOERROR and at least one answer record. */
function goodAnswer(reply: Uint8Array, id: number): boolean {
  return reply.length >= HEADER && ((reply[0] << 8) | reply[1]) === id &&
    (reply[2] & 0x80) !== 0 && (reply[3] & 0x0f) === 0 && ((reply[6] << 8) | reply[7]) > 0;
}

/**
 * The good client over UDP: `qps` queries a second for `seconds` from one socket, each waiting
 * at most `timeoutMs` for its answer.
 */
export async function udpProbe(
  opts: {
    hostname: string;
    port: number;
    name: string;
    qps: number;
    seconds: number;
    timeoutMs?: number;
  },
): Promise<ProbeReport> {
  const report: ProbeReport = {
    transport: "udp",
    sent: 0,
    answered: 0,
    failures: {},
    latenciesMs: [],
  };
  const timeoutMs = opts.timeoutMs ?? 2000;
  const socket = dgram.createSocket(opts.hostname.includes(":") ? "udp6" : "udp4");
  const waiting = new Map<number, { at: number; timer: ReturnType<typeof setTimeout> }>();
  const fail = (why: string) => (report.failures[why] = (report.failures[why] ?? 0) + 1);
  socket.on("message", (m: Uint8Array) => {
    const reply = new Uint8Array(m);
    const id = (reply[0] << 8) | reply[1];
    const w = waiting.get(id);
    if (!w) return;
    waiting.delete(id);
    clearTimeout(w.timer);
    if (!goodAnswer(reply, id)) return void fail(`rcode ${reply[3] & 0x0f}`);
    report.answered++;
    report.latenciesMs.push(performance.now() - w.at);
  });
  socket.on("error", () => fail("socket error"));
  await new Promise<void>((r) => socket.bind(0, r));
  const interval = 1000 / opts.qps;
  const start = performance.now();
  const end = start + opts.seconds * 1000;
  for (let i = 0; performance.now() < end; i++) {
    const id = i & 0xffff;
    const at = performance.now();
    const timer = setTimeout(() => {
      if (waiting.delete(id)) fail("timeout");
    }, timeoutMs);
    waiting.set(id, { at, timer });
    socket.send(plainQuery(opts.name, id), opts.port, opts.hostname);
    report.sent++;
    const next = start + (i + 1) * interval;
    await sleep(Math.max(0, next - performance.now()));
  }
  // The last queries get their full timeout.
  const deadline = performance.now() + timeoutMs + 100;
  while (waiting.size > 0 && performance.now() < deadline) await sleep(20);
  socket.close();
  report.latenciesMs.sort((a, b) => a - b);
  return report;
}

/**
 * The good client over TCP: one query per fresh connection (connect, ask, read, close), one
 * after another with `pauseMs` between, for `seconds`; each must complete within `timeoutMs`.
 */
export async function tcpFreshProbe(
  opts: {
    hostname: string;
    port: number;
    name: string;
    seconds: number;
    pauseMs?: number;
    timeoutMs?: number;
  },
): Promise<ProbeReport> {
  const report: ProbeReport = {
    transport: "tcp",
    sent: 0,
    answered: 0,
    failures: {},
    latenciesMs: [],
  };
  const timeoutMs = opts.timeoutMs ?? 2000;
  const fail = (why: string) => (report.failures[why] = (report.failures[why] ?? 0) + 1);
  const end = performance.now() + opts.seconds * 1000;
  for (let i = 0; performance.now() < end; i++) {
    const id = i & 0xffff;
    const at = performance.now();
    report.sent++;
    let conn: Deno.TcpConn | null = null;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = new Promise<"timeout">((
      r,
    ) => (timer = setTimeout(() => r("timeout"), timeoutMs)));
    const attempt = (async (): Promise<string> => {
      try {
        conn = await Deno.connect({ hostname: opts.hostname, port: opts.port });
      } catch (e) {
        return `connect: ${(e as Error).name}`;
      }
      const q = frame(plainQuery(opts.name, id));
      for (let off = 0; off < q.length;) off += await conn.write(q.subarray(off));
      let got = new Uint8Array(0);
      const buf = new Uint8Array(65_536);
      for (;;) {
        const n = await conn.read(buf);
        if (n === null) return "closed before the answer";
        const next = new Uint8Array(got.length + n);
        next.set(got);
        next.set(buf.subarray(0, n), got.length);
        got = next;
        if (got.length >= 2 && got.length >= 2 + ((got[0] << 8) | got[1])) break;
      }
      return goodAnswer(got.subarray(2), id) ? "ok" : `bad answer rcode ${got[5] & 0x0f}`;
    })().catch((e) => `error: ${(e as Error).name}`);
    const outcome = await Promise.race([attempt, timedOut]);
    clearTimeout(timer);
    try {
      (conn as Deno.TcpConn | null)?.close();
    } catch { /* closed */ }
    await attempt.catch(() => {});
    if (outcome === "ok") {
      report.answered++;
      report.latenciesMs.push(performance.now() - at);
    } else fail(outcome);
    await sleep(opts.pauseMs ?? 50);
  }
  report.latenciesMs.sort((a, b) => a - b);
  return report;
}

/** A one-line summary of a probe: sent, failures, p50/p99/max in ms. */
export function probeSummary(r: ProbeReport): {
  transport: string;
  sent: number;
  failed: number;
  failures: Record<string, number>;
  p50: number;
  p99: number;
  max: number;
} {
  const round = (v: number) => Math.round(v * 100) / 100;
  return {
    transport: r.transport,
    sent: r.sent,
    failed: r.sent - r.answered,
    failures: r.failures,
    p50: round(quantileOf(r.latenciesMs, 0.5)),
    p99: round(quantileOf(r.latenciesMs, 0.99)),
    max: round(r.latenciesMs[r.latenciesMs.length - 1] ?? NaN),
  };
}
