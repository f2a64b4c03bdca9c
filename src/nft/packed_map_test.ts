import { deepStrictEqual as assertEquals, strictEqual, throws } from "node:assert/strict";
import { mulberry32 } from "../../tests/support/test_random.ts";
import { PackedStringMap } from "./packed_map.ts";

Deno.test("PackedStringMap: behaves as a Map (order, replace, delete) over random operations", () => {
  const random = mulberry32(7);
  const packed = new PackedStringMap();
  const model = new Map<string, string>();
  const tags = new Map<string, number>();
  // Few distinct keys, so replaces, deletes and re-adds of one key are frequent; some non-ASCII.
  const keyOf = (n: number) =>
    n % 17 === 0 ? `198.19.0.${n} . tcp . 80 — ü` : `198.19.${n >> 8}.${n & 255} . tcp . 80`;
  for (let step = 0; step < 20_000; step++) {
    const key = keyOf(Math.floor(random() * 600));
    const r = random();
    if (r < 0.55) {
      const value = r < 0.05 ? "" : `198.18.0.${Math.floor(random() * 255)} . ${step}`;
      const tag = Math.floor(random() * 1000);
      packed.set(key, value, tag);
      model.set(key, value);
      tags.set(key, tag);
    } else {
      strictEqual(packed.delete(key), model.delete(key), `delete ${key} at step ${step}`);
      tags.delete(key);
    }
    strictEqual(packed.size, model.size);
    const probe = keyOf(Math.floor(random() * 600));
    strictEqual(packed.get(probe), model.get(probe), `get ${probe} at step ${step}`);
    strictEqual(packed.has(probe), model.has(probe));
    strictEqual(packed.tagOf(probe), tags.get(probe));
    if (step % 1000 === 0) assertEquals([...packed], [...model], `entries at step ${step}`);
  }
  assertEquals([...packed.keys()], [...model.keys()]);
  assertEquals([...packed.values()], [...model.values()]);
  const seen: string[] = [];
  packed.forEach((v, k) => seen.push(`${k}=${v}`));
  assertEquals(seen, [...model].map(([k, v]) => `${k}=${v}`));
});

Deno.test("PackedStringMap: churn does not grow it; a long text survives", () => {
  const m = new PackedStringMap();
  const long = "x".repeat(10_000);
  m.set("comment", long);
  for (let round = 0; round < 50; round++) {
    for (let i = 0; i < 1000; i++) m.set(`k${i}`, `v${round}`);
    for (let i = 0; i < 1000; i++) m.delete(`k${i}`);
  }
  strictEqual(m.size, 1);
  strictEqual(m.get("comment"), long);
  m.clear();
  strictEqual(m.size, 0);
  strictEqual(m.get("comment"), undefined);
});

Deno.test("PackedStringMap: iterating past a compaction fails loudly instead of reading moved bytes", () => {
  const m = new PackedStringMap();
  for (let i = 0; i < 100; i++) m.set(`k${i}`, "v");
  throws(() => {
    for (const [k] of m) m.delete(k);
  }, /compacted meanwhile/);
});

Deno.test("PackedStringMap: setTag changes a present key's tag only; absent keys stay absent", () => {
  const m = new PackedStringMap();
  m.set("a", "1", 3).set("b", "2", 4);
  strictEqual(m.setTag("a", 9), true);
  strictEqual(m.setTag("zz", 1), false);
  assertEquals([...m], [["a", "1"], ["b", "2"]]);
  assertEquals([m.tagOf("a"), m.tagOf("b"), m.tagOf("zz"), m.has("zz")], [9, 4, undefined, false]);
});

Deno.test("PackedStringMap: every text reads back exactly, coded addresses or not", () => {
  const texts = [
    "",
    "198.19.0.10 . tcp . 80",
    "198.18.0.1 . 198.18.0.2",
    "198.18.0.0/16",
    "0.0.0.0",
    "255.255.255.255 . 8080",
    "1.2.3.4.5",
    "01.2.3.4",
    "1.2.3.04",
    "256.1.1.1",
    "1.2.3",
    "x1.2.3.4y",
    " . . ",
    " .  . ",
    "2001:db8::1 . 53",
    "goto lb-vip-tcp-10",
    "ns-0/svc-0",
    "zürich — 1.2.3.4 😀 end",
    "lone \ud800 surrogate",
  ];
  const m = new PackedStringMap();
  texts.forEach((t, i) => m.set(t, texts[texts.length - 1 - i]));
  const expect = (t: string) => t.replace("\ud800", "\ufffd");
  for (const [i, t] of texts.entries()) {
    strictEqual(m.get(t), expect(texts[texts.length - 1 - i]), `value of ${JSON.stringify(t)}`);
  }
  assertEquals([...m.keys()], texts.map(expect));
});

Deno.test("PackedStringMap: replacing with shorter, equal and longer values keeps order and tags", () => {
  const m = new PackedStringMap();
  m.set("a", "198.18.0.10 . 8080", 1).set("b", "goto lb-vip-tcp-2", 2).set("c", "x", 3);
  m.set("a", "1.2.3.4 . 1", 4); // shorter: written over the old bytes
  m.set("b", "goto lb-vip-tcp-3", 5); // equal
  m.set("c", "a longer value — ü", 6); // longer: appended
  m.set("a", "", 7);
  assertEquals([...m], [["a", ""], ["b", "goto lb-vip-tcp-3"], ["c", "a longer value — ü"]]);
  assertEquals([m.tagOf("a"), m.tagOf("b"), m.tagOf("c")], [7, 5, 6]);
  m.set("a", "198.18.0.11 . 8080 . and more");
  strictEqual(m.get("a"), "198.18.0.11 . 8080 . and more");
  strictEqual(m.get("b"), "goto lb-vip-tcp-3");
});
