/**
 * Packet-level probes of the daemon benchmark, run inside the lab's node namespace: tight loops
 * that report, as JSON lines on stdout, every change of what they observe.
 *
 * - `tcp HOST PORT`: a fresh TCP connection to a service VIP each round (so every round is a new
 *   conntrack entry, NATed by the rules live at that moment), an HTTP GET, the pod name from the
 *   body; "" when the connection fails (connect gives up after 50 ms: a local pod answers in
 *   well under a millisecond, so while no rule exists a round takes 50 ms). `at` is when connect() resolved: the SYN had passed the
 *   nat hook by then, so the rule was live at `at` at the latest.
 * - `dns SERVER PORT NAME`: a UDP A query each round; the sorted addresses of the answer, or
 *   `rcode:N`, or "" on a timeout. `at` is when the reply arrived.
 *
 * Line: `{"kind":"tcp"|"dns","value":"…","at":<epoch ms>,"rounds":<rounds so far>}`.
 *
 * Usage: `deno run --allow-net kube_daemon_probe.ts tcp 198.19.200.10 80 dns 198.18.0.1 53 NAME`
 * (either or both).
 * @module
 */

import dgram from "node:dgram";

/** Wall-clock milliseconds with sub-millisecond precision, comparable across processes. */
export function epochMs(): number {
  return performance.timeOrigin + performance.now();
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function report(kind: string, value: string, at: number, rounds: number): void {
  Deno.stdout.writeSync(encoder.encode(JSON.stringify({ kind, value, at, rounds }) + "\n"));
}

async function tcpRound(hostname: string, port: number): Promise<{ value: string; at: number }> {
  let conn: Deno.TcpConn | null = null;
  try {
    conn = await Deno.connect({ hostname, port, signal: AbortSignal.timeout(50) });
    const at = epochMs();
    await conn.write(encoder.encode("GET / HTTP/1.0\r\nHost: probe\r\n\r\n"));
    let text = "";
    const buf = new Uint8Array(1024);
    const deadline = setTimeout(() => conn?.close(), 500);
    try {
      for (;;) {
        const n = await conn.read(buf);
        if (n === null) break;
        text += decoder.decode(buf.subarray(0, n));
      }
    } finally {
      clearTimeout(deadline);
    }
    const body = text.split("\r\n\r\n")[1]?.trim() ?? "";
    return { value: body, at };
  } catch {
    return { value: "", at: epochMs() };
  } finally {
    try {
      conn?.close();
    } catch { /* closed by the deadline or the peer */ }
  }
}

async function tcpLoop(hostname: string, port: number): Promise<void> {
  let last: string | null = null;
  for (let rounds = 1;; rounds++) {
    const { value, at } = await tcpRound(hostname, port);
    if (value !== last) {
      report("tcp", value, at, rounds);
      last = value;
    }
    // A failing round already waited for its timeout; a successful one goes again at once.
  }
}

/** A DNS query for `name` A with id `id`, RD off. */
export function encodeQuery(id: number, name: string): Uint8Array {
  const labels = name.replace(/\.$/, "").split(".");
  const bytes: number[] = [id >> 8, id & 255, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
  for (const l of labels) {
    bytes.push(l.length, ...encoder.encode(l));
  }
  bytes.push(0, 0, 1, 0, 1);
  return new Uint8Array(bytes);
}

function skipName(msg: Uint8Array, off: number): number {
  for (;;) {
    const len = msg[off];
    if (len === undefined) throw new Error("truncated name");
    if ((len & 0xc0) === 0xc0) return off + 2;
    if (len === 0) return off + 1;
    off += len + 1;
  }
}

/** The id, rcode and A addresses of a DNS reply. */
export function decodeReply(msg: Uint8Array): { id: number; rcode: number; addresses: string[] } {
  const id = (msg[0] << 8) | msg[1];
  const rcode = msg[3] & 15;
  const qd = (msg[4] << 8) | msg[5];
  const an = (msg[6] << 8) | msg[7];
  let off = 12;
  for (let i = 0; i < qd; i++) off = skipName(msg, off) + 4;
  const addresses: string[] = [];
  for (let i = 0; i < an; i++) {
    off = skipName(msg, off);
    const type = (msg[off] << 8) | msg[off + 1];
    const rdlen = (msg[off + 8] << 8) | msg[off + 9];
    off += 10;
    if (type === 1 && rdlen === 4) addresses.push([...msg.subarray(off, off + 4)].join("."));
    off += rdlen;
  }
  return { id, rcode, addresses: addresses.sort() };
}

async function dnsLoop(server: string, port: number, name: string): Promise<void> {
  const sock = dgram.createSocket("udp4");
  await new Promise<void>((resolve) => sock.bind(0, resolve));
  let pending: { id: number; resolve: (v: string) => void } | null = null;
  sock.on("message", (msg: Uint8Array) => {
    try {
      const r = decodeReply(new Uint8Array(msg));
      if (!pending || r.id !== pending.id) return; // a late reply to a timed-out query
      pending.resolve(r.rcode === 0 ? r.addresses.join(",") : `rcode:${r.rcode}`);
    } catch {
      pending?.resolve("malformed");
    }
  });
  let last: string | null = null;
  let id = 0;
  for (let rounds = 1;; rounds++) {
    id = (id + 1) & 0xffff;
    const query = encodeQuery(id, name);
    const value = await new Promise<string>((resolve) => {
      const timer = setTimeout(() => resolve(""), 200);
      pending = {
        id,
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v);
        },
      };
      sock.send(query, port, server);
    });
    pending = null;
    const at = epochMs();
    if (value !== last) {
      report("dns", value, at, rounds);
      last = value;
    }
  }
}

if (import.meta.main) {
  const args = [...Deno.args];
  const loops: Promise<void>[] = [];
  while (args.length > 0) {
    const mode = args.shift();
    if (mode === "tcp" && args.length >= 2) {
      loops.push(tcpLoop(args.shift()!, Number(args.shift())));
    } else if (mode === "dns" && args.length >= 3) {
      loops.push(dnsLoop(args.shift()!, Number(args.shift()), args.shift()!));
    } else {
      console.error(
        `usage: kube_daemon_probe.ts [tcp HOST PORT] [dns SERVER PORT NAME]; got ${
          JSON.stringify(Deno.args)
        }`,
      );
      Deno.exit(2);
    }
  }
  await Promise.all(loops);
}
