/**
 * TcpDnsServer's fair shares and connection limits (issue 20), on loopback: clients connect from
 * distinct 127.0.0.x source addresses (node:net's localAddress), so per-address limits apply.
 */

import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import net from "node:net";
import { buildAnswerTable } from "../answer/fast.ts";
import { AllowList } from "./allow_list.ts";
import { QueryHandler } from "./handler.ts";
import { LimitLog } from "./limit_log.ts";
import { applyStats, DnsStats } from "./stats.ts";
import { type TcpDnsOptions, TcpDnsServer } from "./tcp.ts";
import { DnsCache } from "./dns_cache.ts";
import { Forwarder, parseUpstream, type Upstream, type UpstreamTransport } from "./upstream.ts";
import { MetricsRegistry } from "../../observe/metrics.ts";
import { cidr, fixtureSnapshot, fixtureZone } from "../../../tests/support/dns_fixture.ts";
import { frame, plainQuery } from "../../../tests/support/dns_attack.ts";

const NAME = "web.default.svc.cluster.local";

/** An upstream that never answers until closed: forwarded queries stay in flight. */
class SilentUpstream implements UpstreamTransport {
  readonly #waiting = new Set<(e: Error) => void>();
  exchange(): Promise<Uint8Array> {
    return new Promise((_, reject) => this.#waiting.add(reject));
  }
  close(): void {
    for (const reject of this.#waiting) reject(new Error("closed"));
    this.#waiting.clear();
  }
}

function startServer(over: Partial<TcpDnsOptions> = {}) {
  const stats = new DnsStats();
  const forwarder = new Forwarder({
    upstreams: [parseUpstream("198.18.0.53") as Upstream],
    transport: new SilentUpstream(),
    cache: new DnsCache({ now: () => 0 }),
    timeoutMs: 20_000,
  });
  const handler = new QueryHandler({
    clusterDomain: "cluster.local",
    reverseCidrs: [],
    forwarder,
    stats,
  });
  const zone = fixtureZone(fixtureSnapshot());
  handler.setZone(zone, buildAnswerTable(zone));
  const lines: string[] = [];
  const server = TcpDnsServer.open({
    hostname: "127.0.0.1",
    port: 0,
    handler,
    allow: new AllowList([cidr("127.0.0.0/8")]),
    onError: (m) => lines.push(m),
    limitLog: new LimitLog({ stats, warn: (m) => lines.push(m) }),
    ...over,
  });
  const metrics = () => {
    const registry = new MetricsRegistry();
    applyStats(registry, stats.drain());
    return registry.render();
  };
  return { server, lines, metrics, forwarder };
}

/** A client connection from `from`, with its bytes and whether the server closed it. */
interface Client {
  readonly socket: net.Socket;
  readonly from: string;
  received: Uint8Array;
  closed: boolean;
  write(bytes: Uint8Array): void;
  end(): void;
}

function connect(port: number, from: string): Promise<Client> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: "127.0.0.1", port, localAddress: from });
    const c: Client = {
      socket,
      from,
      received: new Uint8Array(0),
      closed: false,
      write: (b) => void socket.write(b),
      end: () => socket.destroy(),
    };
    socket.on("data", (d: Uint8Array) => {
      const next = new Uint8Array(c.received.length + d.length);
      next.set(c.received);
      next.set(d, c.received.length);
      c.received = next;
    });
    socket.on("close", () => (c.closed = true));
    socket.on("error", () => (c.closed = true));
    socket.once("connect", () => resolve(c));
    socket.once("error", reject);
  });
}

/** Number of whole framed answers received. */
function answers(c: Client): number {
  let n = 0;
  for (let pos = 0; pos + 2 <= c.received.length;) {
    const len = (c.received[pos] << 8) | c.received[pos + 1];
    if (pos + 2 + len > c.received.length) break;
    pos += 2 + len;
    n++;
  }
  return n;
}

async function until(what: string, check: () => boolean, timeoutMs = 3000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!check()) {
    if (performance.now() > deadline) throw new Error(`Timed out after ${timeoutMs} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Asks one cluster name and waits for its answer. */
async function ask(c: Client, id: number): Promise<void> {
  const before = answers(c);
  c.write(frame(plainQuery(NAME, id)));
  await until(`an answer on ${c.from}`, () => answers(c) > before || c.closed);
  assert(answers(c) > before, `${c.from} was closed instead of answered`);
}

Deno.test("TCP limits: a client at its per-IP limit has its new connections closed at once; others are served", async () => {
  const { server, lines, metrics, forwarder } = startServer({ maxConnectionsPerIp: 3 });
  const clients: Client[] = [];
  try {
    for (let i = 0; i < 3; i++) clients.push(await connect(server.port, "127.0.0.2"));
    await until("3 connections served", () => server.connections === 3);
    for (let i = 0; i < 2; i++) {
      const refused = await connect(server.port, "127.0.0.2");
      clients.push(refused);
      await until("the new connection closed", () => refused.closed);
    }
    // The three it holds keep working; another address is not affected.
    for (const [i, c] of clients.slice(0, 3).entries()) await ask(c, i);
    const other = await connect(server.port, "127.0.0.3");
    clients.push(other);
    await ask(other, 9);
    assertEquals(clients.map((c) => c.closed), [false, false, false, true, true, false]);
    const text = metrics();
    assert(text.includes('svcgate_dns_limit_hits_total{limit="tcp_clients_per_ip"} 2'), text);
    assert(!text.includes('limit="tcp_evicted"'), text);
    // One line a minute per limit and client address.
    const logged = lines.filter((l) => l.includes("tcp_clients_per_ip"));
    assertEquals(logged.length, 1, lines.join("\n"));
    assert(
      logged[0].includes('"127.0.0.2"') && logged[0].includes("3 connections open"),
      logged[0],
    );
  } finally {
    for (const c of clients) c.end();
    await server.stop();
    forwarder.close();
  }
});

Deno.test("TCP limits: when every slot is taken, the heaviest client (the newcomer counted) loses its oldest idle connection", async () => {
  const { server, metrics, forwarder } = startServer({ maxConnections: 4, maxConnectionsPerIp: 4 });
  const clients: Client[] = [];
  try {
    for (let i = 0; i < 3; i++) {
      clients.push(await connect(server.port, "127.0.0.2"));
      await sleep(20);
    }
    clients.push(await connect(server.port, "127.0.0.3"));
    await until("4 connections served", () => server.connections === 4);
    // A newcomer gets the heaviest client's (127.0.0.2) oldest connection, not a refusal.
    const newcomer = await connect(server.port, "127.0.0.4");
    await ask(newcomer, 1);
    await until("the heaviest client's oldest connection closed", () => clients[0].closed);
    assertEquals(clients.map((c) => c.closed), [true, false, false, false]);
    assertEquals(server.connections, 4);
    // Another newcomer takes 127.0.0.2's next oldest: it still has the most.
    const second = await connect(server.port, "127.0.0.5");
    await ask(second, 2);
    await until("127.0.0.2's next oldest closed", () => clients[1].closed);
    // Each client has one now; one connecting again would hold the most: its own oldest goes.
    const again = await connect(server.port, "127.0.0.3");
    await ask(again, 3);
    await until("127.0.0.3's own older connection closed", () => clients[3].closed);
    assertEquals([clients[2].closed, newcomer.closed, second.closed], [false, false, false]);
    assertEquals(server.connections, 4);
    clients.push(newcomer, second, again);
    // When every connection owes an answer (a forwarded question in flight), a newcomer is closed.
    for (const c of [clients[2], newcomer, second, again]) {
      c.write(frame(plainQuery("example.com", 9)));
    }
    await sleep(50);
    const refused = await connect(server.port, "127.0.0.6");
    clients.push(refused);
    await until("the newcomer closed", () => refused.closed);
    assertEquals([clients[2].closed, newcomer.closed, second.closed, again.closed], [
      false,
      false,
      false,
      false,
    ]);
    const text = metrics();
    assert(text.includes('svcgate_dns_limit_hits_total{limit="tcp_clients"} 4'), text);
    assert(text.includes('svcgate_dns_limit_hits_total{limit="tcp_evicted"} 3'), text);
  } finally {
    for (const c of clients) c.end();
    await server.stop();
    forwarder.close();
  }
});

Deno.test("TCP limits: a message trickled in slower than the I/O timeout is cut; an idle connection is not", async () => {
  const { server, lines, metrics, forwarder } = startServer({
    ioTimeoutMs: 300,
    idleTimeoutMs: 5000,
  });
  const clients: Client[] = [];
  try {
    const slow = await connect(server.port, "127.0.0.2");
    const idle = await connect(server.port, "127.0.0.3");
    clients.push(slow, idle);
    // A 64-byte message announced, then a byte every 100 ms: bytes keep coming, the message never.
    slow.write(new Uint8Array([0, 64, 1]));
    const t0 = performance.now();
    while (!slow.closed && performance.now() - t0 < 2000) {
      await sleep(100);
      if (!slow.closed) slow.write(new Uint8Array([1]));
    }
    const ms = performance.now() - t0;
    assert(slow.closed && ms >= 250, `the slowloris connection closed after ${ms.toFixed(0)} ms`);
    assertEquals(idle.closed, false);
    await ask(idle, 1);
    const text = metrics();
    assert(text.includes('svcgate_dns_limit_hits_total{limit="tcp_io_timeout"} 1'), text);
    assert(
      lines.some((l) => l.includes("tcp_io_timeout") && l.includes('"127.0.0.2"')),
      lines.join(),
    );
  } finally {
    for (const c of clients) c.end();
    await server.stop();
    forwarder.close();
  }
});

Deno.test("TCP limits: a connection asking all along closes at its lifetime, after its answers", async () => {
  const { server, metrics, forwarder } = startServer({ maxLifetimeMs: 500, idleTimeoutMs: 5000 });
  const c = await connect(server.port, "127.0.0.2");
  try {
    let sent = 0;
    const t0 = performance.now();
    while (!c.closed && performance.now() - t0 < 3000) {
      c.write(frame(plainQuery(NAME, sent++)));
      await sleep(50);
    }
    const ms = performance.now() - t0;
    assert(c.closed && ms >= 450 && ms < 1500, `closed after ${ms.toFixed(0)} ms`);
    // Every query the server read before retiring was answered; at most the last was not.
    assert(answers(c) >= sent - 2, `${answers(c)} answers to ${sent} queries`);
    const text = metrics();
    assert(text.includes('svcgate_dns_limit_hits_total{limit="tcp_lifetime"} 1'), text);
  } finally {
    c.end();
    await server.stop();
    forwarder.close();
  }
});

Deno.test("TCP limits: a connection answers --dns-tcp-max-queries queries, then closes", async () => {
  const { server, metrics, forwarder } = startServer({ maxQueries: 5 });
  const c = await connect(server.port, "127.0.0.2");
  try {
    const ten = Array.from({ length: 10 }, (_, i) => frame(plainQuery(NAME, i)));
    c.write(new Uint8Array(ten.flatMap((f) => [...f])));
    await until("the server to close the connection", () => c.closed);
    assertEquals(answers(c), 5);
    const text = metrics();
    assert(text.includes('svcgate_dns_limit_hits_total{limit="tcp_queries"} 1'), text);
  } finally {
    c.end();
    await server.stop();
    forwarder.close();
  }
});

Deno.test("TCP limits: read buffers above 4 KiB are shared out; past the allowance such a message closes its connection", async () => {
  const { server, metrics, forwarder } = startServer({ maxLargeBuffers: 1 });
  const clients: Client[] = [];
  try {
    // A 10 KB message (a query and zeros after it: FORMERR, one answer all the same), written in
    // two parts: the first alone needs a large buffer.
    const big = new Uint8Array(2 + 10_000);
    big.set(plainQuery(NAME, 1), 2);
    big[0] = 10_000 >> 8;
    big[1] = 10_000 & 0xff;
    const first = await connect(server.port, "127.0.0.2");
    const second = await connect(server.port, "127.0.0.3");
    clients.push(first, second);
    first.write(big.subarray(0, 6000));
    await sleep(100);
    second.write(big.subarray(0, 6000));
    await until("the second connection closed", () => second.closed);
    assertEquals(first.closed, false);
    // The first finishes its message and gets its answer; its large buffer goes back.
    first.write(big.subarray(6000));
    await until("an answer to the large message", () => answers(first) === 1);
    const third = await connect(server.port, "127.0.0.4");
    clients.push(third);
    third.write(big);
    await until("an answer on the third connection", () => answers(third) === 1 || third.closed);
    assertEquals([first.closed, third.closed, answers(third)], [false, false, 1]);
    const text = metrics();
    assert(text.includes('svcgate_dns_limit_hits_total{limit="tcp_buffers"} 1'), text);
  } finally {
    for (const c of clients) c.end();
    await server.stop();
    forwarder.close();
  }
});
