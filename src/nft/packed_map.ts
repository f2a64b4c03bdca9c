/**
 * A string -> string map packed into typed arrays, for the nft table builder's elements (~200,000
 * at 10,000 services) and its claim records: an entry is its key and value bytes in one arena
 * (IPv4 addresses coded in 5 bytes), 5 ints of entry and 1.3-2.7 ints of hash slot (load at most
 * 3/4), about half what a `Map` of JS strings costs (README.md, Memory). Each entry also carries
 * a small integer tag (the builder's owner id, or a count of claims).
 *
 * Iteration follows insertion order, as a `Map`'s does (replacing a value keeps the position).
 * Unlike a `Map`, deleting many entries while iterating may compact the arrays, and the iteration
 * then throws rather than read moved bytes (the builder never does that). Pure.
 * @module
 */

import { fnv1a32Bytes } from "../model/hash.ts";

/** Ints per entry: key offset, key length (-1 once removed), value length, hash, tag. */
const E = 5;
const KEY_OFF = 0, KEY_LEN = 1, VAL_LEN = 2, HASH = 3, TAG = 4;
/** Growth factor of the arrays: slack stays under a quarter (doubling left up to half). */
const GROWTH = 1.25;

const decoder = new TextDecoder();

// Element texts are mostly IPv4 addresses joined by " . " ("198.19.0.10 . 80 . 0"). They are
// stored coded: bytes 0xF8 and up never occur in UTF-8, so they mark the common pieces. An
// address takes 5 bytes instead of 7 to 15: the arena holds about half the bytes.
/** " . ", the concatenation separator. */
const SEP = 0xf8;
/** Followed by the 4 bytes of an IPv4 address written in canonical dotted form. */
const IPV4 = 0xf9;

/** The canonical octet (0-255, no leading zero) at `i`, as [value, end], or null. */
function octetAt(text: string, i: number): number {
  let v = 0, j = i;
  for (; j < text.length && j < i + 3; j++) {
    const d = text.charCodeAt(j) - 48;
    if (d < 0 || d > 9) break;
    if (j > i && v === 0) return -1; // a leading zero
    v = v * 10 + d;
  }
  if (j === i || v > 255) return -1;
  return v | ((j - i) << 8);
}

/** Length of the canonical IPv4 address at `i` (its octets written to `out`), or 0. */
function ipv4At(text: string, i: number, out: Uint8Array, at: number): number {
  let j = i;
  for (let k = 0; k < 4; k++) {
    if (k > 0) {
      if (text.charCodeAt(j) !== 46) return 0; // "."
      j++;
    }
    const o = octetAt(text, j);
    if (o < 0) return 0;
    out[at + k] = o & 0xff;
    j += o >> 8;
  }
  return j - i;
}

/** Bytes of a text in the coding above, written to `scratch.buf`; returns their count. */
function encode(text: string, scratch: { buf: Uint8Array }): number {
  const n = text.length;
  if (scratch.buf.length < n * 3) scratch.buf = new Uint8Array(Math.max(256, n * 3));
  const buf = scratch.buf;
  let o = 0;
  for (let i = 0; i < n;) {
    const c = text.charCodeAt(i);
    if (c === 32 && text.charCodeAt(i + 1) === 46 && text.charCodeAt(i + 2) === 32) {
      buf[o++] = SEP;
      i += 3;
    } else if (c >= 48 && c <= 57 && (i === 0 || !isDigitOrDot(text.charCodeAt(i - 1)))) {
      const len = ipv4At(text, i, buf, o + 1);
      if (len > 0 && !isDigitOrDot(text.charCodeAt(i + len))) {
        buf[o] = IPV4;
        o += 5;
        i += len;
      } else {
        buf[o++] = c;
        i++;
      }
    } else if (c < 0x80) {
      buf[o++] = c;
      i++;
    } else if (c < 0x800) {
      buf[o++] = 0xc0 | (c >> 6);
      buf[o++] = 0x80 | (c & 0x3f);
      i++;
    } else {
      let cp = c;
      const next = text.charCodeAt(i + 1);
      if (c >= 0xd800 && c < 0xdc00 && next >= 0xdc00 && next < 0xe000) {
        cp = 0x10000 + ((c - 0xd800) << 10) + (next - 0xdc00);
        i++;
      } else if (c >= 0xd800 && c < 0xe000) cp = 0xfffd; // a lone surrogate, as TextEncoder
      if (cp >= 0x10000) {
        buf[o++] = 0xf0 | (cp >> 18);
        buf[o++] = 0x80 | ((cp >> 12) & 0x3f);
      } else buf[o++] = 0xe0 | (cp >> 12);
      buf[o++] = 0x80 | ((cp >> 6) & 0x3f);
      buf[o++] = 0x80 | (cp & 0x3f);
      i++;
    }
  }
  return o;
}

/** Addresses are coded only where no digit or dot touches them (not inside "1.2.3.4.5"). */
function isDigitOrDot(c: number): boolean {
  return (c >= 48 && c <= 57) || c === 46;
}

/** UTF-8 bytes of the text being decoded, expanded: one string is decoded from them at the end. */
let plain = new Uint8Array(256);

function decode(bytes: Uint8Array, start: number, length: number): string {
  // Coded bytes expand at most 3x (an address: 5 bytes, up to 15 characters).
  if (plain.length < length * 3) plain = new Uint8Array(length * 3);
  let n = 0;
  const end = start + length;
  for (let i = start; i < end;) {
    const b = bytes[i];
    if (b === SEP) {
      plain[n++] = 32;
      plain[n++] = 46;
      plain[n++] = 32;
      i++;
    } else if (b === IPV4) {
      for (let k = 1; k <= 4; k++) {
        if (k > 1) plain[n++] = 46;
        const v = bytes[i + k];
        if (v >= 100) plain[n++] = 48 + Math.floor(v / 100);
        if (v >= 10) plain[n++] = 48 + Math.floor(v / 10) % 10;
        plain[n++] = 48 + v % 10;
      }
      i += 5;
    } else {
      // ASCII, or a byte of a UTF-8 sequence: copied as is.
      plain[n++] = b;
      i++;
    }
  }
  return decoder.decode(plain.subarray(0, n));
}

function hashBytes(buf: Uint8Array, length: number): number {
  return fnv1a32Bytes(buf, 0, length) | 0;
}

/**
 * @example
 * ```ts
 * const m = new PackedStringMap();
 * m.set("198.19.0.10 . tcp . 80", "goto lb-vip-tcp-2", 7);
 * m.get("198.19.0.10 . tcp . 80"); // "goto lb-vip-tcp-2"
 * m.tagOf("198.19.0.10 . tcp . 80"); // 7
 * ```
 */
export class PackedStringMap implements ReadonlyMap<string, string> {
  #arena = new Uint8Array(256);
  #arenaUsed = 0;
  /** Arena bytes of removed or replaced entries; compacted away when they pass half. */
  #garbage = 0;
  #entries = new Int32Array(E * 8);
  /** Entries allocated, removed ones included (they are dropped by compaction). */
  #count = 0;
  #size = 0;
  /** Entry index + 1 per slot; 0 empty. Length a power of two, at most 3/4 full. */
  #slots = new Int32Array(16);
  #scratch = { buf: new Uint8Array(256) };
  #valueScratch = { buf: new Uint8Array(256) };
  /** Bumped when compaction moves entries: a running iteration then cannot go on. */
  #generation = 0;

  get size(): number {
    return this.#size;
  }

  get [Symbol.toStringTag](): string {
    return "PackedStringMap";
  }

  /** Entry index of a key, or -1; also leaves the key's bytes in the scratch buffer. */
  #find(key: string): { entry: number; slot: number; length: number; hash: number } {
    const length = encode(key, this.#scratch);
    const buf = this.#scratch.buf;
    const hash = hashBytes(buf, length);
    const mask = this.#slots.length - 1;
    const arena = this.#arena, entries = this.#entries;
    for (let slot = hash & mask;; slot = (slot + 1) & mask) {
      const s = this.#slots[slot];
      if (s === 0) return { entry: -1, slot, length, hash };
      const e = (s - 1) * E;
      if (entries[e + HASH] !== hash || entries[e + KEY_LEN] !== length) continue;
      const off = entries[e + KEY_OFF];
      let same = true;
      for (let i = 0; i < length; i++) {
        if (arena[off + i] !== buf[i]) {
          same = false;
          break;
        }
      }
      if (same) return { entry: s - 1, slot, length, hash };
    }
  }

  has(key: string): boolean {
    return this.#find(key).entry >= 0;
  }

  get(key: string): string | undefined {
    const { entry } = this.#find(key);
    if (entry < 0) return undefined;
    const e = entry * E;
    const off = this.#entries[e + KEY_OFF] + this.#entries[e + KEY_LEN];
    return decode(this.#arena, off, this.#entries[e + VAL_LEN]);
  }

  /** The tag given with the key's value, or undefined when absent. */
  tagOf(key: string): number | undefined {
    const { entry } = this.#find(key);
    return entry < 0 ? undefined : this.#entries[entry * E + TAG];
  }

  /** Changes the tag of a present key (value and place kept); false when the key is absent. */
  setTag(key: string, tag: number): boolean {
    const { entry } = this.#find(key);
    if (entry < 0) return false;
    this.#entries[entry * E + TAG] = tag;
    return true;
  }

  /** Adds or replaces; a replaced key keeps its place in the iteration order. */
  set(key: string, value: string, tag = 0): this {
    const found = this.#find(key);
    const keyLen = found.length;
    const valueLen = encode(value, this.#valueScratch);
    if (found.entry >= 0) {
      const e = found.entry * E;
      const oldLen = this.#entries[e + VAL_LEN];
      if (valueLen <= oldLen) {
        // A value no longer than the one it replaces is written over it: churn adds no bytes.
        const at = this.#entries[e + KEY_OFF] + keyLen;
        this.#arena.set(this.#valueScratch.buf.subarray(0, valueLen), at);
        this.#garbage += oldLen - valueLen;
        this.#entries[e + VAL_LEN] = valueLen;
        this.#entries[e + TAG] = tag;
        return this;
      }
    }
    const total = keyLen + valueLen;
    this.#reserveArena(total);
    const off = this.#arenaUsed;
    this.#arena.set(this.#scratch.buf.subarray(0, keyLen), off);
    this.#arena.set(this.#valueScratch.buf.subarray(0, valueLen), off + keyLen);
    this.#arenaUsed += total;
    if (found.entry >= 0) {
      const e = found.entry * E;
      this.#garbage += this.#entries[e + KEY_LEN] + this.#entries[e + VAL_LEN];
      this.#entries[e + KEY_OFF] = off;
      this.#entries[e + VAL_LEN] = valueLen;
      this.#entries[e + TAG] = tag;
      this.#maybeCompact();
      return this;
    }
    if ((this.#count + 1) * E > this.#entries.length) this.#growEntries();
    const index = this.#count++;
    const e = index * E;
    this.#entries[e + KEY_OFF] = off;
    this.#entries[e + KEY_LEN] = keyLen;
    this.#entries[e + VAL_LEN] = valueLen;
    this.#entries[e + HASH] = found.hash;
    this.#entries[e + TAG] = tag;
    this.#size++;
    if (this.#size * 4 > this.#slots.length * 3) this.#rehash(this.#slots.length * 2);
    else this.#slots[found.slot] = index + 1;
    return this;
  }

  delete(key: string): boolean {
    const { entry, slot } = this.#find(key);
    if (entry < 0) return false;
    const e = entry * E;
    this.#garbage += this.#entries[e + KEY_LEN] + this.#entries[e + VAL_LEN];
    this.#entries[e + KEY_LEN] = -1;
    this.#size--;
    // Backward-shift deletion keeps probe chains whole without tombstones.
    const slots = this.#slots, mask = slots.length - 1;
    let hole = slot;
    for (let next = (hole + 1) & mask; slots[next] !== 0; next = (next + 1) & mask) {
      const home = this.#entries[(slots[next] - 1) * E + HASH] & mask;
      // Move the entry back when its home is not inside (hole, next].
      if (((next - home) & mask) >= ((next - hole) & mask)) {
        slots[hole] = slots[next];
        hole = next;
      }
    }
    slots[hole] = 0;
    this.#maybeCompact();
    return true;
  }

  clear(): void {
    this.#arena = new Uint8Array(256);
    this.#arenaUsed = 0;
    this.#garbage = 0;
    this.#entries = new Int32Array(E * 8);
    this.#count = 0;
    this.#size = 0;
    this.#slots = new Int32Array(16);
  }

  *entries(): MapIterator<[string, string]> {
    for (const e of this.#liveEntries()) {
      const off = this.#entries[e + KEY_OFF], keyLen = this.#entries[e + KEY_LEN];
      yield [
        decode(this.#arena, off, keyLen),
        decode(this.#arena, off + keyLen, this.#entries[e + VAL_LEN]),
      ];
    }
  }

  *keys(): MapIterator<string> {
    for (const [k] of this.entries()) yield k;
  }

  *values(): MapIterator<string> {
    for (const [, v] of this.entries()) yield v;
  }

  [Symbol.iterator](): MapIterator<[string, string]> {
    return this.entries();
  }

  forEach(
    callback: (value: string, key: string, map: ReadonlyMap<string, string>) => void,
    thisArg?: unknown,
  ): void {
    for (const [k, v] of this.entries()) callback.call(thisArg, v, k, this);
  }

  /** Offsets of the live entries, in insertion order; throws once compaction moved them. */
  *#liveEntries(): Generator<number> {
    const generation = this.#generation;
    for (let i = 0;; i++) {
      if (generation !== this.#generation) {
        throw new Error("Cannot go on iterating a PackedStringMap: it was compacted meanwhile");
      }
      if (i >= this.#count) return;
      if (this.#entries[i * E + KEY_LEN] >= 0) yield i * E;
    }
  }

  #reserveArena(bytes: number): void {
    if (this.#arenaUsed + bytes <= this.#arena.length) return;
    const next = new Uint8Array(
      Math.max(Math.ceil(this.#arena.length * GROWTH), this.#arenaUsed + bytes),
    );
    next.set(this.#arena.subarray(0, this.#arenaUsed));
    this.#arena = next;
  }

  #growEntries(): void {
    const next = new Int32Array(Math.ceil(this.#entries.length * GROWTH / E) * E + E);
    next.set(this.#entries);
    this.#entries = next;
  }

  #rehash(slotCount: number): void {
    const slots = new Int32Array(slotCount);
    const mask = slotCount - 1;
    for (let i = 0; i < this.#count; i++) {
      const e = i * E;
      if (this.#entries[e + KEY_LEN] < 0) continue;
      let slot = this.#entries[e + HASH] & mask;
      while (slots[slot] !== 0) slot = (slot + 1) & mask;
      slots[slot] = i + 1;
    }
    this.#slots = slots;
  }

  /**
   * Drops removed entries and their bytes once they are most of the map, so churn never grows
   * it; the arrays shrink too when far larger than needed.
   */
  #maybeCompact(): void {
    const removed = this.#count - this.#size;
    if (this.#garbage * 2 <= this.#arenaUsed && removed * 2 <= this.#count) return;
    const live = [...this.#liveEntries()];
    const arena = new Uint8Array(
      Math.max(256, Math.ceil((this.#arenaUsed - this.#garbage) * GROWTH)),
    );
    const entries = new Int32Array(Math.max(E * 8, Math.ceil(live.length * GROWTH) * E));
    let used = 0;
    live.forEach((from, i) => {
      const to = i * E;
      const off = this.#entries[from + KEY_OFF];
      const len = this.#entries[from + KEY_LEN] + this.#entries[from + VAL_LEN];
      arena.set(this.#arena.subarray(off, off + len), used);
      entries.set(this.#entries.subarray(from, from + E), to);
      entries[to + KEY_OFF] = used;
      used += len;
    });
    this.#arena = arena;
    this.#arenaUsed = used;
    this.#garbage = 0;
    this.#entries = entries;
    this.#count = live.length;
    this.#generation++;
    let slotCount = 16;
    while (slotCount * 3 < live.length * 4) slotCount *= 2;
    this.#rehash(slotCount);
  }
}
