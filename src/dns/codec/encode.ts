/**
 * Writing DNS messages: the encoder with name compression (RFC 1035 4.1.4) and truncation to a
 * size limit, a buffer-reusing variant for bulk precomputation, and header-only error replies.
 * Throws only on data svcgate built wrong (a bad name or address). Pure.
 * @module
 */

import { asciiLower, labelText, nameToLabels, plainNameProblem } from "./names.ts";
import { writeRData } from "./rdata.ts";
import {
  type Edns,
  type Header,
  MAX_MESSAGE,
  type Message,
  type ResourceRecord,
  RRType,
} from "./records.ts";

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
 * Encodes a message with name compression. When its answer or authority records do not fit in
 * `maxSize`, the message is truncated: TC set, the question, OPT, and the answer records that fit
 * in 512 bytes, or none at all for an ANY question (as knotd, so the reply to the amplification
 * query is never larger than the query); the client retries over TCP for the whole answer,
 * and a client that cannot still has what fit. Additional records
 * that do not fit are dropped silently, without TC (RFC 2181 9). Throws only on data that cannot
 * be encoded (a bad name or address in a record we built).
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

/**
 * A truncated answer keeps the answer records that fit in the first 512 bytes, because musl up
 * to 1.2.3 (Alpine 3.17 and older) never retries over TCP and would otherwise resolve nothing.
 * Kept to 512 bytes whatever the client's EDNS size, so the reply stays small.
 */
const PARTIAL_ANSWER_LIMIT = 512;

/**
 * Whether a truncated reply keeps what fits: yes for a single question of a definite type; no
 * for ANY, the amplification query, whose truncated reply is the question alone (as knotd's).
 */
function keepsPartialAnswer(msg: Message): boolean {
  return msg.questions.length === 1 && msg.questions[0].type !== RRType.ANY;
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
  const afterQuestion = w.len;
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
  if (tc) {
    w.rollback(afterQuestion);
    counts[0] = counts[1] = counts[2] = 0;
    if (!msg.tc && keepsPartialAnswer(msg)) {
      const partialLimit = Math.min(limit, PARTIAL_ANSWER_LIMIT);
      for (const rr of msg.answers) {
        const before = w.len;
        writeRecord(w, rr);
        if (w.len + optLen > partialLimit) {
          w.rollback(before);
          break;
        }
        counts[0]++;
      }
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

/** A message with the 2-byte length prefix it travels with over TCP (RFC 1035 4.2.2). */
export function tcpFrame(message: Uint8Array): Uint8Array {
  const framed = new Uint8Array(message.length + 2);
  framed[0] = message.length >> 8;
  framed[1] = message.length & 0xff;
  framed.set(message, 2);
  return framed;
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
