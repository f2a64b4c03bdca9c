/**
 * TcpDnsServer on loopback (127.0.0.1, port 0): pipelining with answers in completion order, and
 * the bounds of issue 20 (a client that pipelines queries and never reads its answers).
 */

import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { MetricsRegistry } from "../../observe/metrics.ts";
import { buildAnswerTable } from "../answer/fast.ts";
import { AllowList } from "./allow_list.ts";
import { QueryHandler } from "./handler.ts";
import { applyStats, DnsStats } from "./stats.ts";
import { type TcpDnsOptions, TcpDnsServer, type TcpSocketChoice } from "./tcp.ts";
import {
  bigHeadlessSnapshot,
  cidr,
  echoForwarder,
  fixtureZone,
} from "../../../tests/support/dns_fixture.ts";
import { decodeMessage } from "../codec/decode.ts";
import { encodeMessage } from "../codec/encode.ts";
import { queryMessage, RRClass, RRType } from "../codec/records.ts";

/** Both listeners: Deno.listen, and the FFI one (SO_REUSEPORT, socket activation: tcp_ffi.ts). */
const SOCKETS: readonly TcpSocketChoice[] = [{ kind: "deno" }, { kind: "reuseport" }];

/** Endpoints of the headless test service: its A answer is ~3.2 KB, so buffers fill fast. */
const BIG_ENDPOINTS = 200;
const BIG_NAME = "big.default.svc.cluster.local";

function startServer(over: Partial<TcpDnsOptions> = {}) {
  const stats = new DnsStats();
  // Forwarded questions are answered after a few milliseconds (the async path).
  const forwarder = echoForwarder(5);
  const handler = new QueryHandler({
    clusterDomain: "cluster.local",
    reverseCidrs: [cidr("198.19.0.0/16")],
    forwarder,
    stats,
  });
  const zone = fixtureZone(bigHeadlessSnapshot(BIG_ENDPOINTS), {
    reverseCidrs: [cidr("198.19.0.0/16")],
  });
  handler.setZone(zone, buildAnswerTable(zone));
  const errors: string[] = [];
  const server = TcpDnsServer.open({
    hostname: "127.0.0.1",
    port: 0,
    handler,
    allow: new AllowList([cidr("127.0.0.0/8")]),
    onError: (m) => errors.push(m),
    ...over,
  });
  return { server, stats, errors, forwarder };
}

/** One query framed for TCP. */
function framed(name: string, id: number): Uint8Array {
  const q = encodeMessage(queryMessage([{ name, type: RRType.A, class: RRClass.IN }], { id }));
  const out = new Uint8Array(q.length + 2);
  out[0] = q.length >> 8;
  out[1] = q.length & 0xff;
  out.set(q, 2);
  return out;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let off = 0; off < bytes.length;) off += await conn.write(bytes.subarray(off));
}

/** Reads framed answers until `count` arrived; returns their IDs in arrival order. */
async function readAnswers(conn: Deno.Conn, count: number, timeoutMs: number): Promise<number[]> {
  const ids: number[] = [];
  let buf: Uint8Array = new Uint8Array(0);
  const deadline = performance.now() + timeoutMs;
  const chunk = new Uint8Array(65536);
  while (ids.length < count) {
    const left = deadline - performance.now();
    if (left <= 0) throw new Error(`Read ${ids.length} of ${count} answers in ${timeoutMs} ms`);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const n = await Promise.race([
      conn.read(chunk),
      new Promise<"timeout">((r) => (timer = setTimeout(() => r("timeout"), left))),
    ]).finally(() => clearTimeout(timer));
    if (n === "timeout") continue;
    if (n === null) throw new Error(`Connection closed after ${ids.length} of ${count} answers`);
    buf = concat([buf, chunk.subarray(0, n)]);
    while (buf.length >= 2) {
      const len = (buf[0] << 8) | buf[1];
      if (buf.length < len + 2) break;
      const d = decodeMessage(buf.subarray(2, 2 + len));
      if (!d.ok) throw new Error(`Cannot decode answer ${ids.length}: ${d.error}`);
      ids.push(d.message.id);
      buf = buf.slice(2 + len);
    }
  }
  return ids;
}

async function waitFor(what: string, check: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!check()) {
    if (performance.now() > deadline) throw new Error(`Timed out after ${timeoutMs} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * A client that pipelines queries for the big name as fast as TCP lets it and never reads.
 * Resolves with how it ended: "error" when the server reset the connection under a write.
 */
function badClient(port: number, stopAfterMs: number) {
  let written = 0;
  let conn: Deno.TcpConn | null = null;
  const done = (async (): Promise<"error" | "timed out"> => {
    conn = await Deno.connect({ hostname: "127.0.0.1", port });
    const batch = concat(Array.from({ length: 1000 }, (_, i) => framed(BIG_NAME, i)));
    const until = performance.now() + stopAfterMs;
    try {
      while (performance.now() < until) {
        await writeAll(conn, batch);
        written += 1000;
      }
      return "timed out";
    } catch {
      return "error";
    } finally {
      try {
        conn.close();
      } catch { /* closed already */ }
    }
  })();
  return {
    done,
    get written() {
      return written;
    },
    close() {
      try {
        conn?.close();
      } catch { /* closed already */ }
    },
  };
}

for (const socket of SOCKETS) {
  Deno.test(`TcpDnsServer (${socket.kind}): pipelined queries (fast, general and forwarded) all get answers`, async () => {
    // Small bounds so that backpressure engages even with a client that reads.
    const { server, forwarder } = startServer({
      maxQueuedAnswers: 8,
      maxQueuedBytes: 4096,
      socket,
    });
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
    try {
      const names = (i: number) =>
        i % 3 === 0
          ? BIG_NAME
          : i % 3 === 1
          ? `nx${i}.default.svc.cluster.local`
          : `host${i}.example.com`;
      const count = 600;
      const queries = concat(Array.from({ length: count }, (_, i) => framed(names(i), i)));
      const [, ids] = await Promise.all([
        writeAll(conn, queries),
        readAnswers(conn, count, 20_000),
      ]);
      assertEquals([...ids].sort((a, b) => a - b), Array.from({ length: count }, (_, i) => i));
      // Forwarded answers come when they complete, not in query order.
      assert(ids.some((id, i) => id !== i), "answers came strictly in query order");
      assert(server.peakUnsent.answers <= 8, `peak ${server.peakUnsent.answers} answers unsent`);
      assertEquals(server.slowClients, 0);
    } finally {
      conn.close();
      await server.stop();
      forwarder.close();
    }
  });
}

for (const socket of SOCKETS) {
  Deno.test(`TcpDnsServer (${socket.kind}): a client that never reads is cut off, its queue stays bounded, others are answered`, async () => {
    const maxQueuedBytes = 65_536, maxQueuedAnswers = 128;
    const { server, stats, errors, forwarder } = startServer({
      socket,
      maxQueuedBytes,
      maxQueuedAnswers,
      ioTimeoutMs: 300,
      idleTimeoutMs: 5_000,
    });
    const bad = [badClient(server.port, 20_000), badClient(server.port, 20_000)];
    try {
      // While both wedge their connections, a well-behaved client still gets every answer.
      await waitFor("the bad clients to send 5,000 queries", () => bad[0].written >= 5000, 10_000);
      const good = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
      try {
        const queries = concat(Array.from({ length: 50 }, (_, i) => framed(BIG_NAME, i)));
        await writeAll(good, queries);
        assertEquals((await readAnswers(good, 50, 5_000)).length, 50);
      } finally {
        good.close();
      }
      await waitFor("both bad clients to be cut off", () => server.slowClients >= 2, 15_000);
      // The server reset each connection under the client's blocked write; it did not just stop.
      for (const [i, b] of bad.entries()) {
        assertEquals(await b.done, "error", `bad client ${i} (${b.written} queries written)`);
      }
      const answer = 2 + 16 * BIG_ENDPOINTS + 100;
      const peak = server.peakUnsent;
      assert(
        peak.bytes <= maxQueuedBytes + answer,
        `peak ${peak.bytes} bytes unsent > ${maxQueuedBytes} + one answer (${answer})`,
      );
      assert(peak.answers <= maxQueuedAnswers, `peak ${peak.answers} answers unsent`);
      assert(bad[0].written >= 5000, `bad client wrote only ${bad[0].written} queries`);
      assertEquals(stats.counters.tcpSlowClients, 2);
      // Both came from 127.0.0.1: one log line a minute per address.
      assertEquals(errors.length, 1, errors.join("\n"));
      assert(errors[0].includes('"127.0.0.1"') && errors[0].includes("stopped reading"), errors[0]);
      const registry = new MetricsRegistry();
      applyStats(registry, stats.drain());
      assert(/^svcgate_dns_tcp_slow_clients_total 2$/m.test(registry.render()), registry.render());
    } finally {
      for (const b of bad) b.close();
      await Promise.all(bad.map((b) => b.done));
      await server.stop();
      forwarder.close();
    }
  });
}

for (const socket of SOCKETS) {
  Deno.test(`TcpDnsServer (${socket.kind}): stop() closes a connection whose writes are blocked at once`, async () => {
    const { server, forwarder } = startServer({
      ioTimeoutMs: 60_000,
      idleTimeoutMs: 60_000,
      socket,
    });
    const bad = badClient(server.port, 30_000);
    try {
      // Blocked: the queue reached its bound and the client's writes stopped moving.
      await waitFor("the server queue to fill", () => server.peakUnsent.answers >= 16, 10_000);
      let last = -1, since = 0;
      await waitFor("the bad client's writes to stop moving for 300 ms", () => {
        if (bad.written !== last) [last, since] = [bad.written, performance.now()];
        return performance.now() - since >= 300;
      }, 10_000);
      const t0 = performance.now();
      await server.stop();
      const ms = performance.now() - t0;
      assert(ms < 1000, `stop() took ${ms.toFixed(0)} ms`);
      assertEquals(await bad.done, "error");
      assertEquals(server.slowClients, 0);
    } finally {
      bad.close();
      await bad.done;
      await server.stop();
      forwarder.close();
    }
  });
}

Deno.test("TcpDnsServer: bounds must be positive integers", async () => {
  const { server, forwarder } = startServer();
  await server.stop();
  forwarder.close();
  let message = "";
  try {
    startServer({ maxQueuedBytes: 0 });
  } catch (e) {
    message = (e as Error).message;
  }
  assert(message.includes(`maxQueuedBytes must be an integer >= 1, got "0"`), message);
});
