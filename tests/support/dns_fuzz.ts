/**
 * Deterministic generator of DNS packets for fuzzing: valid queries of every shape, then
 * mutations (bit flips, wrong counts, truncation, compression loops, oversized labels, random
 * garbage). Seeded, so a failure is reproducible from the seed printed by the test.
 * @module
 */

import { encodeMessage } from "../../src/dns/codec/encode.ts";
import { type Message, RRClass, RRType } from "../../src/dns/codec/records.ts";
import { mulberry32 } from "./test_random.ts";

const NAMES = [
  "web.default.svc.cluster.local",
  "_http._tcp.web.default.svc.cluster.local",
  "db.default.svc.cluster.local",
  "db-0.db.default.svc.cluster.local",
  "nosuch.default.svc.cluster.local",
  "1-2-3-4.default.pod.cluster.local",
  "10.0.19.198.in-addr.arpa",
  "cluster.local",
  "dns-version.cluster.local",
  "ext.default.svc.cluster.local",
  "example.org",
  "",
  "a\\.b.weird\\000label.cluster.local",
  "x".repeat(63) + ".cluster.local",
];
const TYPES = [
  RRType.A,
  RRType.AAAA,
  RRType.SRV,
  RRType.PTR,
  RRType.TXT,
  RRType.ANY,
  RRType.AXFR,
  RRType.OPT,
  0,
  65535,
  RRType.SOA,
];

/** One valid query of a random shape. */
export function randomQuery(rand: () => number): Uint8Array {
  const pick = <T>(list: readonly T[]): T => list[Math.floor(rand() * list.length)];
  let name = pick(NAMES);
  if (rand() < 0.5) name = [...name].map((c) => (rand() < 0.5 ? c.toUpperCase() : c)).join("");
  const msg: Message = {
    id: Math.floor(rand() * 65536),
    qr: false,
    opcode: rand() < 0.9 ? 0 : Math.floor(rand() * 16),
    aa: false,
    tc: false,
    rd: rand() < 0.8,
    ra: false,
    ad: false,
    cd: rand() < 0.1,
    rcode: 0,
    questions: Array.from({ length: rand() < 0.9 ? 1 : Math.floor(rand() * 3) }, () => ({
      name,
      type: pick(TYPES),
      class: rand() < 0.9 ? RRClass.IN : pick([RRClass.CH, RRClass.ANY, 0, 42]),
    })),
    answers: [],
    authority: [],
    additional: [],
    ...(rand() < 0.5
      ? {
        edns: {
          udpSize: pick([0, 512, 1232, 4096, 65535]),
          version: rand() < 0.9 ? 0 : 1,
          dnssecOk: rand() < 0.3,
          options: rand() < 0.3 ? [{ code: 10, data: new Uint8Array(8) }] : [],
        },
      }
      : {}),
  };
  return encodeMessage(msg);
}

/** A mutated copy of `base` (or fresh garbage). */
export function mutate(base: Uint8Array, rand: () => number): Uint8Array {
  const r = Math.floor(rand() * 10);
  let p = base.slice();
  const at = () => Math.floor(rand() * Math.max(1, p.length));
  switch (r) {
    case 0: {
      // Pure garbage of random length.
      p = new Uint8Array(Math.floor(rand() * 700));
      for (let i = 0; i < p.length; i++) p[i] = Math.floor(rand() * 256);
      return p;
    }
    case 1:
      return p.slice(0, Math.floor(rand() * p.length));
    case 2: {
      const more = new Uint8Array(p.length + 1 + Math.floor(rand() * 64));
      more.set(p);
      for (let i = p.length; i < more.length; i++) more[i] = Math.floor(rand() * 256);
      return more;
    }
    case 3:
      // Wrong counts.
      if (p.length >= 12) {
        const field = 4 + 2 * Math.floor(rand() * 4);
        const v = [0, 1, 2, 0xffff, Math.floor(rand() * 65536)][Math.floor(rand() * 5)];
        p[field] = v >> 8;
        p[field + 1] = v & 0xff;
      }
      return p;
    case 4:
      // A compression pointer to itself or forwards (a loop if followed blindly).
      if (p.length > 13) {
        const i = 12 + Math.floor(rand() * (p.length - 13));
        const target = rand() < 0.5 ? i : Math.min(0x3fff, i + Math.floor(rand() * 40));
        p[i] = 0xc0 | (target >> 8);
        p[i + 1] = target & 0xff;
      }
      return p;
    case 5:
      // Oversized or extended label length.
      if (p.length > 12) {
        p[12 + Math.floor(rand() * (p.length - 12))] =
          [63, 64, 0x40, 0x80, 0xff][Math.floor(rand() * 5)];
      }
      return p;
    case 6:
      // The QR bit or a random opcode.
      if (p.length > 2) {
        p[2] = rand() < 0.5 ? p[2] | 0x80 : (p[2] & 0x87) | (Math.floor(rand() * 16) << 3);
      }
      return p;
    default: {
      // 1-8 random bit flips / byte sets.
      const n = 1 + Math.floor(rand() * 8);
      for (let k = 0; k < n && p.length > 0; k++) {
        const i = at();
        if (rand() < 0.5) p[i] ^= 1 << Math.floor(rand() * 8);
        else p[i] = Math.floor(rand() * 256);
      }
      return p;
    }
  }
}

/** `count` packets: a quarter valid queries, the rest mutations of them. */
export function* fuzzPackets(seed: number, count: number): Generator<Uint8Array> {
  const rand = mulberry32(seed);
  for (let i = 0; i < count; i++) {
    const q = randomQuery(rand);
    yield rand() < 0.25 ? q : mutate(q, rand);
  }
}
