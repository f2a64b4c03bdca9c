/**
 * One query in, one reply out: the fast path over precomputed answers, then the general path
 * (decode, answer, forward or chase, encode with truncation), counted in the engine's stats. No
 * sockets here: transports (UDP via FFI or node:dgram, TCP) call this with the client's right to
 * recurse (allow_list.ts) and, for the general path, its address (the search path walked on the
 * server needs its namespace: answer/autopath.ts); forwarding goes through the
 * {@link Forwarder} seam.
 * @module
 */

import type { Cidr } from "../../model/ip.ts";
import {
  type AnswerContext,
  answerQuery,
  chasedReply,
  formErrFor,
  forwardedReply,
  replyTo,
  udpLimit,
  udpPayloadLimit,
} from "../answer/answer.ts";
import { type AnswerTable, fastAnswer } from "../answer/fast.ts";
import { rotateAnswers } from "../answer/rotate.ts";
import { searchCandidates, searchOnServer } from "../answer/autopath.ts";
import { clientAddress, ClientNamespaces } from "../answer/client_namespace.ts";
import type { DnsStats } from "./stats.ts";
import type { Forwarder } from "./upstream.ts";
import { type DecodeLimit, decodeMessage, newQueryScan, scanQuery } from "../codec/decode.ts";
import { encodeMessage } from "../codec/encode.ts";
import { nameKey } from "../codec/names.ts";
import { MAX_MESSAGE, type Message, type Question, Rcode, RRClass } from "../codec/records.ts";
import { reverseZoneApexes, type Zone } from "../zone/zone.ts";

/** Handler settings. */
export interface QueryHandlerOptions {
  readonly clusterDomain: string;
  readonly reverseCidrs: readonly Cidr[];
  /** Null when no upstream is configured: forwarded questions then get SERVFAIL. */
  readonly forwarder: Forwarder | null;
  readonly stats: DnsStats;
  /** Client namespaces and this node's pods (default: none known). */
  readonly clients?: ClientNamespaces;
  /** Walk the search path on the server for clients whose namespace is known. Default false. */
  readonly autopath?: boolean;
  /** The host's search domains, walked after the cluster's (autopath.ts hostSearchDomains). */
  readonly searchDomains?: readonly string[];
}

/**
 * Precomputes the answers of a zone name (a key as zone.nodes has them) when it has none yet;
 * returns the table to use from now on, or null when nothing changed.
 */
export type AnswerFiller = (name: string) => AnswerTable | null;

/** A reply now, none, or one later (forwarded). */
export type HandleOutcome = Uint8Array | null | Promise<Uint8Array | null>;

/** A packet refused for the work it would cost (codec/decode.ts limits). */
export interface LimitHit {
  readonly limit: DecodeLimit;
  readonly detail: string;
}

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
  readonly #clients: ClientNamespaces;
  readonly #autopath: boolean;
  readonly #searchDomains: readonly string[];
  readonly #scan = newQueryScan();
  readonly #scratch = new Uint8Array(MAX_MESSAGE);
  #limitHit: LimitHit | null = null;
  /** Rotates multi-record answers (answer/rotate.ts): one turn per answer given. */
  #turn = 0;
  readonly stats: DnsStats;
  /**
   * The zone comes from a snapshot saved by an earlier process (after a restart): names it holds
   * are answered, but a name it lacks may have been added since, so NXDOMAIN becomes SERVFAIL
   * (as before the first sync), never a premature, negatively cached NXDOMAIN.
   */
  provisional = false;

  constructor(options: QueryHandlerOptions) {
    this.#zones = {
      domain: nameKey(options.clusterDomain),
      reverseApexes: [...new Set(options.reverseCidrs.flatMap(reverseZoneApexes))],
    };
    this.#forwarder = options.forwarder;
    this.#clients = options.clients ?? new ClientNamespaces();
    this.#autopath = options.autopath ?? false;
    this.#searchDomains = options.searchDomains ?? [];
    this.stats = options.stats;
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
    const limit = udp ? udpPayloadLimit(scan.hasEdns ? scan.ednsSize : -1) : MAX_MESSAGE;
    const n = fastAnswer(table, q, scan, out, outOff, limit, allowed, this.#turn);
    if (n > 0) {
      this.#turn = (this.#turn + 1) & 0x3fffffff;
      this.stats.query(scan.qtype, out[outOff + 3] & 0x0f, !udp);
      this.stats.counters.fastPath++;
    }
    return n;
  }

  /**
   * The general path for one packet. `client` is the sender's address as text (undefined when
   * the transport does not say: no search path on the server then). Never throws.
   */
  general(
    packet: Uint8Array,
    allowed: boolean,
    udp: boolean,
    client?: string | null,
  ): HandleOutcome {
    try {
      return this.#general(packet, allowed, udp, client ?? null);
    } catch {
      // A bug must cost one SERVFAIL, never the server.
      this.stats.counters.internalErrors++;
      const r = decodeMessage(packet, { records: false });
      if (r.ok && !r.message.qr) {
        return this.#encode(
          replyTo(r.message, Rcode.SERVFAIL, { recursionAllowed: allowed }),
          MAX_MESSAGE,
          !udp,
        );
      }
      this.stats.counters.dropped++;
      return null;
    }
  }

  /**
   * The work limit the last packet on the general path hit, if any, cleared by reading it: the
   * transport, which knows the client's address, reports it (limit_log.ts counts and logs).
   */
  takeLimitHit(): LimitHit | null {
    const hit = this.#limitHit;
    this.#limitHit = null;
    return hit;
  }

  /** Fast path, then the general path (for TCP and the portable UDP transport). */
  handle(
    packet: Uint8Array,
    allowed: boolean,
    udp: boolean,
    client?: string | null,
  ): HandleOutcome {
    const out = this.#scratch;
    const n = packet.length >= 17 ? this.fast(packet, packet.length, out, 0, udp, allowed) : -1;
    if (n > 0) return out.slice(0, n);
    return this.general(packet, allowed, udp, client);
  }

  /**
   * The search path walked on the server for an NXDOMAIN answer (answer/autopath.ts), or null
   * when the client's namespace is unknown or the name is not under it.
   */
  #search(
    query: Message,
    first: Message,
    ctx: AnswerContext,
    client: string,
    limit: number,
    tcp: boolean,
  ): Promise<Uint8Array> | null {
    const zone = this.#zone;
    if (!zone || !this.#clients.any) return null;
    const address = clientAddress(client);
    const namespace = address === null ? undefined : this.#clients.clientNamespace(address, zone);
    if (namespace === undefined) return null;
    const candidates = searchCandidates(
      zone,
      query.questions[0].name,
      namespace,
      this.#searchDomains,
    );
    if (!candidates) return null;
    const fwd = this.#forwarder;
    const resolve = fwd ? (q: Question) => fwd.resolve(q) : null;
    return searchOnServer(zone, query, candidates, ctx, resolve).then((found) => {
      if (found) this.stats.counters.autopathSuccess++;
      else this.stats.counters.autopathMiss++;
      return this.#encode(found ?? first, limit, tcp);
    }).catch(() => {
      this.stats.counters.internalErrors++;
      return this.#encode(first, limit, tcp);
    });
  }

  /** The message with its multi-record answers rotated one turn further (answer/rotate.ts). */
  #rotated(msg: Message): Message {
    if (msg.answers.length < 2) return msg;
    const answers = rotateAnswers(msg.answers, this.#turn);
    this.#turn = (this.#turn + 1) & 0x3fffffff;
    return answers === msg.answers ? msg : { ...msg, answers };
  }

  #encode(msg: Message, limit: number, tcp: boolean): Uint8Array {
    const bytes = encodeMessage(msg, limit);
    this.stats.query(msg.questions[0]?.type ?? 0, msg.rcode, tcp);
    if ((bytes[2] & 0x02) !== 0) this.stats.counters.truncated++;
    return bytes;
  }

  // A query's answer, authority and additional records are checked but not kept (only its
  // OPT is): answering never reads them, and a 64 KB query of records then allocates nothing
  // per record (issue 20's flat stream, GC pauses that delayed UDP).
  #general(
    packet: Uint8Array,
    allowed: boolean,
    udp: boolean,
    client: string | null,
  ): HandleOutcome {
    const r = decodeMessage(packet, { records: false });
    if (!r.ok) {
      if (r.limit) this.#limitHit = { limit: r.limit, detail: r.error };
      const reply = r.header ? formErrFor(r.header) : null;
      if (!reply) {
        this.stats.counters.dropped++;
        return null;
      }
      this.stats.query(0, reply[3] & 0x0f, !udp);
      return reply;
    }
    const query = r.message;
    const ctx = { recursionAllowed: allowed, nodePods: this.#clients };
    const limit = udp ? udpLimit(query) : MAX_MESSAGE;
    const tcp = !udp;
    const result = answerQuery(this.#zone, query, ctx, this.#zones);
    switch (result.kind) {
      case "drop":
        this.stats.counters.dropped++;
        return null;
      case "reply": {
        if (this.provisional && result.message.rcode === Rcode.NXDOMAIN) {
          return this.#encode(replyTo(query, Rcode.SERVFAIL, ctx), limit, tcp);
        }
        if (result.message.rcode === Rcode.NXDOMAIN && this.#autopath && client !== null) {
          const searched = this.#search(query, result.message, ctx, client, limit, tcp);
          if (searched) return searched;
        }
        if (this.#fill && result.message.aa && query.questions.length === 1) {
          this.#table = this.#fill(nameKey(query.questions[0].name)) ?? this.#table;
        }
        return this.#encode(this.#rotated(result.message), limit, tcp);
      }
      case "forward": {
        const fwd = this.#forwarder;
        if (!fwd) return this.#encode(replyTo(query, Rcode.SERVFAIL, ctx), limit, tcp);
        return fwd.resolve(result.question).then((f) =>
          this.#encode(
            f.ok
              ? this.#rotated(forwardedReply(query, f.message))
              : replyTo(query, Rcode.SERVFAIL, ctx),
            limit,
            tcp,
          )
        ).catch(() => this.#encode(replyTo(query, Rcode.SERVFAIL, ctx), limit, tcp));
      }
      case "chase": {
        const fwd = this.#forwarder;
        if (!fwd) return this.#encode(result.message, limit, tcp);
        return fwd.resolve({ name: result.target, type: result.type, class: RRClass.IN }).then((
          f,
        ) =>
          // When the upstream fails the CNAME alone still tells the client where to look.
          this.#encode(f.ok ? chasedReply(result.message, f.message) : result.message, limit, tcp)
        ).catch(() => this.#encode(result.message, limit, tcp));
      }
    }
  }
}
