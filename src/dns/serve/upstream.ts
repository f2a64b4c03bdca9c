/**
 * Forwarding of names svcgate is not authoritative for: upstream list parsing (pure), and the
 * forwarder that asks the upstream resolvers over UDP, retrying over TCP when the answer is
 * truncated, with a cache in front (dns_cache.ts), and gives up within a deadline so a dead
 * upstream costs a quick SERVFAIL, never a hang.
 *
 * Who may use it is decided by the caller (answer.ts: recursion only for allowed clients).
 * @module
 */

import dgram from "node:dgram";
import { parseIp } from "../../model/ip.ts";
import { decodeMessage } from "../codec/decode.ts";
import { encodeMessage, tcpFrame } from "../codec/encode.ts";
import { nameKey } from "../codec/names.ts";
import {
  type Message,
  OUR_UDP_SIZE,
  queryMessage,
  type Question,
  Rcode,
} from "../codec/records.ts";
import { cacheKey, DnsCache } from "./dns_cache.ts";
import type { ForwardZones } from "./forward_zones.ts";

/** One upstream resolver. */
export interface Upstream {
  /** IP address text. */
  readonly host: string;
  readonly port: number;
  /** `ip:port` as given (IPv6 in brackets). */
  readonly text: string;
}

/**
 * Parses `ip`, `ip:port` or `[ipv6]:port`. Returns an error message quoting the text when it is
 * not one.
 *
 * @example
 * ```ts
 * parseUpstream("198.18.0.53:5353"); // { host: "198.18.0.53", port: 5353, text: "198.18.0.53:5353" }
 * ```
 */
export function parseUpstream(text: string): Upstream | string {
  const t = text.trim();
  let host = t, portText = "53";
  const bracket = /^\[([^\]]+)\](?::(\d+))?$/.exec(t);
  if (bracket) {
    host = bracket[1];
    portText = bracket[2] ?? "53";
  } else if ((t.match(/:/g) ?? []).length === 1) {
    [host, portText] = t.split(":");
  }
  const ip = parseIp(host);
  if (!ip) return `Cannot parse upstream "${text}": "${host}" is not an IP address`;
  if (!/^\d{1,5}$/.test(portText) || Number(portText) < 1 || Number(portText) > 65535) {
    return `Cannot parse upstream "${text}": port "${portText}" is not 1-65535`;
  }
  const port = Number(portText);
  return { host, port, text: ip.family === 6 ? `[${host}]:${port}` : `${host}:${port}` };
}

/** Reads the host's resolv.conf (the edge; parsing is resolv_conf.ts). */
export async function readResolvConf(path = "/etc/resolv.conf"): Promise<string> {
  return await Deno.readTextFile(path);
}

/** Sends one query to one upstream and returns the raw response. */
export interface UpstreamTransport {
  exchange(
    server: Upstream,
    packet: Uint8Array,
    tcp: boolean,
    timeoutMs: number,
  ): Promise<Uint8Array>;
  /** Releases sockets; called on stop. */
  close(): void;
}

class TimeoutError extends Error {}

function withTimeout<T>(
  p: Promise<T>,
  ms: number,
  what: string,
  onTimeout: () => void,
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      onTimeout();
      reject(new TimeoutError(`${what}: no answer within ${ms} ms`));
    }, ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

/**
 * The real transport: a fresh UDP socket per query (a random source port, so spoofed answers must
 * guess both port and ID), and a TCP connection when asked.
 */
export class SocketTransport implements UpstreamTransport {
  readonly #open = new Set<{ close(): void }>();

  exchange(
    server: Upstream,
    packet: Uint8Array,
    tcp: boolean,
    timeoutMs: number,
  ): Promise<Uint8Array> {
    return tcp ? this.#tcp(server, packet, timeoutMs) : this.#udp(server, packet, timeoutMs);
  }

  #udp(server: Upstream, packet: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
    const family = server.host.includes(":") ? "udp6" : "udp4";
    const sock = dgram.createSocket(family);
    const handle = {
      close: () => {
        try {
          sock.close();
        } catch { /* already closed */ }
      },
    };
    this.#open.add(handle);
    const id = (packet[0] << 8) | packet[1];
    const p = new Promise<Uint8Array>((resolve, reject) => {
      sock.on("error", (e: Error) => reject(new Error(`UDP to ${server.text}: ${e.message}`)));
      sock.on("message", (msg: Uint8Array, rinfo: { address: string; port: number }) => {
        // Only the server we asked, with our ID, may answer.
        if (rinfo.port !== server.port || msg.length < 12 || ((msg[0] << 8) | msg[1]) !== id) {
          return;
        }
        if (parseIp(rinfo.address)?.bytes.join() !== parseIp(server.host)?.bytes.join()) return;
        resolve(new Uint8Array(msg));
      });
      sock.send(packet, server.port, server.host, (e: Error | null) => {
        if (e) reject(new Error(`UDP to ${server.text}: ${e.message}`));
      });
    });
    return withTimeout(p, timeoutMs, `UDP to ${server.text}`, handle.close).finally(() => {
      handle.close();
      this.#open.delete(handle);
    });
  }

  async #tcp(server: Upstream, packet: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
    let conn: Deno.TcpConn | null = null;
    const handle = {
      close: () => {
        try {
          conn?.close();
        } catch { /* already closed */ }
        conn = null;
      },
    };
    this.#open.add(handle);
    const work = (async () => {
      conn = await Deno.connect({ hostname: server.host, port: server.port, transport: "tcp" });
      const framed = tcpFrame(packet);
      let off = 0;
      while (off < framed.length) off += await conn.write(framed.subarray(off));
      const readExactly = async (n: number): Promise<Uint8Array> => {
        const out = new Uint8Array(n);
        let got = 0;
        while (got < n) {
          const r = await conn!.read(out.subarray(got));
          if (r === null) {
            throw new Error(`TCP to ${server.text}: closed after ${got} of ${n} bytes`);
          }
          got += r;
        }
        return out;
      };
      const lenBytes = await readExactly(2);
      return await readExactly((lenBytes[0] << 8) | lenBytes[1]);
    })();
    try {
      return await withTimeout(work, timeoutMs, `TCP to ${server.text}`, handle.close);
    } catch (e) {
      work.catch(() => {});
      throw e;
    } finally {
      handle.close();
      this.#open.delete(handle);
    }
  }

  close(): void {
    for (const h of this.#open) h.close();
    this.#open.clear();
  }
}

/** Forwarder settings. */
export interface ForwarderOptions {
  readonly upstreams: readonly Upstream[];
  /** Total time a question may take before SERVFAIL. Default 1500 ms. */
  readonly timeoutMs?: number;
  readonly transport?: UpstreamTransport;
  /** Cache; omit for a default one on the wall clock. */
  readonly cache?: DnsCache;
  /** Random 16-bit IDs; injected for tests. */
  readonly randomId?: () => number;
  /** Where to count (an engine passes its DnsStats counters); omit for the forwarder's own. */
  readonly stats?: ForwarderStats;
  /** `--forward-zone`: names under a zone go to its servers (the longest zone wins). */
  readonly zones?: ForwardZones;
  /** Told of every question sent to an upstream (rcode -1) and every answer it gave. */
  readonly onExchange?: (to: string, rcode: number) => void;
}

/** Outcome of one forwarded question. */
export type ForwardResult =
  | { readonly ok: true; readonly message: Message; readonly cached: boolean }
  | { readonly ok: false; readonly error: string };

/** Counters the server exports as metrics. */
export interface ForwarderStats {
  cacheHits: number;
  /** Hits whose answer is NXDOMAIN or NODATA (CoreDNS's denial cache). */
  cacheHitsNegative: number;
  cacheMisses: number;
  upstreamFailures: number;
  /** Expired answers given out because no upstream answered (RFC 8767). */
  staleAnswers: number;
  /** Often-asked answers refreshed before they expired. */
  prefetches: number;
}

function newForwarderStats(): ForwarderStats {
  return {
    cacheHits: 0,
    cacheHitsNegative: 0,
    cacheMisses: 0,
    upstreamFailures: 0,
    staleAnswers: 0,
    prefetches: 0,
  };
}

/** True for NXDOMAIN and NODATA answers. */
function negative(m: Message): boolean {
  return m.rcode === Rcode.NXDOMAIN || m.answers.length === 0;
}

function defaultRandomId(): number {
  const b = new Uint16Array(1);
  crypto.getRandomValues(b);
  return b[0];
}

/**
 * Asks upstream resolvers, with a cache in front and identical questions in flight shared.
 *
 * @example
 * ```ts
 * const fwd = new Forwarder({ upstreams: [parseUpstream("198.18.0.53") as Upstream] });
 * const r = await fwd.resolve({ name: "example.org", type: 1, class: 1 });
 * ```
 */
export class Forwarder {
  readonly stats: ForwarderStats;
  #upstreams: readonly Upstream[];
  readonly #zones: ForwardZones | null;
  readonly #timeout: number;
  readonly #transport: UpstreamTransport;
  readonly #cache: DnsCache;
  readonly #randomId: () => number;
  readonly #onExchange: (to: string, rcode: number) => void;
  readonly #inflight = new Map<string, Promise<ForwardResult>>();
  /** Per server list (the global one, each zone's): the upstream that answered last, asked first. */
  readonly #preferred = new WeakMap<readonly Upstream[], number>();

  constructor(options: ForwarderOptions) {
    this.#upstreams = options.upstreams;
    this.#zones = options.zones ?? null;
    this.#timeout = options.timeoutMs ?? 1500;
    this.#transport = options.transport ?? new SocketTransport();
    this.#cache = options.cache ?? new DnsCache({ now: () => Date.now() });
    this.#randomId = options.randomId ?? defaultRandomId;
    this.#onExchange = options.onExchange ?? (() => {});
    this.stats = options.stats ?? newForwarderStats();
  }

  /** Replaces the global upstreams (the node's resolv.conf changed); zones keep theirs. */
  setUpstreams(upstreams: readonly Upstream[]): void {
    this.#upstreams = upstreams;
  }

  /** The cache's entries by kind (for coredns_cache_entries). */
  cacheCounts(): { success: number; denial: number } {
    return this.#cache.counts();
  }

  /** Resolves once every question forwarded so far has its answer or has failed. */
  async idle(): Promise<void> {
    while (this.#inflight.size > 0) await Promise.allSettled([...this.#inflight.values()]);
  }

  /**
   * Resolves a question; never throws, never takes longer than the timeout (plus a tick). When
   * no upstream answers, an expired answer still in its stale window is given (TTL 30, RFC 8767),
   * and for 30 s after that failure it is given at once, without asking again.
   */
  resolve(q: Question): Promise<ForwardResult> {
    const cached = this.#cache.get(q);
    if (cached) {
      this.stats.cacheHits++;
      if (negative(cached)) this.stats.cacheHitsNegative++;
      if (this.#cache.wantsPrefetch(q)) {
        this.stats.prefetches++;
        void this.#fetch(q);
      }
      return Promise.resolve({ ok: true, message: cached, cached: true });
    }
    if (this.#cache.recentlyFailed(q)) {
      const stale = this.#cache.stale(q);
      if (stale) {
        this.stats.staleAnswers++;
        return Promise.resolve({ ok: true, message: stale, cached: true });
      }
    }
    this.stats.cacheMisses++;
    return this.#fetch(q).then((r) => {
      if (r.ok) return r;
      const stale = this.#cache.stale(q);
      if (!stale) return r;
      this.#cache.refreshFailed(q);
      this.stats.staleAnswers++;
      return { ok: true, message: stale, cached: true };
    });
  }

  /** Asks upstream, sharing a question already in flight. */
  #fetch(q: Question): Promise<ForwardResult> {
    const key = cacheKey(q);
    const running = this.#inflight.get(key);
    if (running) return running;
    const p = this.#ask(q).finally(() => this.#inflight.delete(key));
    this.#inflight.set(key, p);
    return p;
  }

  async #ask(q: Question): Promise<ForwardResult> {
    const upstreams = this.#zones?.match(q.name)?.upstreams ?? this.#upstreams;
    if (upstreams.length === 0) {
      this.stats.upstreamFailures++;
      return { ok: false, error: "no upstream resolvers are configured" };
    }
    const deadline = Date.now() + this.#timeout;
    const attempts = Math.min(upstreams.length, 3);
    const errors: string[] = [];
    const preferred = this.#preferred.get(upstreams) ?? 0;
    for (let a = 0; a < Math.max(attempts, 2) && Date.now() < deadline; a++) {
      const index = (preferred + a) % upstreams.length;
      const server = upstreams[index];
      const left = deadline - Date.now();
      // Share the time between attempts so a black-holed first server leaves time for the next.
      const budget = a === Math.max(attempts, 2) - 1
        ? left
        : Math.max(200, Math.floor(left / (Math.max(attempts, 2) - a)));
      try {
        const msg = await this.#exchange(server, q, Math.min(budget, left));
        if (
          msg.rcode === Rcode.SERVFAIL || msg.rcode === Rcode.REFUSED || msg.rcode === Rcode.NOTIMP
        ) {
          errors.push(`${server.text} answered rcode ${msg.rcode}`);
          continue;
        }
        this.#preferred.set(upstreams, index);
        this.#cache.put(q, msg);
        return { ok: true, message: msg, cached: false };
      } catch (e) {
        errors.push((e as Error).message);
      }
    }
    this.stats.upstreamFailures++;
    return {
      ok: false,
      error: `Cannot resolve "${q.name}" upstream: ${errors.join("; ") || "timed out"}`,
    };
  }

  async #exchange(server: Upstream, q: Question, timeoutMs: number): Promise<Message> {
    const start = Date.now();
    const id = this.#randomId() & 0xffff;
    const query = queryMessage([{ name: q.name, type: q.type, class: q.class }], {
      id,
      edns: { udpSize: OUR_UDP_SIZE, version: 0, dnssecOk: false, options: [] },
    });
    const packet = encodeMessage(query);
    this.#onExchange(server.text, -1);
    let msg = this.#check(
      await this.#transport.exchange(server, packet, false, timeoutMs),
      id,
      q,
      server,
    );
    if (msg.tc) {
      const left = timeoutMs - (Date.now() - start);
      if (left <= 0) throw new Error(`${server.text}: truncated answer and no time left for TCP`);
      msg = this.#check(await this.#transport.exchange(server, packet, true, left), id, q, server);
    }
    this.#onExchange(server.text, msg.rcode);
    return msg;
  }

  #check(bytes: Uint8Array, id: number, q: Question, server: Upstream): Message {
    const r = decodeMessage(bytes);
    if (!r.ok) throw new Error(`${server.text} sent a malformed answer: ${r.error}`);
    const m = r.message;
    if (!m.qr || m.id !== id) throw new Error(`${server.text} sent an answer with the wrong ID`);
    const mq = m.questions[0];
    if (
      m.questions.length !== 1 || nameKey(mq.name) !== nameKey(q.name) || mq.type !== q.type ||
      mq.class !== q.class
    ) {
      throw new Error(`${server.text} answered another question`);
    }
    return m;
  }

  /** Closes upstream sockets. */
  close(): void {
    this.#transport.close();
  }
}
