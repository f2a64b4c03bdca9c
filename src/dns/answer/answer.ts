/**
 * Answers one decoded query from the zone: the authoritative half of svcgate's DNS, and the
 * decision to forward, refuse or reject everything else. Pure: no I/O, no clock.
 *
 * Follows CoreDNS's field behaviour: NODATA (NOERROR, empty answer, SOA in authority) for an
 * existing name asked with another type, NXDOMAIN with SOA otherwise, SERVFAIL for cluster names
 * before the first snapshot, REFUSED for zone transfers and for recursion outside the allowed
 * clients, NOTIMP for opcodes other than QUERY and for classes other than IN/ANY, FORMERR for
 * malformed queries, BADVERS for EDNS versions above 0.
 * @module
 */

import { encodeHeaderOnlyReply } from "../codec/encode.ts";
import { nameKey } from "../codec/names.ts";
import {
  CLASSIC_UDP_SIZE,
  type Edns,
  type Header,
  type Message,
  type NameData,
  Opcode,
  OUR_UDP_SIZE,
  type Question,
  Rcode,
  type ResourceRecord,
  RRClass,
  RRType,
} from "../codec/records.ts";
import { findApex, parseDashedIp, recordsOfType, soaRecord, type Zone } from "../zone/zone.ts";

/** Facts about the client that change the answer. */
export interface AnswerContext {
  /** True when the client's address is inside the recursion-allowed CIDRs. */
  readonly recursionAllowed: boolean;
}

/** What to do with a query. */
export type AnswerResult =
  /** Send this reply. */
  | { readonly kind: "reply"; readonly message: Message }
  /** Not ours and the client may recurse: ask the upstream resolvers. */
  | { readonly kind: "forward"; readonly question: Question }
  /**
   * Ours, but a CNAME points outside our zones (ExternalName): send `message` after appending
   * the upstream's answer for `target`/`type` when the client may recurse.
   */
  | {
    readonly kind: "chase";
    readonly message: Message;
    readonly target: string;
    readonly type: number;
  }
  /** Do not answer at all (a response, not a query). */
  | { readonly kind: "drop" };

/** Longest CNAME chain followed inside our zones. */
const MAX_CHAIN = 8;

/** The largest UDP reply a query allows: its EDNS size (at least 512, at most ours), else 512. */
export function udpLimit(query: Pick<Message, "edns">): number {
  return udpPayloadLimit(query.edns ? query.edns.udpSize : -1);
}

/** {@link udpLimit} from the requestor's EDNS UDP size, -1 without EDNS (the hot path's form). */
export function udpPayloadLimit(ednsSize: number): number {
  if (ednsSize < 0) return CLASSIC_UDP_SIZE;
  return Math.min(Math.max(ednsSize, CLASSIC_UDP_SIZE), OUR_UDP_SIZE);
}

/** The OPT record svcgate puts in a reply to an EDNS query. */
export function replyEdns(query: Pick<Message, "edns">): Edns | undefined {
  if (!query.edns) return undefined;
  return { udpSize: OUR_UDP_SIZE, version: 0, dnssecOk: query.edns.dnssecOk, options: [] };
}

/** A reply skeleton for a query: header bits echoed, question echoed exactly. */
export function replyTo(
  query: Message,
  rcode: number,
  ctx: AnswerContext,
  parts: Partial<Pick<Message, "aa" | "answers" | "authority" | "additional" | "tc">> = {},
): Message {
  const edns = replyEdns(query);
  return {
    id: query.id,
    qr: true,
    opcode: query.opcode,
    aa: parts.aa ?? false,
    tc: parts.tc ?? false,
    rd: query.rd,
    ra: ctx.recursionAllowed,
    ad: false,
    cd: query.cd,
    rcode,
    questions: query.questions,
    answers: parts.answers ?? [],
    authority: parts.authority ?? [],
    additional: parts.additional ?? [],
    ...(edns ? { edns } : {}),
  };
}

/** Reply bytes for an undecodable query with a readable header: FORMERR, never amplified. */
export function formErrFor(header: Header): Uint8Array | null {
  // Never answer something that claims to be a response: that is how reflection loops start.
  if (header.qr) return null;
  return encodeHeaderOnlyReply(
    header,
    header.opcode === Opcode.QUERY ? Rcode.FORMERR : Rcode.NOTIMP,
  );
}

const withOwner = (rr: ResourceRecord, name: string): ResourceRecord =>
  rr.name === name ? rr : { ...rr, name };

interface Lookup {
  rcode: number;
  answers: ResourceRecord[];
  authority: ResourceRecord[];
  additional: ResourceRecord[];
  /** Set when a CNAME leads out of our zones. */
  external?: { target: string; type: number };
}

function negative(zone: Zone, apex: string, rcode: number, answers: ResourceRecord[]): Lookup {
  return { rcode, answers, authority: [soaRecord(zone, apex)], additional: [] };
}

/** Records of `pods insecure`: `1-2-3-4.<ns>.pod.<zone>` -> 1.2.3.4 when the namespace exists. */
function podRecord(zone: Zone, key: string, type: number, owner: string): Lookup | null {
  const suffix = `.pod.${zone.domain}`;
  if (!key.endsWith(suffix)) return null;
  const labels = key.slice(0, -suffix.length).split(".");
  if (labels.length !== 2 || !zone.namespaces.has(labels[1])) return null;
  const ip = parseDashedIp(labels[0]);
  if (!ip) return null;
  const rrType = ip.family === 4 ? RRType.A : RRType.AAAA;
  if (type === rrType || type === RRType.ANY) {
    const rr: ResourceRecord = {
      name: owner,
      type: rrType,
      class: RRClass.IN,
      ttl: zone.options.ttl,
      data: { address: ip.address },
    };
    return { rcode: Rcode.NOERROR, answers: [rr], authority: [], additional: [] };
  }
  return negative(zone, zone.domain, Rcode.NOERROR, []);
}

function lookup(
  zone: Zone,
  owner: string,
  type: number,
  depth: number,
  answers: ResourceRecord[],
): Lookup {
  const key = nameKey(owner);
  const apex = findApex(zone, key);
  const node = zone.nodes.get(key);
  if (!node) {
    if (apex === zone.domain) {
      const pod = podRecord(zone, key, type, owner);
      if (pod) return { ...pod, answers: [...answers, ...pod.answers] };
    }
    return negative(zone, apex ?? zone.domain, Rcode.NXDOMAIN, answers);
  }
  const cname = recordsOfType(node, RRType.CNAME);
  if (cname.length > 0 && type !== RRType.CNAME && type !== RRType.ANY) {
    const rr = withOwner(cname[0], owner);
    const chain = [...answers, rr];
    const target = (rr.data as NameData).target;
    if (depth >= MAX_CHAIN) {
      return { rcode: Rcode.NOERROR, answers: chain, authority: [], additional: [] };
    }
    if (findApex(zone, nameKey(target)) !== null) {
      return lookup(zone, target, type, depth + 1, chain);
    }
    return {
      rcode: Rcode.NOERROR,
      answers: chain,
      authority: [],
      additional: [],
      external: { target, type },
    };
  }
  if (type === RRType.ANY) {
    const all: ResourceRecord[] = [];
    for (const rr of node.records) all.push(withOwner(rr, owner));
    if (all.length > 0) {
      return { rcode: Rcode.NOERROR, answers: [...answers, ...all], authority: [], additional: [] };
    }
    return negative(zone, apex ?? zone.domain, Rcode.NOERROR, answers);
  }
  const list = recordsOfType(node, type);
  if (list.length === 0) {
    return negative(zone, apex ?? zone.domain, Rcode.NOERROR, answers);
  }
  return {
    rcode: Rcode.NOERROR,
    answers: [...answers, ...list.map((rr) => withOwner(rr, owner))],
    authority: [],
    additional: type === RRType.SRV ? [...node.additional] : [],
  };
}

/**
 * Decides the answer to one decoded query. `zone` is null until the first snapshot is
 * published: cluster names then get SERVFAIL (never a premature NXDOMAIN).
 *
 * @example
 * ```ts
 * const result = answerQuery(zone, query, { recursionAllowed: true });
 * if (result.kind === "reply") send(encodeMessage(result.message, udpLimit(query)));
 * ```
 */
export function answerQuery(
  zone: Zone | null,
  query: Message,
  ctx: AnswerContext,
  /** Cluster domain and reverse apexes, needed to recognise cluster names before a zone exists. */
  zones?: Pick<Zone, "domain" | "reverseApexes">,
): AnswerResult {
  if (query.qr) return { kind: "drop" };
  if (query.opcode !== Opcode.QUERY) return reply(query, Rcode.NOTIMP, ctx);
  if (query.questions.length !== 1) return reply(query, Rcode.FORMERR, ctx);
  if (query.edns && query.edns.version > 0) return reply(query, Rcode.BADVERS, ctx);
  const q = query.questions[0];
  if (q.class !== RRClass.IN && q.class !== RRClass.ANY) return reply(query, Rcode.NOTIMP, ctx);
  switch (q.type) {
    case 0:
    case RRType.OPT:
      return reply(query, Rcode.FORMERR, ctx);
    case RRType.TKEY:
    case RRType.TSIG:
    case RRType.MAILA:
    case RRType.MAILB:
      return reply(query, Rcode.NOTIMP, ctx);
    case RRType.AXFR:
    case RRType.IXFR:
      return reply(query, Rcode.REFUSED, ctx);
  }
  const known = zone ?? zones;
  const key = nameKey(q.name);
  const apex = known ? findApex(known, key) : null;
  if (!zone) {
    if (apex !== null) return reply(query, Rcode.SERVFAIL, ctx);
    return ctx.recursionAllowed
      ? { kind: "forward", question: q }
      : reply(query, Rcode.REFUSED, ctx);
  }
  // PTRs svcgate knows are answered even outside its reverse zones (CoreDNS's fallthrough).
  if (apex === null && (!zone.nodes.has(key) || (q.type !== RRType.PTR && q.type !== RRType.ANY))) {
    return ctx.recursionAllowed
      ? { kind: "forward", question: q }
      : reply(query, Rcode.REFUSED, ctx);
  }
  const found = lookup(zone, q.name, q.type, 0, []);
  const message = replyTo(query, found.rcode, ctx, {
    aa: true,
    answers: found.answers,
    authority: found.authority,
    additional: found.additional,
  });
  if (found.external) {
    if (!ctx.recursionAllowed) return { kind: "reply", message };
    return { kind: "chase", message, target: found.external.target, type: found.external.type };
  }
  return { kind: "reply", message };
}

function reply(query: Message, rcode: number, ctx: AnswerContext): AnswerResult {
  return { kind: "reply", message: replyTo(query, rcode, ctx) };
}

/** The client's reply built from an upstream answer: our header bits, its records. */
export function forwardedReply(query: Message, upstream: Message): Message {
  return replyTo(query, upstream.rcode & 0x0f, { recursionAllowed: true }, {
    answers: upstream.answers,
    authority: upstream.authority,
    additional: upstream.additional,
  });
}

/** A CNAME answer (ExternalName) completed with the upstream's records for its target. */
export function chasedReply(partial: Message, upstream: Message): Message {
  return {
    ...partial,
    rcode: upstream.rcode & 0x0f,
    answers: [...partial.answers, ...upstream.answers],
    authority: upstream.answers.length > 0 ? [] : upstream.authority,
    additional: [],
  };
}
