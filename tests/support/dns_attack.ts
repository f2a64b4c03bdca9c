/**
 * Issue 20's misbehaving DNS clients, shared by the attack end-to-end test
 * (tests/dns/dns_attack_e2e_test.ts), its benchmark (tests/bench/dns_attack_bench.ts) and unit
 * tests (the well-behaved client that watches them is dns_probe.ts):
 * - the messages: 64 KB queries whose owners walk compression-pointer chains, and 64 KB queries
 *   of flat (uncompressed) records;
 * - populations of TCP connections that hold slots: keep-alive (a query every 2-5 s), idle
 *   (nothing sent), slowloris (a message trickled a byte at a time), streams of 64 KB messages,
 *   and a pipeliner that never reads; each reconnects when the server closes it.
 *
 * Only the addresses the caller passes are contacted (lab namespaces or loopback).
 * @module
 */

import { tcpFrame } from "../../src/dns/codec/encode.ts";
import { nameToWire } from "../../src/dns/codec/names.ts";

const HEADER = 12;
const MAX_MESSAGE = 65_535;

function header(id: number, qd: number, an: number): Uint8Array {
  const h = new Uint8Array(HEADER);
  h[0] = id >> 8;
  h[1] = id & 0xff;
  h[2] = 0x01; // QR=0, opcode QUERY, RD
  h[4] = qd >> 8;
  h[5] = qd & 0xff;
  h[6] = an >> 8;
  h[7] = an & 0xff;
  return h;
}

function wireName(name: string): Uint8Array {
  const w = nameToWire(name);
  if (!w) throw new Error(`Cannot build an attack message: "${name}" is not a DNS name`);
  return w;
}

/** A message being written. */
class Bytes {
  buf = new Uint8Array(MAX_MESSAGE);
  len = 0;
  put(b: Uint8Array | number[]): void {
    this.buf.set(b, this.len);
    this.len += b.length;
  }
  u16(v: number): void {
    this.buf[this.len++] = v >> 8;
    this.buf[this.len++] = v & 0xff;
  }
  /** Type, class IN, TTL 30 and the 4 data bytes of an A record, after its owner. */
  aRecordTail(address: readonly number[]): void {
    this.u16(1);
    this.u16(1);
    this.put([0, 0, 0, 30, 0, 4, ...address]);
  }
}

/**
 * A query (QR=0, one question for `question` A) of about `size` bytes whose answer section holds
 * first a record of a private type whose data is a chain of `chain` compression pointers, each
 * pointing at the one before (the first at the question name), then as many A records as fit,
 * each owned by a pointer to the chain's end: every owner walks the whole chain. Pointers reach
 * only the first 16,383 bytes, so a chain has at most ~8,180 links; with 8,000 (the default)
 * every one of ~3,000 owners walks 8,000 pointers: the probe (~20 ms per message before
 * the limits).
 */
export function pointerChainQuery(
  opts: { id?: number; question: string; chain?: number; size?: number },
): Uint8Array {
  const chain = opts.chain ?? 8_000;
  const size = Math.min(opts.size ?? MAX_MESSAGE, MAX_MESSAGE);
  const qname = wireName(opts.question);
  const b = new Bytes();
  b.len = HEADER;
  b.put(qname);
  b.u16(1);
  b.u16(1);
  // Record 1: owner -> question name, type 65280 (private use), data = the chain.
  b.u16(0xc000 | HEADER);
  b.u16(65280);
  b.u16(1);
  b.put([0, 0, 0, 0]);
  b.u16(chain * 2);
  let prev = HEADER;
  for (let i = 0; i < chain; i++) {
    const at = b.len;
    b.u16(0xc000 | prev);
    prev = at;
  }
  if (prev >= 0x4000) {
    throw new Error(`Cannot build a pointer chain of ${chain}: it ends past offset 16383`);
  }
  let records = 1;
  while (b.len + 16 <= size) {
    b.u16(0xc000 | prev);
    b.aRecordTail([198, 18, 0, records & 0xff]);
    records++;
  }
  b.buf.set(header(opts.id ?? 0, 1, records));
  return b.buf.slice(0, b.len);
}

/**
 * A query of about `size` bytes with a question for `question` A and as many A records as fit in
 * the answer section, each owned by a long uncompressed name: the flat 64 KB message.
 */
export function flatRecordsQuery(
  opts: { id?: number; question: string; size?: number },
): Uint8Array {
  const size = Math.min(opts.size ?? MAX_MESSAGE, MAX_MESSAGE);
  const b = new Bytes();
  b.len = HEADER;
  b.put(wireName(opts.question));
  b.u16(1);
  b.u16(1);
  let records = 0;
  for (;;) {
    const owner = wireName(
      `r${records}.aaaaaaaaaaaaaaaaaaaa.bbbbbbbbbbbbbbbbbbbb.cccccccccccccccccccc.example`,
    );
    if (b.len + owner.length + 14 > size) break;
    b.put(owner);
    b.aRecordTail([198, 18, 1, records & 0xff]);
    records++;
  }
  b.buf.set(header(opts.id ?? 0, 1, records));
  return b.buf.slice(0, b.len);
}

/** A plain query for `name` (type A unless given), without EDNS. */
export function plainQuery(name: string, id: number, type = 1): Uint8Array {
  const q = wireName(name);
  const out = new Uint8Array(HEADER + q.length + 4);
  out.set(header(id, 1, 0));
  out.set(q, HEADER);
  out[HEADER + q.length + 1] = type;
  out[HEADER + q.length + 3] = 1;
  return out;
}

/** A message with its TCP length prefix. */
export const frame = tcpFrame;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const jitter = (lo: number, hi: number) => lo + Math.random() * (hi - lo);

/** What the connections of one population went through. */
export interface PopulationReport {
  readonly kind: string;
  readonly target: number;
  /** Connections the server accepted (connect() succeeded). */
  connects: number;
  /** connect() failures (refused, timed out). */
  connectFailures: number;
  /** Connections the server closed or reset. */
  closedByServer: number;
  /** Of those, closed within 1 s of opening (refused at the door). */
  closedEarly: number;
  /** Most connections open at once. */
  peakOpen: number;
  /** Messages written (queries, or 64 KB messages for streams). */
  sent: number;
  /** Answers read (streams and keep-alive). */
  answers: number;
}

/** Kinds of {@link runPopulation}. */
export type PopulationKind =
  | "keepalive"
  | "idle"
  | "slowloris"
  | "stream-pointer"
  | "stream-flat"
  | "never-read";

/** Options of {@link runPopulation}. */
export interface PopulationOptions {
  readonly kind: PopulationKind;
  readonly hostname: string;
  readonly port: number;
  /** Connections to hold open. */
  readonly count: number;
  readonly seconds: number;
  /** The name asked (streams and keep-alive ask it; a cluster name). */
  readonly question: string;
  /** Pointer-chain length of stream-pointer messages (default 8,000). */
  readonly chain?: number;
}

/**
 * Opens `count` connections of one kind (ramped, 100 at a time) and keeps that many open for
 * `seconds`, reconnecting each one the server closes (after 1 s when the server closed it at
 * once, else after 100 ms). Never throws for one connection.
 */
export async function runPopulation(opts: PopulationOptions): Promise<PopulationReport> {
  const report: PopulationReport = {
    kind: opts.kind,
    target: opts.count,
    connects: 0,
    connectFailures: 0,
    closedByServer: 0,
    closedEarly: 0,
    peakOpen: 0,
    sent: 0,
    answers: 0,
  };
  const end = performance.now() + opts.seconds * 1000;
  let open = 0;
  const open_ = new Set<Deno.TcpConn>();
  const message = opts.kind === "stream-pointer"
    ? frame(pointerChainQuery({ question: opts.question, chain: opts.chain }))
    : opts.kind === "stream-flat"
    ? frame(flatRecordsQuery({ question: opts.question }))
    : null;
  const batch = opts.kind === "never-read"
    ? (() => {
      const one = frame(plainQuery(opts.question, 7));
      const out = new Uint8Array(one.length * 1000);
      for (let i = 0; i < 1000; i++) out.set(one, i * one.length);
      return out;
    })()
    : null;

  const writeAll = async (conn: Deno.TcpConn, bytes: Uint8Array) => {
    for (let off = 0; off < bytes.length;) off += await conn.write(bytes.subarray(off));
  };
  /** Reads until EOF or error, counting framed answers; resolves when the server closes. */
  const drain = async (conn: Deno.TcpConn, countAnswers: boolean) => {
    const buf = new Uint8Array(65_536);
    let pending = 0; // bytes of the current answer still to skip
    let head: number[] = [];
    try {
      for (;;) {
        const n = await conn.read(buf);
        if (n === null) return;
        if (!countAnswers) continue;
        for (let i = 0; i < n;) {
          if (pending > 0) {
            const take = Math.min(pending, n - i);
            pending -= take;
            i += take;
            continue;
          }
          head.push(buf[i++]);
          if (head.length === 2) {
            pending = (head[0] << 8) | head[1];
            head = [];
            report.answers++;
          }
        }
      }
    } catch { /* reset */ }
  };

  const one = async () => {
    while (performance.now() < end) {
      let conn: Deno.TcpConn;
      try {
        conn = await Deno.connect({ hostname: opts.hostname, port: opts.port });
      } catch {
        report.connectFailures++;
        await sleep(jitter(500, 1500));
        continue;
      }
      report.connects++;
      open++;
      open_.add(conn);
      report.peakOpen = Math.max(report.peakOpen, open);
      const opened = performance.now();
      let serverClosed = false;
      // The never-reading client learns of a close only from a failing write.
      const reading = opts.kind === "never-read"
        ? new Promise<void>(() => {})
        : drain(conn, opts.kind !== "idle" && opts.kind !== "slowloris").then(() => {
          serverClosed = true;
        });
      const stopAt = new Promise<void>((r) => setTimeout(r, Math.max(0, end - performance.now())));
      try {
        switch (opts.kind) {
          case "idle":
            await Promise.race([reading, stopAt]);
            break;
          case "keepalive":
            while (!serverClosed && performance.now() < end) {
              await writeAll(conn, frame(plainQuery(opts.question, report.sent & 0xffff)));
              report.sent++;
              await Promise.race([reading, sleep(jitter(2000, 5000)), stopAt]);
            }
            break;
          case "slowloris": {
            // A 512-byte message announced, then trickled a byte every 1-2 s.
            await writeAll(conn, new Uint8Array([0x02, 0x00, 0x12]));
            while (!serverClosed && performance.now() < end) {
              await Promise.race([reading, sleep(jitter(1000, 2000)), stopAt]);
              if (serverClosed || performance.now() >= end) break;
              await writeAll(conn, new Uint8Array([0x34]));
            }
            break;
          }
          case "stream-pointer":
          case "stream-flat":
            while (!serverClosed && performance.now() < end) {
              await writeAll(conn, message!);
              report.sent++;
            }
            break;
          case "never-read":
            while (!serverClosed && performance.now() < end) {
              await writeAll(conn, batch!);
              report.sent += 1000;
            }
            break;
        }
      } catch {
        serverClosed = true;
      }
      if (serverClosed || performance.now() < end) {
        report.closedByServer++;
        if (performance.now() - opened < 1000) report.closedEarly++;
      }
      open--;
      open_.delete(conn);
      try {
        conn.close();
      } catch { /* closed */ }
      if (opts.kind !== "never-read") await reading.catch(() => {});
      if (performance.now() < end) {
        await sleep(performance.now() - opened < 1000 ? jitter(800, 1200) : jitter(50, 150));
      }
    }
  };

  const workers: Promise<void>[] = [];
  for (let i = 0; i < opts.count; i++) {
    workers.push(one());
    // Ramp: 100 connections at a time, so the accept queue is not the first thing measured.
    if (i % 100 === 99) await sleep(20);
  }
  await Promise.all(workers);
  for (const c of open_) {
    try {
      c.close();
    } catch { /* closed */ }
  }
  return report;
}
