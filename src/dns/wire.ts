/**
 * DNS wire format (RFC 1035, EDNS0 RFC 6891): a general decoder and encoder with name
 * compression and truncation, plus a fast scanner for the common query shape (one question,
 * optional OPT) that the server's hot path uses without allocating. Pure.
 *
 * Names are presentation text without the trailing dot ("" is the root); a label holding a dot,
 * a backslash or a byte outside printable ASCII is escaped as in zone files (`\.`, `\\`, `\DDD`).
 * @module
 */

import { formatIp } from "../model/ip.ts";

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

/** Result of {@link decodeMessage}. */
export type DecodeResult =
  | { readonly ok: true; readonly message: Message }
  | {
    readonly ok: false;
    /** What is wrong and where, e.g. `name at offset 12: compression pointer loops`. */
    readonly error: string;
    /** Present when at least 12 bytes arrived, so a FORMERR can be sent back. */
    readonly header?: Header;
  };

/** Largest DNS message (TCP length prefix limit). */
export const MAX_MESSAGE = 65535;
/** Classic UDP limit without EDNS. */
export const CLASSIC_UDP_SIZE = 512;
/** The UDP payload size svcgate advertises and never exceeds (DNS Flag Day 2020). */
export const OUR_UDP_SIZE = 1232;

const latin1 = (bytes: Uint8Array, start: number, end: number): string => {
  let s = "";
  for (let i = start; i < end; i++) s += String.fromCharCode(bytes[i]);
  return s;
};

/** Escapes one label's bytes to presentation text. */
function labelText(buf: Uint8Array, start: number, len: number): string {
  let s = "";
  for (let i = start; i < start + len; i++) {
    const c = buf[i];
    if (c === 0x2e || c === 0x5c) s += "\\" + String.fromCharCode(c);
    else if (c > 0x20 && c < 0x7f) s += String.fromCharCode(c);
    else s += "\\" + String(c).padStart(3, "0");
  }
  return s;
}

/**
 * Splits a presentation name into label byte arrays. Returns an error string when a label is
 * empty or longer than 63 bytes, the name is longer than 255 bytes on the wire, or an escape is
 * bad.
 */
export function nameToLabels(name: string): Uint8Array[] | string {
  if (name === "" || name === ".") return [];
  if (name.indexOf("\\") < 0) {
    // No escapes (nearly every name): split on dots, one byte per character.
    const text = name.endsWith(".") ? name.slice(0, -1) : name;
    if (plainNameProblem(text) === null) {
      const out: Uint8Array[] = [];
      let pos = 0;
      for (;;) {
        let end = text.indexOf(".", pos);
        if (end < 0) end = text.length;
        const label = new Uint8Array(end - pos);
        for (let i = pos; i < end; i++) label[i - pos] = text.charCodeAt(i);
        out.push(label);
        if (end === text.length) return out;
        pos = end + 1;
      }
    }
  }
  const text = name.endsWith(".") && !name.endsWith("\\.") ? name.slice(0, -1) : name;
  const labels: Uint8Array[] = [];
  let cur: number[] = [];
  let total = 1;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    if (ch === 0x5c) {
      const next = text.charCodeAt(i + 1);
      if (Number.isNaN(next)) return `Cannot encode name "${name}": it ends with a lone "\\"`;
      if (next >= 0x30 && next <= 0x39) {
        const digits = text.slice(i + 1, i + 4);
        if (!/^\d{3}$/.test(digits) || Number(digits) > 255) {
          return `Cannot encode name "${name}": escape "\\${digits}" is not \\DDD (000-255)`;
        }
        cur.push(Number(digits));
        i += 3;
      } else {
        cur.push(next);
        i += 1;
      }
      continue;
    }
    if (ch === 0x2e) {
      if (cur.length === 0) return `Cannot encode name "${name}": it has an empty label`;
      labels.push(Uint8Array.from(cur));
      total += cur.length + 1;
      cur = [];
      continue;
    }
    if (ch > 0xff) return `Cannot encode name "${name}": character "${text[i]}" is not a byte`;
    cur.push(ch);
  }
  if (cur.length === 0) return `Cannot encode name "${name}": it has an empty label`;
  labels.push(Uint8Array.from(cur));
  total += cur.length + 1;
  for (const l of labels) {
    if (l.length > 63) return `Cannot encode name "${name}": a label is longer than 63 bytes`;
  }
  if (total > 255) return `Cannot encode name "${name}": it is longer than 255 bytes`;
  return labels;
}

/** Null when an escape-free name text (no trailing dot) is valid, else a short reason. */
function plainNameProblem(text: string): string | null {
  if (text.length > 253) return "too long";
  let labelStart = 0;
  for (let i = 0; i <= text.length; i++) {
    const c = i < text.length ? text.charCodeAt(i) : 0x2e;
    if (c > 0xff) return "not a byte";
    if (c === 0x2e) {
      const len = i - labelStart;
      if (len === 0 || len > 63) return "bad label";
      labelStart = i + 1;
    }
  }
  return null;
}

/** True when a presentation name can be encoded (cheaper than {@link nameToLabels}). */
export function isValidName(name: string): boolean {
  if (name === "" || name === ".") return true;
  if (name.indexOf("\\") < 0) {
    return plainNameProblem(name.endsWith(".") ? name.slice(0, -1) : name) === null;
  }
  return typeof nameToLabels(name) !== "string";
}

/** The uncompressed wire form of a name, or null when it cannot be encoded. */
export function nameToWire(name: string): Uint8Array | null {
  if (name !== "" && name !== "." && name.indexOf("\\") < 0) {
    const text = name.endsWith(".") ? name.slice(0, -1) : name;
    if (plainNameProblem(text) !== null) return null;
    // One allocation: small typed arrays are expensive in V8.
    const out = new Uint8Array(text.length + 2);
    let o = 0, pos = 0;
    for (;;) {
      let end = text.indexOf(".", pos);
      if (end < 0) end = text.length;
      out[o++] = end - pos;
      for (let i = pos; i < end; i++) out[o++] = text.charCodeAt(i);
      if (end === text.length) return out;
      pos = end + 1;
    }
  }
  const labels = nameToLabels(name);
  if (typeof labels === "string") return null;
  let len = 1;
  for (const l of labels) len += l.length + 1;
  const out = new Uint8Array(len);
  let o = 0;
  for (const l of labels) {
    out[o++] = l.length;
    out.set(l, o);
    o += l.length;
  }
  return out;
}

/** Lower-cases ASCII letters only (DNS case-insensitivity, RFC 4343). */
export function asciiLower(s: string): string {
  return s.replace(/[A-Z]+/g, (m) => m.toLowerCase());
}

/** Canonical lookup key of a presentation name: ASCII lower case, no trailing dot. */
export function nameKey(name: string): string {
  const t = name.endsWith(".") && !name.endsWith("\\.") ? name.slice(0, -1) : name;
  return asciiLower(t);
}

class DecodeError extends Error {}

class Reader {
  constructor(readonly buf: Uint8Array, public pos: number) {}
  need(n: number, what: string): void {
    if (this.pos + n > this.buf.length) {
      throw new DecodeError(
        `${what} at offset ${this.pos}: needs ${n} bytes, ${this.buf.length - this.pos} left`,
      );
    }
  }
  u8(what: string): number {
    this.need(1, what);
    return this.buf[this.pos++];
  }
  u16(what: string): number {
    this.need(2, what);
    const v = (this.buf[this.pos] << 8) | this.buf[this.pos + 1];
    this.pos += 2;
    return v;
  }
  u32(what: string): number {
    this.need(4, what);
    const b = this.buf;
    const v = ((b[this.pos] << 24) >>> 0) + (b[this.pos + 1] << 16) + (b[this.pos + 2] << 8) +
      b[this.pos + 3];
    this.pos += 4;
    return v;
  }
  bytes(n: number, what: string): Uint8Array {
    this.need(n, what);
    const out = this.buf.slice(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
  /**
   * Reads a possibly compressed name. Pointers must point strictly before the pointer itself,
   * so every jump goes backwards and a loop is impossible; the wire length is capped at 255.
   */
  name(what: string): string {
    const buf = this.buf;
    const start = this.pos;
    let pos = this.pos;
    let jumped = false;
    let wireLen = 1;
    const parts: string[] = [];
    for (;;) {
      if (pos >= buf.length) {
        throw new DecodeError(`${what} at offset ${start}: name runs past the end`);
      }
      const len = buf[pos];
      if (len === 0) {
        if (!jumped) this.pos = pos + 1;
        break;
      }
      const kind = len & 0xc0;
      if (kind === 0xc0) {
        if (pos + 1 >= buf.length) {
          throw new DecodeError(`${what} at offset ${start}: compression pointer is cut off`);
        }
        const target = ((len & 0x3f) << 8) | buf[pos + 1];
        if (target >= pos) {
          throw new DecodeError(
            `${what} at offset ${start}: compression pointer to ${target} does not point backwards (loop)`,
          );
        }
        if (!jumped) this.pos = pos + 2;
        jumped = true;
        pos = target;
        continue;
      }
      if (kind !== 0) {
        throw new DecodeError(
          `${what} at offset ${start}: label type 0x${kind.toString(16)} is unknown`,
        );
      }
      wireLen += len + 1;
      if (wireLen > 255) {
        throw new DecodeError(`${what} at offset ${start}: name is longer than 255 bytes`);
      }
      if (pos + 1 + len > buf.length) {
        throw new DecodeError(`${what} at offset ${start}: label runs past the end`);
      }
      parts.push(labelText(buf, pos + 1, len));
      pos += 1 + len;
    }
    return parts.join(".");
  }
}

function readRData(r: Reader, type: number, rdlen: number, what: string): RData {
  const end = r.pos + rdlen;
  r.need(rdlen, `${what} data`);
  let data: RData;
  switch (type) {
    case RRType.A:
      if (rdlen !== 4) {
        throw new DecodeError(`${what} at offset ${r.pos}: A data is ${rdlen} bytes, not 4`);
      }
      data = {
        address: `${r.buf[r.pos]}.${r.buf[r.pos + 1]}.${r.buf[r.pos + 2]}.${r.buf[r.pos + 3]}`,
      };
      r.pos = end;
      break;
    case RRType.AAAA:
      if (rdlen !== 16) {
        throw new DecodeError(`${what} at offset ${r.pos}: AAAA data is ${rdlen} bytes, not 16`);
      }
      data = { address: formatIp({ family: 6, bytes: r.buf.subarray(r.pos, end) }) };
      r.pos = end;
      break;
    case RRType.CNAME:
    case RRType.NS:
    case RRType.PTR:
      data = { target: r.name(`${what} target`) };
      break;
    case RRType.MX:
      data = { preference: r.u16(`${what} preference`), exchange: r.name(`${what} exchange`) };
      break;
    case RRType.SRV:
      data = {
        priority: r.u16(`${what} priority`),
        weight: r.u16(`${what} weight`),
        port: r.u16(`${what} port`),
        target: r.name(`${what} target`),
      };
      break;
    case RRType.SOA:
      data = {
        mname: r.name(`${what} mname`),
        rname: r.name(`${what} rname`),
        serial: r.u32(`${what} serial`),
        refresh: r.u32(`${what} refresh`),
        retry: r.u32(`${what} retry`),
        expire: r.u32(`${what} expire`),
        minimum: r.u32(`${what} minimum`),
      };
      break;
    case RRType.TXT: {
      const texts: string[] = [];
      while (r.pos < end) {
        const len = r.u8(`${what} string length`);
        if (r.pos + len > end) {
          throw new DecodeError(`${what} at offset ${r.pos}: TXT string overruns data`);
        }
        texts.push(latin1(r.buf, r.pos, r.pos + len));
        r.pos += len;
      }
      data = { texts };
      break;
    }
    default:
      data = { raw: r.bytes(rdlen, `${what} data`) };
  }
  if (r.pos !== end) {
    throw new DecodeError(`${what}: data length ${rdlen} does not match its content`);
  }
  return data;
}

function readHeader(buf: Uint8Array): Header {
  return {
    id: (buf[0] << 8) | buf[1],
    qr: (buf[2] & 0x80) !== 0,
    opcode: (buf[2] >> 3) & 0x0f,
    rd: (buf[2] & 0x01) !== 0,
    cd: (buf[3] & 0x10) !== 0,
    qdcount: (buf[4] << 8) | buf[5],
    ancount: (buf[6] << 8) | buf[7],
    nscount: (buf[8] << 8) | buf[9],
    arcount: (buf[10] << 8) | buf[11],
  };
}

/**
 * Decodes a whole message. Never throws: malformed input returns `{ok: false, error}` naming the
 * offset, with the header when one could be read. Counts are checked against the bytes present
 * before anything is allocated, so a tiny packet claiming 65535 records costs nothing.
 *
 * @example
 * ```ts
 * const r = decodeMessage(packet);
 * if (r.ok) console.log(r.message.questions[0].name);
 * ```
 */
export function decodeMessage(buf: Uint8Array): DecodeResult {
  if (buf.length < 12) {
    return { ok: false, error: `message is ${buf.length} bytes, shorter than a 12-byte header` };
  }
  const header = readHeader(buf);
  try {
    // Every question needs >= 5 bytes and every record >= 11: impossible counts fail early.
    const minBytes = 12 + header.qdcount * 5 +
      (header.ancount + header.nscount + header.arcount) * 11;
    if (minBytes > buf.length) {
      throw new DecodeError(
        `header counts (qd=${header.qdcount} an=${header.ancount} ns=${header.nscount} ar=${header.arcount}) need at least ${minBytes} bytes, message has ${buf.length}`,
      );
    }
    const r = new Reader(buf, 12);
    const questions: Question[] = [];
    for (let i = 0; i < header.qdcount; i++) {
      const name = r.name(`question ${i + 1} name`);
      questions.push({
        name,
        type: r.u16(`question ${i + 1} type`),
        class: r.u16(`question ${i + 1} class`),
      });
    }
    let edns: Edns | undefined;
    let extRcode = 0;
    const readSection = (count: number, section: string): ResourceRecord[] => {
      const out: ResourceRecord[] = [];
      for (let i = 0; i < count; i++) {
        const what = `${section} record ${i + 1}`;
        const name = r.name(`${what} name`);
        const type = r.u16(`${what} type`);
        const klass = r.u16(`${what} class`);
        const ttl = r.u32(`${what} ttl`);
        const rdlen = r.u16(`${what} length`);
        if (type === RRType.OPT) {
          if (section !== "additional") {
            throw new DecodeError(`${what}: OPT outside the additional section`);
          }
          if (edns) throw new DecodeError(`${what}: more than one OPT record`);
          if (name !== "") throw new DecodeError(`${what}: OPT owner is "${name}", not the root`);
          const end = r.pos + rdlen;
          r.need(rdlen, `${what} data`);
          const options: EdnsOption[] = [];
          while (r.pos < end) {
            const code = r.u16(`${what} option code`);
            const olen = r.u16(`${what} option length`);
            if (r.pos + olen > end) {
              throw new DecodeError(`${what}: option ${code} overruns the OPT data`);
            }
            options.push({ code, data: r.bytes(olen, `${what} option`) });
          }
          extRcode = ttl >>> 24;
          edns = {
            udpSize: klass,
            version: (ttl >>> 16) & 0xff,
            dnssecOk: (ttl & 0x8000) !== 0,
            options,
          };
          continue;
        }
        out.push({ name, type, class: klass, ttl, data: readRData(r, type, rdlen, what) });
      }
      return out;
    };
    const answers = readSection(header.ancount, "answer");
    const authority = readSection(header.nscount, "authority");
    const additional = readSection(header.arcount, "additional");
    if (r.pos !== buf.length) {
      throw new DecodeError(
        `${buf.length - r.pos} trailing bytes after the last record at offset ${r.pos}`,
      );
    }
    const message: Message = {
      id: header.id,
      qr: header.qr,
      opcode: header.opcode,
      aa: (buf[2] & 0x04) !== 0,
      tc: (buf[2] & 0x02) !== 0,
      rd: header.rd,
      ra: (buf[3] & 0x80) !== 0,
      ad: (buf[3] & 0x20) !== 0,
      cd: header.cd,
      rcode: (extRcode << 4) | (buf[3] & 0x0f),
      questions,
      answers,
      authority,
      additional,
      ...(edns ? { edns } : {}),
    };
    return { ok: true, message };
  } catch (e) {
    if (e instanceof DecodeError) return { ok: false, error: e.message, header };
    throw e;
  }
}

/** Grows as needed; tracks compression targets. */
class Writer {
  buf = new Uint8Array(512);
  len = 0;
  /** Lower-cased name suffix (presentation) -> offset of its first label. */
  readonly names = new Map<string, number>();
  ensure(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.len + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }
  u8(v: number): void {
    this.ensure(1);
    this.buf[this.len++] = v;
  }
  u16(v: number): void {
    this.ensure(2);
    this.buf[this.len++] = (v >> 8) & 0xff;
    this.buf[this.len++] = v & 0xff;
  }
  u32(v: number): void {
    this.ensure(4);
    this.buf[this.len++] = (v >>> 24) & 0xff;
    this.buf[this.len++] = (v >>> 16) & 0xff;
    this.buf[this.len++] = (v >>> 8) & 0xff;
    this.buf[this.len++] = v & 0xff;
  }
  bytes(b: Uint8Array): void {
    this.ensure(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
  }
  /** Writes a name, compressed against earlier names when `compress`. */
  name(name: string, compress: boolean): void {
    if (name.indexOf("\\") < 0 && name !== "" && name !== "." && this.#plainName(name, compress)) {
      return;
    }
    const labels = nameToLabels(name);
    if (typeof labels === "string") throw new Error(labels);
    const keys: string[] = [];
    // Suffix keys are built from the escaped lower-case label texts, so equal names match.
    for (let i = 0; i < labels.length; i++) {
      let k = "";
      for (let j = i; j < labels.length; j++) {
        k += (j > i ? "." : "") + labelText(labels[j], 0, labels[j].length).toLowerCase();
      }
      keys.push(k);
    }
    for (let i = 0; i < labels.length; i++) {
      if (compress) {
        const at = this.names.get(keys[i]);
        if (at !== undefined) {
          this.u16(0xc000 | at);
          return;
        }
      }
      if (this.len < 0x4000 && !this.names.has(keys[i])) this.names.set(keys[i], this.len);
      this.u8(labels[i].length);
      this.bytes(labels[i]);
    }
    this.u8(0);
  }
  /**
   * Names without escapes (nearly all): labels are written straight from the text and suffix
   * keys are slices of its lower-case form. Returns false (nothing written) when the name needs
   * the general path, which also produces the error for invalid names.
   */
  #plainName(name: string, compress: boolean): boolean {
    const text = name.endsWith(".") ? name.slice(0, -1) : name;
    if (plainNameProblem(text) !== null) return false;
    const lower = asciiLower(text);
    this.ensure(text.length + 2);
    let pos = 0;
    for (;;) {
      const key = pos === 0 ? lower : lower.slice(pos);
      if (compress) {
        const at = this.names.get(key);
        if (at !== undefined) {
          this.u16(0xc000 | at);
          return true;
        }
      }
      if (this.len < 0x4000 && !this.names.has(key)) this.names.set(key, this.len);
      let end = text.indexOf(".", pos);
      if (end < 0) end = text.length;
      const b = this.buf;
      b[this.len++] = end - pos;
      for (let i = pos; i < end; i++) b[this.len++] = text.charCodeAt(i);
      if (end === text.length) break;
      pos = end + 1;
    }
    this.buf[this.len++] = 0;
    return true;
  }
  /** Forgets compression targets at or after `len` (after a rollback). */
  rollback(len: number): void {
    this.len = len;
    for (const [k, off] of this.names) if (off >= len) this.names.delete(k);
  }
}

function parseV4Bytes(text: string): number[] | null {
  const parts = text.split(".");
  if (parts.length !== 4) return null;
  const out: number[] = [];
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p) || Number(p) > 255) return null;
    out.push(Number(p));
  }
  return out;
}

function parseV6Bytes(text: string): number[] | null {
  const halves = text.split("::");
  if (halves.length > 2) return null;
  const groups = (s: string) => (s === "" ? [] : s.split(":"));
  const left = groups(halves[0]);
  const right = halves.length === 2 ? groups(halves[1]) : [];
  const all: number[] = [];
  const tail: number[] = [];
  const push = (list: string[], into: number[]): boolean => {
    for (let i = 0; i < list.length; i++) {
      const g = list[i];
      if (g.includes(".") && i === list.length - 1) {
        const v4 = parseV4Bytes(g);
        if (!v4) return false;
        into.push((v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3]);
        continue;
      }
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return false;
      into.push(parseInt(g, 16));
    }
    return true;
  };
  if (!push(left, all) || !push(right, tail)) return null;
  const missing = 8 - all.length - tail.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return null;
  const words = [...all, ...new Array(halves.length === 2 ? missing : 0).fill(0), ...tail];
  const out: number[] = [];
  for (const w of words) out.push(w >> 8, w & 0xff);
  return out;
}

function writeRData(w: Writer, rr: ResourceRecord): void {
  const lenAt = w.len;
  w.u16(0);
  const d = rr.data as unknown as Record<string, unknown>;
  const start = w.len;
  if ("raw" in d) {
    w.bytes(d.raw as Uint8Array);
  } else {
    switch (rr.type) {
      case RRType.A: {
        const b = parseV4Bytes((d as unknown as AddressData).address);
        if (!b) throw new Error(`Cannot encode A record "${rr.name}": "${d.address}" is not IPv4`);
        for (const x of b) w.u8(x);
        break;
      }
      case RRType.AAAA: {
        const b = parseV6Bytes((d as unknown as AddressData).address);
        if (!b) {
          throw new Error(`Cannot encode AAAA record "${rr.name}": "${d.address}" is not IPv6`);
        }
        for (const x of b) w.u8(x);
        break;
      }
      case RRType.CNAME:
      case RRType.NS:
      case RRType.PTR:
        w.name((d as unknown as NameData).target, true);
        break;
      case RRType.MX:
        w.u16((d as unknown as MxData).preference);
        w.name((d as unknown as MxData).exchange, true);
        break;
      case RRType.SRV: {
        const s = d as unknown as SrvData;
        w.u16(s.priority);
        w.u16(s.weight);
        w.u16(s.port);
        // RFC 2782: the SRV target must not be compressed.
        w.name(s.target, false);
        break;
      }
      case RRType.SOA: {
        const s = d as unknown as SoaData;
        w.name(s.mname, true);
        w.name(s.rname, true);
        w.u32(s.serial);
        w.u32(s.refresh);
        w.u32(s.retry);
        w.u32(s.expire);
        w.u32(s.minimum);
        break;
      }
      case RRType.TXT:
        for (const t of (d as unknown as TxtData).texts) {
          if (t.length > 255) {
            throw new Error(`Cannot encode TXT record "${rr.name}": a string exceeds 255 bytes`);
          }
          w.u8(t.length);
          for (let i = 0; i < t.length; i++) w.u8(t.charCodeAt(i) & 0xff);
        }
        break;
      default:
        throw new Error(
          `Cannot encode record "${rr.name}" of type ${typeName(rr.type)}: no raw data`,
        );
    }
  }
  const len = w.len - start;
  w.buf[lenAt] = len >> 8;
  w.buf[lenAt + 1] = len & 0xff;
}

function writeRecord(w: Writer, rr: ResourceRecord): void {
  w.name(rr.name, true);
  w.u16(rr.type);
  w.u16(rr.class);
  w.u32(rr.ttl >>> 0);
  writeRData(w, rr);
}

function writeOpt(w: Writer, edns: Edns, rcode: number): void {
  w.u8(0);
  w.u16(RRType.OPT);
  w.u16(edns.udpSize);
  w.u8((rcode >> 4) & 0xff);
  w.u8(edns.version);
  w.u16(edns.dnssecOk ? 0x8000 : 0);
  let len = 0;
  for (const o of edns.options) len += 4 + o.data.length;
  w.u16(len);
  for (const o of edns.options) {
    w.u16(o.code);
    w.u16(o.data.length);
    w.bytes(o.data);
  }
}

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

/**
 * Encodes a message with name compression. When it exceeds `maxSize`, answer records are kept
 * while they fit and TC is set; authority and additional records that do not fit are dropped
 * (additional ones silently, as RFC 2181 allows). The header, question and OPT always stay.
 * Throws only on data that cannot be encoded (a bad name or address in a record we built).
 *
 * @example
 * ```ts
 * const bytes = encodeMessage(reply, 512);
 * ```
 */
export function encodeMessage(msg: Message, maxSize: number = MAX_MESSAGE): Uint8Array {
  const w = new Writer();
  encodeInto(w, msg, maxSize);
  return w.buf.slice(0, w.len);
}

/**
 * An encoder that reuses its buffer: {@link MessageEncoder.encode} returns a view that is valid
 * until the next call. For bulk encoding (precomputing answers), where allocations dominate.
 */
export class MessageEncoder {
  readonly #w = new Writer();
  /** Encodes like {@link encodeMessage}; the result is overwritten by the next call. */
  encode(msg: Message, maxSize: number = MAX_MESSAGE): Uint8Array {
    this.#w.len = 0;
    this.#w.names.clear();
    encodeInto(this.#w, msg, maxSize);
    return this.#w.buf.subarray(0, this.#w.len);
  }
}

function encodeInto(w: Writer, msg: Message, maxSize: number): void {
  const limit = Math.min(Math.max(maxSize, 12), MAX_MESSAGE);
  w.ensure(12);
  w.len = 12;
  for (const q of msg.questions) {
    w.name(q.name, true);
    w.u16(q.type);
    w.u16(q.class);
  }
  const optLen = msg.edns ? 11 + msg.edns.options.reduce((n, o) => n + 4 + o.data.length, 0) : 0;
  let tc = msg.tc;
  const counts = [0, 0, 0];
  const sections = [msg.answers, msg.authority, msg.additional];
  let full = false;
  for (let s = 0; s < 3 && !full; s++) {
    for (const rr of sections[s]) {
      const before = w.len;
      writeRecord(w, rr);
      if (w.len + optLen > limit) {
        w.rollback(before);
        full = true;
        if (s < 2) tc = true;
        break;
      }
      counts[s]++;
    }
  }
  if (msg.edns) writeOpt(w, msg.edns, msg.rcode);
  const b = w.buf;
  b[0] = msg.id >> 8;
  b[1] = msg.id & 0xff;
  b[2] = (msg.qr ? 0x80 : 0) | ((msg.opcode & 0x0f) << 3) | (msg.aa ? 0x04 : 0) |
    (tc ? 0x02 : 0) | (msg.rd ? 0x01 : 0);
  b[3] = (msg.ra ? 0x80 : 0) | (msg.ad ? 0x20 : 0) | (msg.cd ? 0x10 : 0) | (msg.rcode & 0x0f);
  const qd = msg.questions.length;
  const ar = counts[2] + (msg.edns ? 1 : 0);
  b[4] = qd >> 8;
  b[5] = qd & 0xff;
  b[6] = counts[0] >> 8;
  b[7] = counts[0] & 0xff;
  b[8] = counts[1] >> 8;
  b[9] = counts[1] & 0xff;
  b[10] = ar >> 8;
  b[11] = ar & 0xff;
}

/**
 * A header-only reply (FORMERR, NOTIMP, ...) to a query whose body could not be used: echoes
 * the ID, opcode, RD and CD, and nothing else, so it is never larger than the query.
 */
export function encodeHeaderOnlyReply(header: Header, rcode: number): Uint8Array {
  const b = new Uint8Array(12);
  b[0] = header.id >> 8;
  b[1] = header.id & 0xff;
  b[2] = 0x80 | ((header.opcode & 0x0f) << 3) | (header.rd ? 0x01 : 0);
  b[3] = (header.cd ? 0x10 : 0) | (rcode & 0x0f);
  return b;
}

// ---------------------------------------------------------------------------------------------
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

// ---------------------------------------------------------------------------------------------
// Fast path.

/** What {@link scanQuery} found; reused between calls so the hot path allocates nothing. */
export interface QueryScan {
  /** Offset just past the question name (the name starts at 12). */
  qnameEnd: number;
  qtype: number;
  qclass: number;
  /** True when the query carries an OPT record. */
  hasEdns: boolean;
  /** Requestor's EDNS UDP size (0 without OPT). */
  ednsSize: number;
  /** DO bit of the OPT record. */
  dnssecOk: boolean;
}

/** A fresh {@link QueryScan} to pass to {@link scanQuery}. */
export function newQueryScan(): QueryScan {
  return { qnameEnd: 0, qtype: 0, qclass: 0, hasEdns: false, ednsSize: 0, dnssecOk: false };
}

/**
 * Recognises the common query shape in `buf[0..len)`: QR=0, opcode QUERY, one uncompressed
 * question, no answer/authority records, and at most one OPT record of version 0 ending exactly
 * at `len`. Returns true and fills `out` when it matches; false means "use the general path"
 * (which also handles every malformed case), never that the packet is bad.
 */
export function scanQuery(buf: Uint8Array, len: number, out: QueryScan): boolean {
  if (len < 17 || len > buf.length) return false;
  // QR=0, opcode 0; ignore AA/TC/RD bits; Z/AD/CD and rcode ignored as well.
  if ((buf[2] & 0xf8) !== 0) return false;
  if (
    buf[4] !== 0 || buf[5] !== 1 || buf[6] !== 0 || buf[7] !== 0 || buf[8] !== 0 || buf[9] !== 0
  ) {
    return false;
  }
  if (buf[10] !== 0 || buf[11] > 1) return false;
  let pos = 12;
  for (;;) {
    if (pos >= len) return false;
    const l = buf[pos];
    if (l === 0) break;
    if (l > 63) return false;
    pos += l + 1;
    if (pos - 12 > 254) return false;
  }
  pos++;
  if (pos + 4 > len) return false;
  out.qnameEnd = pos;
  out.qtype = (buf[pos] << 8) | buf[pos + 1];
  out.qclass = (buf[pos + 2] << 8) | buf[pos + 3];
  pos += 4;
  out.hasEdns = false;
  out.ednsSize = 0;
  out.dnssecOk = false;
  if (buf[11] === 0) return pos === len;
  // OPT: root name, type 41, class = size, ttl = extrcode|version|flags, rdlen, options.
  if (pos + 11 > len || buf[pos] !== 0 || buf[pos + 1] !== 0 || buf[pos + 2] !== 41) return false;
  if (buf[pos + 6] !== 0) return false; // version != 0 -> BADVERS via the general path
  const rdlen = (buf[pos + 9] << 8) | buf[pos + 10];
  if (pos + 11 + rdlen !== len) return false;
  // Options must be well formed, else the general path answers FORMERR.
  let o = pos + 11;
  while (o < len) {
    if (o + 4 > len) return false;
    o += 4 + ((buf[o + 2] << 8) | buf[o + 3]);
  }
  if (o !== len) return false;
  out.hasEdns = true;
  out.ednsSize = (buf[pos + 3] << 8) | buf[pos + 4];
  out.dnssecOk = (buf[pos + 7] & 0x80) !== 0;
  return true;
}
