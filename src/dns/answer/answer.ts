/**
 * Answers one decoded query from the zone: the authoritative half of svcgate's DNS, and the
 * decision to forward, refuse or reject everything else. Pure: no I/O, no clock.
 *
 * Follows CoreDNS's field behaviour: NODATA (NOERROR, empty answer, SOA in authority) for an
 * existing name asked with another type, NXDOMAIN with SOA otherwise, SERVFAIL for cluster names
 * before the first snapshot, REFUSED for zone transfers and for recursion outside the allowed
 * clients, NOTIMP for opcodes other than QUERY and for classes other than IN/ANY, FORMERR for
 * malformed queries, BADVERS for EDNS versions above 0. Unless strict (zone.ts RecordOptions),
 * also what CoreDNS answers beyond the spec: glue for NS, the zone part of names in the
 * question's case, and what is read from services on ask (on_ask_answers.ts).
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
  type SoaData,
} from "../codec/records.ts";
import {
  findApex,
  parseDashedIp,
  type PodRecords,
  recordsOfType,
  soaRecord,
  type Zone,
} from "../zone/zone.ts";
import {
  endpointNameRecords,
  endpointPtrRecords,
  endpointSrvRecords,
  serviceSrvRecords,
} from "./on_ask_answers.ts";

/** This node's pods (Kubernetes mode): the namespace of the pod with an IP. */
export interface NodePods {
  namespaceOf(address: string): string | undefined;
}

/** Facts about the client, and outside the zone, that change the answer. */
export interface AnswerContext {
  /** True when the client's address is inside the recursion-allowed CIDRs. */
  readonly recursionAllowed: boolean;
  /** This node's pods, for `pods verified` (Kubernetes mode). */
  readonly nodePods?: NodePods;
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

/**
 * Pod records: `1-2-3-4.<ns>.pod.<zone>` -> 1.2.3.4 when the namespace exists (`insecure`), and
 * with `verified` only when a pod with that IP is known in that namespace: an endpoint of a
 * service there, or this node's pod (Kubernetes mode). `disabled`: none.
 */
function podRecord(
  zone: Zone,
  key: string,
  type: number,
  owner: string,
  ctx: AnswerContext,
): Lookup | null {
  const mode: PodRecords = zone.options.podRecords ?? "insecure";
  if (mode === "disabled") return null;
  const suffix = `.pod.${zone.domain}`;
  if (!key.endsWith(suffix)) return null;
  const labels = key.slice(0, -suffix.length).split(".");
  if (labels.length !== 2 || !zone.namespaces.has(labels[1])) return null;
  const ip = parseDashedIp(labels[0]);
  if (!ip) return null;
  if (mode === "verified" && !podKnown(zone, ip.address, labels[1], ctx)) return null;
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

/** True when a pod with this IP is known in namespace `ns` (`pods verified`). */
function podKnown(zone: Zone, address: string, ns: string, ctx: AnswerContext): boolean {
  if (ctx.nodePods?.namespaceOf(address) === ns) return true;
  const prefix = `${ns}/`;
  return (zone.endpointsAt?.(address) ?? []).some((k) => k.toLowerCase().startsWith(prefix));
}

function lookup(
  zone: Zone,
  owner: string,
  type: number,
  depth: number,
  answers: ResourceRecord[],
  ctx: AnswerContext,
): Lookup {
  const key = nameKey(owner);
  const apex = findApex(zone, key);
  const node = zone.nodes.get(key);
  const lazyPtrs = type === RRType.PTR || type === RRType.ANY
    ? endpointPtrRecords(zone, key, owner)
    : [];
  if (!node) {
    if (apex === zone.domain) {
      const pod = podRecord(zone, key, type, owner, ctx);
      if (pod) return { ...pod, answers: [...answers, ...pod.answers] };
      const ep = endpointNameRecords(zone, key, type, owner);
      if (ep) {
        if (ep.records.length === 0) return negative(zone, apex, Rcode.NOERROR, answers);
        return {
          rcode: Rcode.NOERROR,
          answers: [...answers, ...ep.records],
          authority: [],
          additional: ep.additional,
        };
      }
    }
    if (lazyPtrs.length > 0) {
      return {
        rcode: Rcode.NOERROR,
        answers: [...answers, ...lazyPtrs],
        authority: [],
        additional: [],
      };
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
      return lookup(zone, target, type, depth + 1, chain, ctx);
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
    all.push(...lazyPtrs);
    if (all.length > 0) {
      return { rcode: Rcode.NOERROR, answers: [...answers, ...all], authority: [], additional: [] };
    }
    return negative(zone, apex ?? zone.domain, Rcode.NOERROR, answers);
  }
  const list = recordsOfType(node, type);
  if (list.length === 0 && type === RRType.SRV && apex === zone.domain) {
    // CoreDNS's SRV at a service's bare name or a headless endpoint's name, read on ask.
    const srv = serviceSrvRecords(zone, key, owner) ?? endpointSrvRecords(zone, key, owner);
    if (srv && srv.records.length > 0) {
      return {
        rcode: Rcode.NOERROR,
        answers: [...answers, ...srv.records],
        authority: [],
        additional: srv.additional,
      };
    }
  }
  if (list.length === 0 && lazyPtrs.length === 0) {
    return negative(zone, apex ?? zone.domain, Rcode.NOERROR, answers);
  }
  return {
    rcode: Rcode.NOERROR,
    answers: [...answers, ...list.map((rr) => withOwner(rr, owner)), ...lazyPtrs],
    authority: [],
    additional: type === RRType.SRV
      ? [...node.additional]
      : type === RRType.NS
      ? glue(zone, list)
      : [],
  };
}

/** The addresses of NS targets inside our zones (CoreDNS answers `ns.dns.<zone>` with them). */
function glue(zone: Zone, ns: readonly ResourceRecord[]): ResourceRecord[] {
  const out: ResourceRecord[] = [];
  for (const rr of ns) {
    const target = zone.nodes.get(nameKey((rr.data as NameData).target));
    if (!target) continue;
    for (const a of target.records) {
      if (a.type === RRType.A || a.type === RRType.AAAA) out.push(a);
    }
  }
  return out;
}

/**
 * `name` (canonical) with its `apex` part as the question wrote it (`asked`): CoreDNS keeps the
 * asked case of the zone in the names it writes (SRV targets, their addresses, SOA and NS
 * names), the rest in lower case.
 */
function inAskedCase(name: string, apex: string, asked: string): string {
  if (name === apex) return asked;
  if (
    name.length > apex.length && name.endsWith(apex) && name[name.length - apex.length - 1] === "."
  ) {
    return name.slice(0, name.length - apex.length) + asked;
  }
  return name;
}

/** A record with the names it holds in the question's case of the zone (see inAskedCase). */
function recased(rr: ResourceRecord, apex: string, asked: string, owner: boolean): ResourceRecord {
  const name = owner ? inAskedCase(rr.name, apex, asked) : rr.name;
  switch (rr.type) {
    case RRType.SRV:
    case RRType.NS: {
      const d = rr.data as NameData;
      const target = inAskedCase(d.target, apex, asked);
      return name === rr.name && target === d.target
        ? rr
        : { ...rr, name, data: { ...d, target } as typeof rr.data };
    }
    case RRType.SOA: {
      const d = rr.data as SoaData;
      return {
        ...rr,
        name: inAskedCase(rr.name, apex, asked),
        data: {
          ...d,
          mname: inAskedCase(d.mname, apex, asked),
          rname: inAskedCase(d.rname, apex, asked),
        },
      };
    }
    default:
      return name === rr.name ? rr : { ...rr, name };
  }
}

/** The lookup's names in the question's case of the zone (CoreDNS; not in strict mode). */
function inQuestionCase(found: Lookup, zone: Zone, question: string): Lookup {
  const key = nameKey(question);
  const apex = findApex(zone, key);
  if (apex === null) return found;
  const text = question.endsWith(".") ? question.slice(0, -1) : question;
  const asked = text.slice(text.length - apex.length);
  if (asked === apex) return found;
  return {
    ...found,
    answers: found.answers.map((rr) => recased(rr, apex, asked, false)),
    authority: found.authority.map((rr) => recased(rr, apex, asked, true)),
    additional: found.additional.map((rr) => recased(rr, apex, asked, true)),
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
  const knownPtr = (q.type === RRType.PTR || q.type === RRType.ANY) &&
    (zone.nodes.has(key) || endpointPtrRecords(zone, key, q.name).length > 0);
  if (apex === null && !knownPtr) {
    return ctx.recursionAllowed
      ? { kind: "forward", question: q }
      : reply(query, Rcode.REFUSED, ctx);
  }
  let found = lookup(zone, q.name, q.type, 0, [], ctx);
  if (!zone.options.strictSpec) found = inQuestionCase(found, zone, q.name);
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
