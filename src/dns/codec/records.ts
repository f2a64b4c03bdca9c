/**
 * DNS message and record types (RFC 1035, EDNS0 RFC 6891): type, class, rcode and opcode
 * numbers, the shapes of records and messages, and their presentation (zone-file) text. Pure.
 *
 * Names are presentation text without the trailing dot ("" is the root); a label holding a dot,
 * a backslash or a byte outside printable ASCII is escaped as in zone files (`\.`, `\\`, `\DDD`).
 * A new record type gets its data shape here, its wire form in decode.ts and encode.ts.
 * @module
 */

/** Resource record types used by svcgate (others travel as raw data). */
export const RRType = {
  A: 1,
  NS: 2,
  CNAME: 5,
  SOA: 6,
  PTR: 12,
  MX: 15,
  TXT: 16,
  AAAA: 28,
  SRV: 33,
  OPT: 41,
  DS: 43,
  RRSIG: 46,
  NSEC: 47,
  DNSKEY: 48,
  TKEY: 249,
  TSIG: 250,
  IXFR: 251,
  AXFR: 252,
  MAILB: 253,
  MAILA: 254,
  ANY: 255,
} as const;

/** Classes. */
export const RRClass = { IN: 1, CH: 3, HS: 4, NONE: 254, ANY: 255 } as const;

/** Response codes; values above 15 need EDNS (the upper 8 bits travel in the OPT record). */
export const Rcode = {
  NOERROR: 0,
  FORMERR: 1,
  SERVFAIL: 2,
  NXDOMAIN: 3,
  NOTIMP: 4,
  REFUSED: 5,
  BADVERS: 16,
} as const;

/** Opcodes. */
export const Opcode = { QUERY: 0, IQUERY: 1, STATUS: 2, NOTIFY: 4, UPDATE: 5 } as const;

const TYPE_NAMES: Record<number, string> = {};
for (const [k, v] of Object.entries(RRType)) TYPE_NAMES[v] = k;
const RCODE_NAMES: Record<number, string> = {};
for (const [k, v] of Object.entries(Rcode)) RCODE_NAMES[v] = k;

/** Mnemonic of a record type (`A`, `SRV`), or `TYPE<n>` (RFC 3597) when unknown. */
export function typeName(type: number): string {
  return TYPE_NAMES[type] ?? `TYPE${type}`;
}

/** Record type from its mnemonic or `TYPE<n>` form; null when unknown. */
export function typeFromName(name: string): number | null {
  const upper = name.toUpperCase();
  if (upper in RRType) return RRType[upper as keyof typeof RRType];
  const m = /^TYPE(\d{1,5})$/.exec(upper);
  return m && Number(m[1]) <= 0xffff ? Number(m[1]) : null;
}

/** Mnemonic of an rcode (`NXDOMAIN`), or `RCODE<n>`. */
export function rcodeName(rcode: number): string {
  return RCODE_NAMES[rcode] ?? `RCODE${rcode}`;
}

/** One question. */
export interface Question {
  /** As asked (case preserved), presentation form without trailing dot. */
  readonly name: string;
  readonly type: number;
  readonly class: number;
}

/** Data of A and AAAA records. */
export interface AddressData {
  /** Canonical text of the address. */
  readonly address: string;
}
/** Data of CNAME, NS and PTR records. */
export interface NameData {
  readonly target: string;
}
/** Data of SRV records. */
export interface SrvData {
  readonly priority: number;
  readonly weight: number;
  readonly port: number;
  readonly target: string;
}
/** Data of MX records. */
export interface MxData {
  readonly preference: number;
  readonly exchange: string;
}
/** Data of TXT records: the character-strings, as bytes decoded as Latin-1. */
export interface TxtData {
  readonly texts: readonly string[];
}
/** Data of SOA records. */
export interface SoaData {
  readonly mname: string;
  readonly rname: string;
  readonly serial: number;
  readonly refresh: number;
  readonly retry: number;
  readonly expire: number;
  readonly minimum: number;
}
/** Data of any other record type, kept as bytes. */
export interface RawData {
  readonly raw: Uint8Array;
}

/** Record data; its shape follows the record type. */
export type RData = AddressData | NameData | SrvData | MxData | TxtData | SoaData | RawData;

/** One resource record (never OPT: EDNS lives in {@link Message.edns}). */
export interface ResourceRecord {
  readonly name: string;
  readonly type: number;
  readonly class: number;
  readonly ttl: number;
  readonly data: RData;
}

/** One EDNS option. */
export interface EdnsOption {
  readonly code: number;
  readonly data: Uint8Array;
}

/** The OPT pseudo-record's content. */
export interface Edns {
  /** Requestor's UDP payload size. */
  readonly udpSize: number;
  readonly version: number;
  readonly dnssecOk: boolean;
  readonly options: readonly EdnsOption[];
}

/** A whole DNS message. `rcode` is the full 12-bit value (EDNS extends it). */
export interface Message {
  readonly id: number;
  readonly qr: boolean;
  readonly opcode: number;
  readonly aa: boolean;
  readonly tc: boolean;
  readonly rd: boolean;
  readonly ra: boolean;
  readonly ad: boolean;
  readonly cd: boolean;
  readonly rcode: number;
  readonly questions: readonly Question[];
  readonly answers: readonly ResourceRecord[];
  readonly authority: readonly ResourceRecord[];
  readonly additional: readonly ResourceRecord[];
  readonly edns?: Edns;
}

/** The first 12 bytes of a message, enough to answer FORMERR/NOTIMP. */
export interface Header {
  readonly id: number;
  readonly qr: boolean;
  readonly opcode: number;
  readonly rd: boolean;
  readonly cd: boolean;
  readonly qdcount: number;
  readonly ancount: number;
  readonly nscount: number;
  readonly arcount: number;
}

/** Largest DNS message (TCP length prefix limit). */
export const MAX_MESSAGE = 65535;
/** Classic UDP limit without EDNS. */
export const CLASSIC_UDP_SIZE = 512;
/** The UDP payload size svcgate advertises and never exceeds (DNS Flag Day 2020). */
export const OUR_UDP_SIZE = 1232;

/**
 * A query for the given questions with every header flag at its usual value (recursion desired);
 * `over` replaces any field.
 *
 * @example
 * ```ts
 * encodeMessage(queryMessage([{ name: "web.default.svc.cluster.local", type: RRType.A, class: RRClass.IN }]));
 * ```
 */
export function queryMessage(questions: readonly Question[], over: Partial<Message> = {}): Message {
  return {
    id: 0,
    qr: false,
    opcode: 0,
    aa: false,
    tc: false,
    rd: true,
    ra: false,
    ad: false,
    cd: false,
    rcode: 0,
    questions,
    answers: [],
    authority: [],
    additional: [],
    ...over,
  };
}

// Presentation (zone-file) text, for tests, logs and dig-like output.

function quoteTxt(s: string): string {
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x22 || c === 0x5c) out += "\\" + s[i];
    else if (c >= 0x20 && c < 0x7f) out += s[i];
    else out += "\\" + String(c).padStart(3, "0");
  }
  return out + '"';
}

const fqdn = (n: string): string => (n === "" ? "." : `${n}.`);

/** The record's data in zone-file form (`0 100 80 web.default.svc.cluster.local.`). */
export function formatRData(type: number, data: RData): string {
  const d = data as unknown as Record<string, unknown>;
  if ("raw" in d) {
    const raw = d.raw as Uint8Array;
    return `\\# ${raw.length}${
      raw.length ? " " + [...raw].map((x) => x.toString(16).padStart(2, "0")).join("") : ""
    }`;
  }
  switch (type) {
    case RRType.A:
    case RRType.AAAA:
      return (data as AddressData).address;
    case RRType.CNAME:
    case RRType.NS:
    case RRType.PTR:
      return fqdn((data as NameData).target);
    case RRType.MX:
      return `${(data as MxData).preference} ${fqdn((data as MxData).exchange)}`;
    case RRType.SRV: {
      const s = data as SrvData;
      return `${s.priority} ${s.weight} ${s.port} ${fqdn(s.target)}`;
    }
    case RRType.SOA: {
      const s = data as SoaData;
      return `${fqdn(s.mname)} ${
        fqdn(s.rname)
      } ${s.serial} ${s.refresh} ${s.retry} ${s.expire} ${s.minimum}`;
    }
    case RRType.TXT:
      return (data as TxtData).texts.map(quoteTxt).join(" ");
  }
  return "";
}

/** One record as a zone-file line: `web.default.svc.cluster.local. 30 IN A 198.19.0.10`. */
export function formatRecord(rr: ResourceRecord): string {
  const klass = rr.class === RRClass.IN
    ? "IN"
    : rr.class === RRClass.CH
    ? "CH"
    : `CLASS${rr.class}`;
  return `${fqdn(rr.name)} ${rr.ttl} ${klass} ${typeName(rr.type)} ${
    formatRData(rr.type, rr.data)
  }`;
}
