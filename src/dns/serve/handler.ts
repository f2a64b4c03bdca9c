/**
 * One query in, one reply out: the fast path over precomputed answers, then the general path
 * (decode, answer, forward or chase, encode with truncation), with the client's right to recurse
 * decided from its address. No sockets here: transports (UDP via FFI or node:dgram, TCP) call
 * this, and forwarding goes through the {@link Forwarder} seam.
 * @module
 */

import { bigIntToIp, type Cidr } from "../../model/ip.ts";
import { answerQuery, formErrFor, replyTo, udpLimit } from "../answer/answer.ts";
import { type AnswerTable, fastAnswer } from "../answer/fast.ts";
import type { DnsStats } from "./stats.ts";
import { chasedReply, forwardedReply, type Forwarder } from "./upstream.ts";
import { decodeMessage, newQueryScan, scanQuery } from "../codec/decode.ts";
import { encodeMessage } from "../codec/encode.ts";
import { nameKey } from "../codec/names.ts";
import { MAX_MESSAGE, type Message, Rcode, RRClass } from "../codec/records.ts";
import { reverseZoneApexes, type Zone } from "../zone/zone.ts";

/**
 * CIDRs allowed to recurse, checked against raw socket addresses without allocating.
 *
 * @example
 * ```ts
 * new AllowList([parseCidr("127.0.0.0/8") as Cidr]).allowsAddress("127.0.0.1"); // true
 * ```
 */
export class AllowList {
  readonly #v4: { net: number; mask: number }[] = [];
  readonly #v6: { bytes: Uint8Array; prefix: number }[] = [];

  constructor(readonly cidrs: readonly Cidr[]) {
    for (const c of cidrs) {
      const bytes = bigIntToIp(c.network, c.family).bytes;
      if (c.family === 4) {
        const mask = c.prefix === 0 ? 0 : (0xffffffff << (32 - c.prefix)) >>> 0;
        const net = ((bytes[0] << 24) | (bytes[1] << 16) | (bytes[2] << 8) | bytes[3]) >>> 0;
        this.#v4.push({ net: (net & mask) >>> 0, mask });
      } else {
        this.#v6.push({ bytes, prefix: c.prefix });
      }
    }
  }

  /** True when the IPv4 address (as an unsigned 32-bit number) is inside a v4 CIDR. */
  allowsV4(addr: number): boolean {
    for (const c of this.#v4) if (((addr & c.mask) >>> 0) === c.net) return true;
    return false;
  }

  /** True when the 16 bytes at `buf[off..]` are an allowed IPv6 address (v4-mapped ones as v4). */
  allowsV6(buf: Uint8Array, off: number): boolean {
    let mapped = true;
    for (let i = 0; i < 10; i++) if (buf[off + i] !== 0) mapped = false;
    if (mapped && buf[off + 10] === 0xff && buf[off + 11] === 0xff) {
      return this.allowsV4(
        ((buf[off + 12] << 24) | (buf[off + 13] << 16) | (buf[off + 14] << 8) | buf[off + 15]) >>>
          0,
      );
    }
    for (const c of this.#v6) {
      let ok = true;
      const full = c.prefix >> 3;
      for (let i = 0; i < full; i++) {
        if (buf[off + i] !== c.bytes[i]) {
          ok = false;
          break;
        }
      }
      if (!ok) continue;
      const rest = c.prefix & 7;
      if (rest > 0) {
        const mask = (0xff << (8 - rest)) & 0xff;
        if ((buf[off + full] & mask) !== (c.bytes[full] & mask)) continue;
      }
      return true;
    }
    return false;
  }

  /** Checks a Linux `sockaddr_in`/`sockaddr_in6` at `buf[off..]`. */
  allowsSockaddr(buf: Uint8Array, off: number): boolean {
    const family = buf[off] | (buf[off + 1] << 8);
    if (family === 2) {
      return this.allowsV4(
        ((buf[off + 4] << 24) | (buf[off + 5] << 16) | (buf[off + 6] << 8) | buf[off + 7]) >>> 0,
      );
    }
    if (family === 10) return this.allowsV6(buf, off + 8);
    return false;
  }

  /** Checks an address in text form. */
  allowsAddress(text: string): boolean {
    const v4 = /^(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
    if (v4) return this.allowsV4(((+v4[1] << 24) | (+v4[2] << 16) | (+v4[3] << 8) | +v4[4]) >>> 0);
    return this.#v6Text(text);
  }

  #v6Text(text: string): boolean {
    const cidrBytes = (() => {
      const halves = text.replace(/%.*$/, "").split("::");
      if (halves.length > 2) return null;
      const words = (s: string): number[] | null => {
        if (s === "") return [];
        const out: number[] = [];
        for (const part of s.split(":")) {
          if (part.includes(".")) {
            const p = part.split(".").map(Number);
            if (p.length !== 4 || p.some((x) => !(x >= 0 && x <= 255))) return null;
            out.push((p[0] << 8) | p[1], (p[2] << 8) | p[3]);
          } else {
            if (!/^[0-9a-fA-F]{1,4}$/.test(part)) return null;
            out.push(parseInt(part, 16));
          }
        }
        return out;
      };
      const l = words(halves[0]), r = halves.length === 2 ? words(halves[1]) : [];
      if (!l || !r) return null;
      const fill = 8 - l.length - r.length;
      if (fill < 0 || (halves.length === 1 && fill !== 0)) return null;
      const all = [...l, ...new Array(halves.length === 2 ? fill : 0).fill(0), ...r];
      const b = new Uint8Array(16);
      all.forEach((w, i) => {
        b[2 * i] = w >> 8;
        b[2 * i + 1] = w & 0xff;
      });
      return b;
    })();
    return cidrBytes ? this.allowsV6(cidrBytes, 0) : false;
  }
}

/** Handler settings. */
export interface QueryHandlerOptions {
  readonly clusterDomain: string;
  readonly reverseCidrs: readonly Cidr[];
  /** Null when no upstream is configured: forwarded questions then get SERVFAIL. */
  readonly forwarder: Forwarder | null;
  readonly stats: DnsStats;
}

/**
 * Precomputes the answers of a zone name (a key as zone.nodes has them) when it has none yet;
 * returns the table to use from now on, or null when nothing changed.
 */
export type AnswerFiller = (name: string) => AnswerTable | null;

/** A reply now, none, or one later (forwarded). */
export type HandleOutcome = Uint8Array | null | Promise<Uint8Array | null>;

/**
 * Answers packets from the current zone.
 *
 * @example
 * ```ts
 * const h = new QueryHandler({ clusterDomain: "cluster.local", reverseCidrs: [], forwarder: null, stats: new DnsStats() });
 * h.setZone(zone, buildAnswerTable(zone));
 * const reply = await h.handle(packet, true, "udp");
 * ```
 */
export class QueryHandler {
  #zone: Zone | null = null;
  #table: AnswerTable | null = null;
  #fill: AnswerFiller | null = null;
  readonly #zones: Pick<Zone, "domain" | "reverseApexes">;
  readonly #forwarder: Forwarder | null;
  readonly #scan = newQueryScan();
  readonly #scratch = new Uint8Array(MAX_MESSAGE);
  readonly stats: DnsStats;

  constructor(options: QueryHandlerOptions) {
    this.#zones = {
      domain: nameKey(options.clusterDomain),
      reverseApexes: [...new Set(options.reverseCidrs.flatMap(reverseZoneApexes))],
    };
    this.#forwarder = options.forwarder;
    this.stats = options.stats;
  }

  /** The zone answers come from; null before the first publish. */
  get zone(): Zone | null {
    return this.#zone;
  }

  /**
   * Switches to a new zone and its precomputed answers, atomically for later queries. With
   * `fill`, a name the general path answered authoritatively is handed to it, so the next ask
   * takes the fast path.
   */
  setZone(zone: Zone, table: AnswerTable, fill: AnswerFiller | null = null): void {
    this.#zone = zone;
    this.#table = table;
    this.#fill = fill;
  }

  /**
   * The hot path: writes a precomputed reply for `q[0..len)` at `out[outOff..]` and returns its
   * length, or -1 when the general path must answer.
   */
  fast(
    q: Uint8Array,
    len: number,
    out: Uint8Array,
    outOff: number,
    udp: boolean,
    allowed: boolean,
  ): number {
    const table = this.#table;
    if (table === null) return -1;
    const scan = this.#scan;
    if (!scanQuery(q, len, scan)) return -1;
    const limit = !udp
      ? MAX_MESSAGE
      : scan.hasEdns
      ? Math.min(Math.max(scan.ednsSize, 512), 1232)
      : 512;
    const n = fastAnswer(table, q, scan, out, outOff, limit, allowed);
    if (n > 0) {
      this.stats.query(scan.qtype, out[outOff + 3] & 0x0f);
      this.stats.fastPath++;
    }
    return n;
  }

  /** The general path for one packet. Never throws. */
  general(packet: Uint8Array, allowed: boolean, udp: boolean): HandleOutcome {
    try {
      return this.#general(packet, allowed, udp);
    } catch {
      // A bug must cost one SERVFAIL, never the server.
      this.stats.internalErrors++;
      const r = decodeMessage(packet);
      if (r.ok && !r.message.qr) {
        return this.#encode(
          replyTo(r.message, Rcode.SERVFAIL, { recursionAllowed: allowed }),
          MAX_MESSAGE,
        );
      }
      this.stats.dropped++;
      return null;
    }
  }

  /** Fast path, then the general path (for TCP and the portable UDP transport). */
  handle(packet: Uint8Array, allowed: boolean, udp: boolean): HandleOutcome {
    const out = this.#scratch;
    const n = packet.length >= 17 ? this.fast(packet, packet.length, out, 0, udp, allowed) : -1;
    if (n > 0) return out.slice(0, n);
    return this.general(packet, allowed, udp);
  }

  #encode(msg: Message, limit: number): Uint8Array {
    const bytes = encodeMessage(msg, limit);
    this.stats.query(msg.questions[0]?.type ?? 0, msg.rcode);
    if ((bytes[2] & 0x02) !== 0) this.stats.truncated++;
    return bytes;
  }

  #general(packet: Uint8Array, allowed: boolean, udp: boolean): HandleOutcome {
    const r = decodeMessage(packet);
    if (!r.ok) {
      const reply = r.header ? formErrFor(r.header) : null;
      if (!reply) {
        this.stats.dropped++;
        return null;
      }
      this.stats.query(0, reply[3] & 0x0f);
      return reply;
    }
    const query = r.message;
    const ctx = { recursionAllowed: allowed };
    const limit = udp ? udpLimit(query) : MAX_MESSAGE;
    const result = answerQuery(this.#zone, query, ctx, this.#zones);
    switch (result.kind) {
      case "drop":
        this.stats.dropped++;
        return null;
      case "reply": {
        if (this.#fill && result.message.aa && query.questions.length === 1) {
          this.#table = this.#fill(nameKey(query.questions[0].name)) ?? this.#table;
        }
        return this.#encode(result.message, limit);
      }
      case "forward": {
        const fwd = this.#forwarder;
        if (!fwd) return this.#encode(replyTo(query, Rcode.SERVFAIL, ctx), limit);
        return fwd.resolve(result.question).then((f) =>
          this.#encode(
            f.ok ? forwardedReply(query, f.message) : replyTo(query, Rcode.SERVFAIL, ctx),
            limit,
          )
        ).catch(() => this.#encode(replyTo(query, Rcode.SERVFAIL, ctx), limit));
      }
      case "chase": {
        const fwd = this.#forwarder;
        if (!fwd) return this.#encode(result.message, limit);
        return fwd.resolve({ name: result.target, type: result.type, class: RRClass.IN }).then((
          f,
        ) =>
          // When the upstream fails the CNAME alone still tells the client where to look.
          this.#encode(f.ok ? chasedReply(result.message, f.message) : result.message, limit)
        ).catch(() => this.#encode(result.message, limit));
      }
    }
  }
}
