/**
 * Precomputed answers: every (name, type) the zone can answer, encoded once as wire bytes when
 * a snapshot is published, kept in flat typed arrays with an open-addressing hash table over
 * the lower-cased wire name. Per query the hot path hashes the question, copies the bytes and
 * patches the ID, flags, question case and OPT record: no decoding, no allocation. Pure.
 * @module
 */

import { answerQuery } from "./answer.ts";
import {
  type Message,
  MessageEncoder,
  nameToWire,
  OUR_UDP_SIZE,
  type QueryScan,
  RRClass,
  RRType,
} from "./wire.ts";
import type { Zone, ZoneNode } from "./zone.ts";

/** Flat table of precomputed replies. */
export interface AnswerTable {
  /** Hash slots: entry index + 1, 0 when empty. Length is a power of two. */
  readonly slots: Int32Array;
  /** Per entry: key offset, key length, qtype, answer offset, answer length, hash. */
  readonly entries: Int32Array;
  readonly keys: Uint8Array;
  readonly answers: Uint8Array;
  readonly count: number;
}

const E = 6;

function hashName(buf: Uint8Array, start: number, end: number, qtype: number): number {
  let h = 0x811c9dc5 ^ qtype;
  for (let i = start; i < end; i++) {
    let c = buf[i];
    if (c >= 0x41 && c <= 0x5a) c |= 0x20;
    h = Math.imul(h ^ c, 0x01000193);
  }
  return h | 0;
}

/** Types whose presence makes a name an address name, asked as an A + AAAA pair by stubs. */
const ADDRESS_TYPES = [RRType.A, RRType.AAAA, RRType.CNAME];

/**
 * Precomputes the reply to every (name, type) pair that has records, plus both A and AAAA for
 * every address name (the NODATA half of an A + AAAA pair is as hot as the data). Empty
 * non-terminals and other NODATA combinations are rare and stay on the general path, as do
 * CNAMEs that leave our zones (chased upstream).
 *
 * @example
 * ```ts
 * const table = buildAnswerTable(zone);
 * ```
 */
export function buildAnswerTable(zone: Zone): AnswerTable {
  const builder = new AnswerTableBuilder();
  for (const [name, node] of zone.nodes) builder.addNode(zone, name, node);
  return builder.finish();
}

/**
 * Builds an {@link AnswerTable} node by node, so a caller can spread the work over several
 * event-loop turns (see engine.ts). Arenas grow by doubling; nothing is allocated per answer.
 */
export class AnswerTableBuilder {
  #keys = new Uint8Array(1 << 16);
  #keyLen = 0;
  #answers = new Uint8Array(1 << 18);
  #ansLen = 0;
  #entries = new Int32Array(E * 1024);
  #count = 0;
  readonly #encoder = new MessageEncoder();

  /** Precomputes the answers of one node. */
  addNode(zone: Zone, name: string, node: ZoneNode): void {
    if (node.records.size === 0) return;
    const key = nameToWire(name);
    if (!key) return;
    const types = new Set<number>(node.records.keys());
    if (ADDRESS_TYPES.some((t) => node.records.has(t))) {
      types.add(RRType.A);
      types.add(RRType.AAAA);
    }
    let keyOff = -1;
    for (const type of types) {
      const query: Message = {
        id: 0,
        qr: false,
        opcode: 0,
        aa: false,
        tc: false,
        rd: false,
        ra: false,
        ad: false,
        cd: false,
        rcode: 0,
        questions: [{ name, type, class: RRClass.IN }],
        answers: [],
        authority: [],
        additional: [],
      };
      // Only authoritative replies are precomputed; chases and forwards stay on the general path.
      const result = answerQuery(zone, query, { recursionAllowed: true });
      if (result.kind !== "reply" || !result.message.aa) continue;
      const bytes = this.#encoder.encode(result.message);
      if (keyOff < 0) {
        keyOff = this.#keyLen;
        this.#keys = grow(this.#keys, this.#keyLen + key.length);
        this.#keys.set(key, keyOff);
        this.#keyLen += key.length;
      }
      this.#answers = grow(this.#answers, this.#ansLen + bytes.length);
      this.#answers.set(bytes, this.#ansLen);
      if ((this.#count + 1) * E > this.#entries.length) {
        const next = new Int32Array(this.#entries.length * 2);
        next.set(this.#entries);
        this.#entries = next;
      }
      const e = this.#count * E;
      const en = this.#entries;
      en[e] = keyOff;
      en[e + 1] = key.length;
      en[e + 2] = type;
      en[e + 3] = this.#ansLen;
      en[e + 4] = bytes.length;
      en[e + 5] = hashName(key, 0, key.length, type);
      this.#ansLen += bytes.length;
      this.#count++;
    }
  }

  /** The finished table (arenas trimmed, hash slots filled). */
  finish(): AnswerTable {
    const count = this.#count;
    let size = 16;
    while (size < count * 2) size *= 2;
    const slots = new Int32Array(size);
    const entries = this.#entries.slice(0, count * E);
    for (let i = 0; i < count; i++) {
      let s = entries[i * E + 5] & (size - 1);
      while (slots[s] !== 0) s = (s + 1) & (size - 1);
      slots[s] = i + 1;
    }
    return {
      slots,
      entries,
      keys: this.#keys.slice(0, this.#keyLen),
      answers: this.#answers.slice(0, this.#ansLen),
      count,
    };
  }
}

function grow(buf: Uint8Array<ArrayBuffer>, need: number): Uint8Array<ArrayBuffer> {
  if (need <= buf.length) return buf;
  let size = buf.length * 2;
  while (size < need) size *= 2;
  const next = new Uint8Array(size);
  next.set(buf);
  return next;
}

/** Index of the entry for the question in `q[12..qnameEnd)` and `qtype`, or -1. */
export function findAnswer(
  table: AnswerTable,
  q: Uint8Array,
  qnameEnd: number,
  qtype: number,
): number {
  const h = hashName(q, 12, qnameEnd, qtype);
  const mask = table.slots.length - 1;
  const { slots, entries, keys } = table;
  const qlen = qnameEnd - 12;
  for (let s = h & mask;; s = (s + 1) & mask) {
    const v = slots[s];
    if (v === 0) return -1;
    const e = (v - 1) * E;
    if (entries[e + 5] !== h || entries[e + 2] !== qtype || entries[e + 1] !== qlen) continue;
    const ko = entries[e];
    let i = 0;
    for (; i < qlen; i++) {
      let c = q[12 + i];
      if (c >= 0x41 && c <= 0x5a) c |= 0x20;
      if (c !== keys[ko + i]) break;
    }
    if (i === qlen) return v - 1;
  }
}

/**
 * Writes the precomputed reply to the query `q` (already checked by scanQuery into `scan`) at
 * `out[outOff..]`. Returns the reply length, or -1 when the general path must answer (unknown
 * name or type, class other than IN, or a reply larger than `limit` that needs truncation).
 *
 * `limit` is the transport's size limit: the client's UDP limit, or 65535 over TCP.
 */
export function fastAnswer(
  table: AnswerTable,
  q: Uint8Array,
  scan: QueryScan,
  out: Uint8Array,
  outOff: number,
  limit: number,
  recursionAvailable: boolean,
): number {
  if (scan.qclass !== RRClass.IN) return -1;
  const idx = findAnswer(table, q, scan.qnameEnd, scan.qtype);
  if (idx < 0) return -1;
  const e = idx * E;
  const ao = table.entries[e + 3];
  const al = table.entries[e + 4];
  const total = al + (scan.hasEdns ? 11 : 0);
  if (total > limit || outOff + total > out.length) return -1;
  const src = table.answers;
  if (al <= 256) {
    for (let i = 0; i < al; i++) out[outOff + i] = src[ao + i];
  } else {
    out.set(src.subarray(ao, ao + al), outOff);
  }
  out[outOff] = q[0];
  out[outOff + 1] = q[1];
  out[outOff + 2] = 0x84 | (q[2] & 0x01);
  out[outOff + 3] = (recursionAvailable ? 0x80 : 0) | (q[3] & 0x10) | (src[ao + 3] & 0x0f);
  // The question is echoed exactly as asked (same length as our lower-case copy).
  for (let i = 12; i < scan.qnameEnd; i++) out[outOff + i] = q[i];
  if (scan.hasEdns) {
    let o = outOff + al;
    out[o++] = 0;
    out[o++] = 0;
    out[o++] = RRType.OPT;
    out[o++] = OUR_UDP_SIZE >> 8;
    out[o++] = OUR_UDP_SIZE & 0xff;
    out[o++] = 0;
    out[o++] = 0;
    out[o++] = scan.dnssecOk ? 0x80 : 0;
    out[o++] = 0;
    out[o++] = 0;
    out[o++] = 0;
    const ar = ((out[outOff + 10] << 8) | out[outOff + 11]) + 1;
    out[outOff + 10] = ar >> 8;
    out[outOff + 11] = ar & 0xff;
  }
  return total;
}
