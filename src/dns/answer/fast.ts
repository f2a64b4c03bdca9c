/**
 * Precomputed answers: the (name, type) pairs the zone can answer, encoded once as wire bytes,
 * kept in flat typed arrays with an open-addressing hash table over the lower-cased wire name.
 * Per query the hot path hashes the question, copies the bytes and patches the ID, flags,
 * question case and OPT record: no decoding, no allocation. Pure.
 *
 * The server fills the table per name on first ask (engine.ts), not for the whole zone: clients
 * ask a few hundred names, not all of them (src/dns/README.md).
 * @module
 */

import { answerQuery } from "./answer.ts";
import { type QueryScan } from "../codec/decode.ts";
import { MessageEncoder } from "../codec/encode.ts";
import { nameKey, nameToWire } from "../codec/names.ts";
import {
  type Message,
  OUR_UDP_SIZE,
  RRClass,
  RRType,
  type SoaData,
  type SrvData,
} from "../codec/records.ts";
import { findApex, type Zone, type ZoneNode } from "../zone/zone.ts";
import type { ZoneIndex } from "../zone/zone_index.ts";
import type { ServiceKey } from "../../model/types.ts";
import type { Snapshot } from "../../model/snapshot.ts";
import { fnv1a32Bytes, FNV32_BASIS } from "../../model/hash.ts";

/** Flat table of precomputed replies. */
export interface AnswerTable {
  /** Hash slots: entry index + 1, 0 when empty, -1 for a removed entry. Length is a power of two. */
  readonly slots: Int32Array;
  /**
   * Per entry: key offset, key length, qtype (-1 once removed), answer offset, answer length,
   * hash, offset of the SOA serial inside `answers` (-1 when the answer carries none last),
   * flags ({@link EXACT_CASE}).
   */
  readonly entries: Int32Array;
  readonly keys: Uint8Array;
  readonly answers: Uint8Array;
  /** Live entries. */
  readonly count: number;
}

const E = 8;

/**
 * The answer writes a name of our zone where no pointer can carry the question's case: an SRV
 * target (never compressed, RFC 2782), whose zone part CoreDNS writes as asked. Precomputed for
 * a lower-case question, it is served only to one; other cases take the general path. (Every
 * other name follows the question's case by pointing into it: the query's own bytes replace the
 * question.)
 */
const EXACT_CASE = 1;

/**
 * How many records the fast path may rotate (answer/rotate.ts, CoreDNS's loadbalance): two or
 * more A or AAAA records of the question's name, back to back right after the question, each
 * owner a pointer to it (so all of one size); else 0. Stored in the flags above EXACT_CASE.
 */
function rotationCount(message: Message, bytes: Uint8Array, type: number): number {
  const n = message.answers.length;
  if (n < 2 || n > 0x3fff || (type !== RRType.A && type !== RRType.AAAA)) return 0;
  if (message.answers.some((rr) => rr.type !== type)) return 0;
  const size = type === RRType.A ? 16 : 28;
  let o = 12;
  while (o < bytes.length && bytes[o] !== 0) o += bytes[o] + 1;
  o += 5;
  for (let i = 0; i < n; i++, o += size) {
    if (bytes[o] !== 0xc0 || bytes[o + 1] !== 0x0c) return 0;
  }
  return o <= bytes.length ? n : 0;
}

/** True when the answer holds an SRV target inside the question's zone (see EXACT_CASE). */
function caseBound(zone: Zone, message: Message): boolean {
  if (zone.options.strictSpec) return false;
  return message.answers.some((rr) =>
    rr.type === RRType.SRV && findApex(zone, nameKey((rr.data as SrvData).target)) !== null
  );
}

function hashName(buf: Uint8Array, start: number, end: number, qtype: number): number {
  return fnv1a32Bytes(buf, start, end, FNV32_BASIS ^ qtype, true) | 0;
}

/** Types whose presence makes a name an address name, asked as an A + AAAA pair by stubs. */
const ADDRESS_TYPES = [RRType.A, RRType.AAAA, RRType.CNAME];

/** The (name, type) pairs {@link AnswerTableBuilder.addNode} precomputes for a node. */
function precomputedTypes(node: ZoneNode): Set<number> {
  const types = new Set<number>();
  for (const rr of node.records) types.add(rr.type);
  if (ADDRESS_TYPES.some((t) => types.has(t))) {
    types.add(RRType.A);
    types.add(RRType.AAAA);
  }
  return types;
}

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
 * event-loop turns (see engine.ts), and keeps it up to date afterwards: {@link removeNode} and
 * {@link addNode} replace one name's answers, {@link patchSerial} rewrites the SOA serial of
 * every negative answer. Arenas grow by doubling and are compacted when half is garbage;
 * nothing is allocated per answer.
 *
 * Updates write into the arrays a {@link view} returned earlier: a caller switches to a new
 * view before any query runs (engine.ts updates synchronously between queries).
 */
export class AnswerTableBuilder {
  #keys = new Uint8Array(1 << 16);
  #keyLen = 0;
  #answers = new Uint8Array(1 << 18);
  #ansLen = 0;
  #entries = new Int32Array(E * 1024);
  /** Entries written, removed ones included. */
  #count = 0;
  #live = 0;
  #slots = new Int32Array(2048);
  /** Slots not empty (live or removed). */
  #used = 0;
  /** Answer bytes of removed entries. */
  #garbage = 0;
  /** Names with answers in the table. */
  readonly #names = new Set<string>();
  readonly #encoder = new MessageEncoder();

  /** Live entries. */
  get count(): number {
    return this.#live;
  }

  /** How many names have answers in the table. */
  get names(): number {
    return this.#names.size;
  }

  /** True when `name`'s answers are in the table. */
  has(name: string): boolean {
    return this.#names.has(name);
  }

  /** Drops every answer (views handed out earlier keep theirs: fresh arrays are made). */
  clear(): void {
    this.#keys = new Uint8Array(1 << 16);
    this.#answers = new Uint8Array(1 << 18);
    this.#entries = new Int32Array(E * 1024);
    this.#slots = new Int32Array(2048);
    this.#keyLen = this.#ansLen = this.#garbage = 0;
    this.#count = this.#live = this.#used = 0;
    this.#names.clear();
  }

  /** Precomputes the answers of one node. Its name must have no answers in the table yet. */
  addNode(zone: Zone, name: string, node: ZoneNode): void {
    if (node.records.length === 0) return;
    const key = nameToWire(name);
    if (!key) return;
    this.#names.add(name);
    let keyOff = -1;
    for (const type of precomputedTypes(node)) {
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
      const exact = caseBound(zone, result.message);
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
      const hash = hashName(key, 0, key.length, type);
      en[e] = keyOff;
      en[e + 1] = key.length;
      en[e + 2] = type;
      en[e + 3] = this.#ansLen;
      en[e + 4] = bytes.length;
      en[e + 5] = hash;
      en[e + 6] = serialOffset(result.message, bytes, this.#ansLen);
      en[e + 7] = (exact ? EXACT_CASE : 0) | (rotationCount(result.message, bytes, type) << 1);
      this.#ansLen += bytes.length;
      this.#insertSlot(this.#count, hash);
      this.#count++;
      this.#live++;
    }
  }

  /** Drops the answers precomputed for `name`, whose node was `node` when they were added. */
  removeNode(name: string, node: ZoneNode): void {
    if (!this.#names.delete(name) || node.records.length === 0) return;
    const key = nameToWire(name);
    if (!key) return;
    const mask = this.#slots.length - 1;
    const entries = this.#entries, keys = this.#keys;
    for (const type of precomputedTypes(node)) {
      const h = hashName(key, 0, key.length, type);
      for (let s = h & mask;; s = (s + 1) & mask) {
        const v = this.#slots[s];
        if (v === 0) break;
        if (v < 0) continue;
        const e = (v - 1) * E;
        if (entries[e + 5] !== h || entries[e + 2] !== type || entries[e + 1] !== key.length) {
          continue;
        }
        const ko = entries[e];
        let i = 0;
        while (i < key.length && keys[ko + i] === key[i]) i++;
        if (i !== key.length) continue;
        this.#slots[s] = -1;
        entries[e + 2] = -1;
        this.#live--;
        this.#garbage += entries[e + 4];
        break;
      }
    }
  }

  /** Writes `serial` into the SOA of every answer that carries one last (negative answers). */
  patchSerial(serial: number): void {
    const en = this.#entries, ans = this.#answers;
    for (let e = 0; e < this.#count * E; e += E) {
      const o = en[e + 6];
      if (o < 0 || en[e + 2] < 0) continue;
      ans[o] = serial >>> 24;
      ans[o + 1] = (serial >>> 16) & 0xff;
      ans[o + 2] = (serial >>> 8) & 0xff;
      ans[o + 3] = serial & 0xff;
    }
  }

  /**
   * The table as it is now, sharing this builder's arrays (later updates write into them).
   * Compacts first when removed answers take more room than live ones.
   */
  view(): AnswerTable {
    if (this.#garbage > 1 << 16 && this.#garbage * 2 > this.#ansLen) this.#compact();
    return {
      slots: this.#slots,
      entries: this.#entries,
      keys: this.#keys,
      answers: this.#answers,
      count: this.#live,
    };
  }

  /** A trimmed copy of the table that later updates do not touch. */
  finish(): AnswerTable {
    this.#compact();
    return {
      slots: this.#slots.slice(),
      entries: this.#entries.slice(0, this.#count * E),
      keys: this.#keys.slice(0, this.#keyLen),
      answers: this.#answers.slice(0, this.#ansLen),
      count: this.#live,
    };
  }

  #insertSlot(index: number, hash: number): void {
    if ((this.#used + 1) * 2 > this.#slots.length) this.#rehash();
    const slots = this.#slots;
    const mask = slots.length - 1;
    let s = hash & mask;
    // The name's old answers were removed first, so a removed slot can be reused.
    while (slots[s] > 0) s = (s + 1) & mask;
    if (slots[s] === 0) this.#used++;
    slots[s] = index + 1;
  }

  #rehash(): void {
    let size = 16;
    while (size < (this.#live + 1) * 4) size *= 2;
    const slots = new Int32Array(size);
    const en = this.#entries;
    for (let i = 0; i < this.#count; i++) {
      const e = i * E;
      if (en[e + 2] < 0) continue;
      let s = en[e + 5] & (size - 1);
      while (slots[s] !== 0) s = (s + 1) & (size - 1);
      slots[s] = i + 1;
    }
    this.#slots = slots;
    this.#used = this.#live;
  }

  /** Copies the live entries into new arrays (views handed out earlier stay intact). */
  #compact(): void {
    const en = this.#entries;
    const keys = new Uint8Array(Math.max(1 << 10, this.#keyLen));
    const answers = new Uint8Array(Math.max(1 << 10, this.#ansLen - this.#garbage));
    const entries = new Int32Array(Math.max(E * 64, this.#live * E));
    let keyLen = 0, ansLen = 0, n = 0, lastKey = -1, lastNewKey = -1;
    for (let i = 0; i < this.#count; i++) {
      const e = i * E;
      if (en[e + 2] < 0) continue;
      // A name's entries are written together and share one key copy.
      if (en[e] !== lastKey) {
        lastKey = en[e];
        lastNewKey = keyLen;
        keys.set(this.#keys.subarray(en[e], en[e] + en[e + 1]), keyLen);
        keyLen += en[e + 1];
      }
      const d = n * E;
      entries[d] = lastNewKey;
      entries[d + 1] = en[e + 1];
      entries[d + 2] = en[e + 2];
      entries[d + 3] = ansLen;
      entries[d + 4] = en[e + 4];
      entries[d + 5] = en[e + 5];
      entries[d + 6] = en[e + 6] < 0 ? -1 : ansLen + (en[e + 6] - en[e + 3]);
      entries[d + 7] = en[e + 7];
      answers.set(this.#answers.subarray(en[e + 3], en[e + 3] + en[e + 4]), ansLen);
      ansLen += en[e + 4];
      n++;
    }
    this.#keys = keys;
    this.#keyLen = keyLen;
    this.#answers = answers;
    this.#ansLen = ansLen;
    this.#entries = entries;
    this.#count = n;
    this.#garbage = 0;
    this.#rehash();
  }
}

/**
 * Where the SOA serial sits in an encoded answer whose last record is an SOA (NODATA and
 * NXDOMAIN carry one in authority; an SOA question at an apex in answers), else -1. The SOA
 * RDATA ends with serial, refresh, retry, expire and minimum, 4 bytes each. Checked against
 * the bytes, so a reply the encoder shortened is never patched.
 */
function serialOffset(message: Message, bytes: Uint8Array, base: number): number {
  const last = message.additional.at(-1) ?? message.authority.at(-1) ?? message.answers.at(-1);
  if (!last || last.type !== RRType.SOA || message.edns || bytes.length < 32) return -1;
  const soa = last.data as SoaData;
  const at = bytes.length - 20;
  const read = (o: number) =>
    ((bytes[o] << 24) | (bytes[o + 1] << 16) | (bytes[o + 2] << 8) | bytes[o + 3]) >>> 0;
  if (read(at) !== soa.serial >>> 0 || read(at + 16) !== soa.minimum >>> 0) return -1;
  return base + at;
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
    if (v < 0) continue;
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
 * `limit` is the transport's size limit: the client's UDP limit, or 65535 over TCP. `turn` rotates
 * multi-record A/AAAA answers by that many places (answer/rotate.ts); 0 leaves them in order.
 */
export function fastAnswer(
  table: AnswerTable,
  q: Uint8Array,
  scan: QueryScan,
  out: Uint8Array,
  outOff: number,
  limit: number,
  recursionAvailable: boolean,
  turn = 0,
): number {
  if (scan.qclass !== RRClass.IN) return -1;
  const idx = findAnswer(table, q, scan.qnameEnd, scan.qtype);
  if (idx < 0) return -1;
  const e = idx * E;
  if ((table.entries[e + 7] & EXACT_CASE) !== 0) {
    // Label lengths are at most 63, so a byte in A-Z is a letter.
    for (let i = 12; i < scan.qnameEnd; i++) if (q[i] >= 0x41 && q[i] <= 0x5a) return -1;
  }
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
  const rotate = table.entries[e + 7] >> 1;
  if (rotate > 1 && turn % rotate !== 0) {
    // Records k..n-1, then 0..k-1: all of one size, right after the question.
    const size = scan.qtype === RRType.A ? 16 : 28;
    const k = turn % rotate;
    const first = scan.qnameEnd + 4;
    let o = outOff + first;
    for (let j = 0; j < rotate; j++) {
      const from = ao + first + ((j + k) % rotate) * size;
      for (let b = 0; b < size; b++) out[o++] = src[from + b];
    }
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

/**
 * One incremental step: {@link ZoneIndex.update} for `keys`, then the precomputed answers of
 * every changed name (and of CNAMEs leading through one) replaced in `table`, and with
 * `everything` the SOA serial of every negative answer rewritten. Returns the zone to answer
 * from, to be switched to together with `table.view()` before any query runs.
 */
export function applyUpdate(
  index: ZoneIndex,
  table: AnswerTableBuilder,
  snapshot: Snapshot,
  serial: number,
  keys: readonly ServiceKey[],
  everything: boolean,
): Zone {
  const changes = index.update(snapshot, serial, keys, everything);
  const zone = index.zone();
  // The table holds the names clients asked (engine.ts): those stay precomputed, others wait
  // for their first ask.
  const asked: string[] = [];
  for (const [name, before] of changes) {
    if (!before || !table.has(name)) continue;
    table.removeNode(name, before);
    asked.push(name);
  }
  for (const name of index.chasersThrough(changes)) {
    if (!table.has(name)) continue;
    table.removeNode(name, zone.nodes.get(name)!);
    asked.push(name);
  }
  for (const name of asked) {
    const node = zone.nodes.get(name);
    if (node) table.addNode(zone, name, node);
  }
  if (everything) table.patchSerial(serial >>> 0);
  return zone;
}
