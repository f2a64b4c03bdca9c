/**
 * Reading DNS messages: a general decoder that never throws and bounds everything by the bytes
 * present (compression pointers only backwards, names at most 255 bytes, counts checked before
 * allocating) and its work: at most {@link MAX_POINTERS_PER_NAME} compression pointers per name
 * and a parse budget of label and pointer steps per message ({@link parseBudget}); and a scanner
 * for the common query shape that the hot path uses without allocating. Pure.
 * @module
 */

import { labelText } from "./names.ts";
import { RDataError, readRData } from "./rdata.ts";
import {
  type Edns,
  type EdnsOption,
  type Header,
  type Message,
  type Question,
  type ResourceRecord,
  RRType,
} from "./records.ts";

/**
 * Compression pointers one name may follow: miekg/dns's (CoreDNS's) limit. A name is at most
 * 255 bytes, so a longer walk can only be an attack: each pointer of a chain costs a step.
 */
export const MAX_POINTERS_PER_NAME = 126;

/**
 * Label and pointer steps a message of `length` bytes may cost to decode: two per byte (at
 * least 1,024). Without pointers a message costs at most one step per two bytes; legitimate
 * compression (a 2-byte pointer to a 5-label name) about one per byte; a 64 KB message whose
 * owners each walk 8,000 pointers ~24 million (~20 ms), now FORMERR after 131,072 (~1 ms).
 */
export function parseBudget(length: number): number {
  return Math.max(1024, 2 * length);
}

/** Which work limit a message hit. */
export type DecodeLimit = "compression_pointers" | "parse_budget";

/** Result of {@link decodeMessage}. */
export type DecodeResult =
  | { readonly ok: true; readonly message: Message }
  | {
    readonly ok: false;
    /** What is wrong and where, e.g. `name at offset 12: compression pointer loops`. */
    readonly error: string;
    /** Present when at least 12 bytes arrived, so a FORMERR can be sent back. */
    readonly header?: Header;
    /** Set when the message was refused for the work it would cost, not for its form. */
    readonly limit?: DecodeLimit;
  };

/** A malformed (or too costly) message; record data errors (rdata.ts) are one kind of it. */
class DecodeError extends RDataError {
  constructor(message: string, readonly limit?: DecodeLimit) {
    super(message);
  }
}

class Reader {
  /** Label and pointer steps left (see parseBudget). */
  steps: number;
  /**
   * @param keep false: names, addresses and texts are checked as usual but not built (read as
   *   "", so a record costs no strings); for the sections a query's reader throws away.
   */
  constructor(readonly buf: Uint8Array, public pos: number, public keep = true) {
    this.steps = parseBudget(buf.length);
  }
  /** Whether the last name read was the root. */
  root = false;
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
   * so every jump goes backwards and a loop is impossible; the wire length is capped at 255,
   * the pointers at MAX_POINTERS_PER_NAME, and every label and pointer spends the budget.
   */
  name(what: string): string {
    const buf = this.buf;
    const start = this.pos;
    let pos = this.pos;
    let jumped = false;
    let wireLen = 1;
    let pointers = 0;
    const parts: string[] = [];
    for (;;) {
      if (--this.steps < 0) {
        throw new DecodeError(
          `${what} at offset ${start}: the message costs more than its parse budget of ${
            parseBudget(buf.length)
          } label and pointer steps`,
          "parse_budget",
        );
      }
      if (pos >= buf.length) {
        throw new DecodeError(`${what} at offset ${start}: name runs past the end`);
      }
      const len = buf[pos];
      if (len === 0) {
        if (!jumped) this.pos = pos + 1;
        this.root = wireLen === 1;
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
        if (++pointers > MAX_POINTERS_PER_NAME) {
          throw new DecodeError(
            `${what} at offset ${start}: name follows more than ${MAX_POINTERS_PER_NAME} compression pointers`,
            "compression_pointers",
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
      if (this.keep) parts.push(labelText(buf, pos + 1, len));
      pos += 1 + len;
    }
    return this.keep ? parts.join(".") : "";
  }
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
export function decodeMessage(
  buf: Uint8Array,
  opts: {
    /**
     * false: the answer, authority and additional records are checked (form, limits) but not
     * returned, only the OPT record is: a query's reader needs nothing else, and a 64 KB query
     * of records then costs no strings or objects per record.
     */
    readonly records?: boolean;
  } = {},
): DecodeResult {
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
    r.keep = opts.records ?? true;
    const readSection = (count: number, section: string): ResourceRecord[] => {
      const out: ResourceRecord[] = [];
      for (let i = 0; i < count; i++) {
        const what = `${section} record ${i + 1}`;
        const ownerAt = r.pos;
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
          if (!r.root) {
            const shown = r.keep ? name : new Reader(buf, ownerAt).name(`${what} name`);
            throw new DecodeError(`${what}: OPT owner is "${shown}", not the root`);
          }
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
        const data = readRData(r, type, rdlen, what);
        if (r.keep) out.push({ name, type, class: klass, ttl, data });
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
    if (e instanceof DecodeError && e.limit) {
      return { ok: false, error: e.message, header, limit: e.limit };
    }
    if (e instanceof RDataError) return { ok: false, error: e.message, header };
    throw e;
  }
}

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
