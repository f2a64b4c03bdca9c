import { strictEqual as assertStrictEquals } from "node:assert/strict";
import { fnv1a32, fnv1a32Bytes, fnv1a64, FNV32_BASIS, hash53 } from "./hash.ts";

// Published FNV-1a test vectors (http://www.isthe.com/chongo/tech/comp/fnv/): the values must
// never change, since persisted VIP allocations and probe schedules were derived from them.
Deno.test("fnv1a32 matches the reference vectors", () => {
  assertStrictEquals(fnv1a32(""), 0x811c9dc5);
  assertStrictEquals(fnv1a32("a"), 0xe40c292c);
  assertStrictEquals(fnv1a32("foobar"), 0xbf9cf968);
});

Deno.test("fnv1a64 matches the reference vectors, over UTF-8 bytes", () => {
  assertStrictEquals(fnv1a64(""), 0xcbf29ce484222325n);
  assertStrictEquals(fnv1a64("a"), 0xaf63dc4c8601ec8cn);
  assertStrictEquals(fnv1a64("foobar"), 0x85944171f73967e8n);
  // "é" is two UTF-8 bytes, 0xc3 0xa9.
  assertStrictEquals(fnv1a64("é"), fnv1a64Bytes([0xc3, 0xa9]));
});

function fnv1a64Bytes(bytes: number[]): bigint {
  let h = 0xcbf29ce484222325n;
  for (const b of bytes) h = ((h ^ BigInt(b)) * 0x100000001b3n) & 0xffffffffffffffffn;
  return h;
}

Deno.test("fnv1a32Bytes: the same hash over bytes, seeded and case-folded when asked", () => {
  const bytes = new TextEncoder().encode("xWeb.Default");
  assertStrictEquals(fnv1a32Bytes(bytes, 1, bytes.length), fnv1a32("Web.Default"));
  assertStrictEquals(
    fnv1a32Bytes(bytes, 1, bytes.length, FNV32_BASIS, true),
    fnv1a32("web.default"),
  );
  assertStrictEquals(fnv1a32Bytes(bytes, 0, 0, 7), 7);
});

Deno.test("hash53: a stable 53-bit number", () => {
  const h = hash53("default/web");
  assertStrictEquals(Number.isSafeInteger(h) && h >= 0, true);
  assertStrictEquals(hash53("default/web"), h);
  assertStrictEquals(hash53("default/weB") === h, false);
});
