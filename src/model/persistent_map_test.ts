import { deepStrictEqual as assertEquals, ok, strictEqual, throws } from "node:assert/strict";
import { mulberry32 } from "../../tests/support/test_random.ts";
import { diffKeys, type DiffStats, type KeyHash, PersistentMap } from "./persistent_map.ts";
import { hashKey } from "./hash.ts";

function randomInt(random: () => number, bound: number): number {
  return Math.floor(random() * bound);
}

function shuffled<T>(items: readonly T[], random: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = randomInt(random, i + 1);
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

function build<V>(hash: KeyHash, entries: Iterable<readonly [string, V]>): PersistentMap<V> {
  return PersistentMap.emptyWithHash<V>(hash).withMutations((m) => {
    for (const [key, value] of entries) m.set(key, value);
  });
}

/** Checks every read of `map` against `expected` (size, get/has on `probeKeys`, iteration). */
function assertMatches<V>(
  map: PersistentMap<V>,
  expected: ReadonlyMap<string, V>,
  probeKeys: readonly string[],
): void {
  strictEqual(map.size, expected.size);
  for (const key of probeKeys) {
    strictEqual(map.has(key), expected.has(key), `has(${key})`);
    strictEqual(map.get(key), expected.get(key), `get(${key})`);
  }
  const entries = [...map];
  strictEqual(entries.length, expected.size);
  assertEquals(new Map(entries), new Map(expected));
  assertEquals([...map.keys()], entries.map(([key]) => key));
  assertEquals([...map.values()], entries.map(([, value]) => value));
}

function sortedDiff<V>(before: PersistentMap<V>, after: PersistentMap<V>): string[] {
  return diffKeys(before, after).sort();
}

/** The keys whose values differ between two plain maps: what diffKeys must report. */
function expectedDiff<V>(before: ReadonlyMap<string, V>, after: ReadonlyMap<string, V>): string[] {
  const keys = new Set([...before.keys(), ...after.keys()]);
  return [...keys].filter((k) => before.has(k) !== after.has(k) || before.get(k) !== after.get(k))
    .sort();
}

function serviceKeys(count: number): string[] {
  return Array.from({ length: count }, (_, i) => `ns-${i % 40}/service-${i}`);
}

const HASHES: { name: string; hash: KeyHash }[] = [
  { name: "default hash", hash: hashKey },
  // Only 8 distinct hashes: most keys land in collision nodes at the bottom of one-child chains.
  { name: "8 distinct hashes", hash: (key) => hashKey(key) & 7 },
  // The low 25 bits are always 0, so every key sits 5 levels down a shared path.
  { name: "hashes sharing 25 low bits", hash: (key) => hashKey(key) & 0xfe000000 },
];

for (const { name, hash } of HASHES) {
  Deno.test(`PersistentMap matches a Map over random writes, old versions intact (${name})`, () => {
    const random = mulberry32(0x5eed ^ name.length);
    const keys = Array.from({ length: 200 }, (_, i) => `k${i}`);
    const values = Array.from({ length: 5 }, (_, i) => ({ value: i }));
    const probeKeys = [...keys, "absent", ""];
    const model = new Map<string, { value: number }>();
    let map = PersistentMap.emptyWithHash<{ value: number }>(hash);
    const versions: { map: PersistentMap<{ value: number }>; expected: Map<string, unknown> }[] =
      [];
    for (let step = 0; step < 3000; step++) {
      const key = keys[randomInt(random, keys.length)];
      const before = map;
      if (random() < 0.4) {
        map = map.delete(key);
        strictEqual(map === before, !model.has(key), "delete returns this only when absent");
        model.delete(key);
      } else {
        const value = values[randomInt(random, values.length)];
        map = map.set(key, value);
        strictEqual(map === before, model.get(key) === value, "set returns this only when same");
        model.set(key, value);
      }
      assertMatches(map, model, probeKeys);
      if (step % 300 === 0) versions.push({ map, expected: new Map(model) });
    }
    for (const version of versions) assertMatches(version.map, version.expected, probeKeys);
    // The trie's shape depends only on its keys, so any insertion order iterates the same.
    const rebuilt = build(hash, shuffled([...model], random));
    assertEquals([...rebuilt.keys()], [...map.keys()]);
  });
}

Deno.test("PersistentMap: empty, undefined values and the ReadonlyMap surface", () => {
  const empty = PersistentMap.empty<number>();
  strictEqual(PersistentMap.empty<string>(), empty as unknown);
  strictEqual(empty.size, 0);
  strictEqual(empty.delete("a"), empty);
  assertEquals([...empty], []);

  const withUndefined = PersistentMap.from<number | undefined>([["a", undefined]]);
  strictEqual(withUndefined.has("a"), true);
  strictEqual(withUndefined.get("a"), undefined);
  strictEqual(withUndefined.set("a", undefined), withUndefined);

  const map = PersistentMap.from([["a", 1], ["b", 2], ["c", 3], ["a", 4]]);
  const asReadonly: ReadonlyMap<string, number> = map;
  assertEquals(new Map(asReadonly), new Map([["a", 4], ["b", 2], ["c", 3]]));
  const seen: [string, number][] = [];
  const context = { tag: "this" };
  map.forEach(function (this: typeof context, value, key, owner) {
    strictEqual(this, context);
    strictEqual(owner, map);
    seen.push([key, value]);
  }, context);
  assertEquals(seen, [...map.entries()]);
  assertEquals(map.keys().toArray(), seen.map(([key]) => key));
});

Deno.test("PersistentMap.withMutations: same result as single writes, base untouched", () => {
  const random = mulberry32(42);
  const keys = serviceKeys(10_000);
  const base = PersistentMap.from(keys.map((key, i) => [key, i] as const));
  const baseEntries = [...base];
  const cases: { name: string; writes: [string, number | null][] }[] = [
    { name: "nothing", writes: [] },
    { name: "re-set same values", writes: keys.slice(0, 50).map((k, i) => [k, i]) },
    { name: "one update", writes: [[keys[7], -1]] },
    { name: "set then delete a new key", writes: [["new", 1], ["new", null]] },
    {
      name: "2,000 random writes",
      writes: Array.from({ length: 2000 }, () => {
        const key = random() < 0.2 ? `new-${randomInt(random, 500)}` : keys[randomInt(random, 1e4)];
        return [key, random() < 0.3 ? null : randomInt(random, 5)];
      }),
    },
  ];
  for (const { name, writes } of cases) {
    let expected = base;
    for (const [key, value] of writes) {
      expected = value === null ? expected.delete(key) : expected.set(key, value);
    }
    const batched = base.withMutations((m) => {
      for (const [key, value] of writes) {
        if (value === null) m.delete(key);
        else m.set(key, value);
      }
    });
    strictEqual(batched.size, expected.size, name);
    assertEquals([...batched], [...expected], name);
    strictEqual(batched === base, expected === base, `${name}: returns this when unchanged`);
    assertEquals([...base], baseEntries, `${name}: base unchanged`);
  }
});

Deno.test("PersistentMap.withMutations: edits only its own nodes, and only while open", () => {
  const v1 = PersistentMap.from(serviceKeys(1000).map((key, i) => [key, i] as const));
  let batch: { set(key: string, value: number): void } | undefined;
  const v2 = v1.withMutations((m) => {
    batch = m;
    m.set("ns-0/service-0", -1);
    m.set("ns-0/service-0", -2); // a node this batch made: edited in place
  });
  const v3 = v2.withMutations((m) => m.set("ns-1/service-1", -3)); // v2's nodes are shared
  strictEqual(v1.get("ns-0/service-0"), 0);
  strictEqual(v2.get("ns-0/service-0"), -2);
  strictEqual(v2.get("ns-1/service-1"), 1);
  strictEqual(v3.get("ns-1/service-1"), -3);
  throws(() => batch!.set("late", 1), /after it ended/);
  throws(() =>
    v1.withMutations((m) => {
      m.set("ns-2/service-2", -4);
      throw new Error("abandoned");
    }), /abandoned/);
  strictEqual(v1.get("ns-2/service-2"), 2);
});

Deno.test("PersistentMap: keys with equal hashes (injected hash)", () => {
  const constant: KeyHash = () => 0x2a;
  const nearby: KeyHash = (key) => key.startsWith("x") ? 0x2a | (1 << 31) : 0x2a;
  const cases: { name: string; hash: KeyHash; keys: string[] }[] = [
    { name: "all keys equal hash", hash: constant, keys: ["b", "a", "d", "c", "e"] },
    {
      name: "equal hashes next to one differing in the last level",
      hash: nearby,
      keys: ["b", "x1", "a", "c"],
    },
  ];
  for (const { name, hash, keys } of cases) {
    let map = PersistentMap.emptyWithHash<string>(hash);
    for (const key of keys) map = map.set(key, key.toUpperCase());
    const full = map;
    strictEqual(full.size, keys.length, name);
    for (const key of keys) strictEqual(full.get(key), key.toUpperCase(), name);
    strictEqual(full.has("zz"), false, name);
    // Colliding keys iterate sorted by key, whatever their insertion order.
    const colliding = keys.filter((k) => !k.startsWith("x")).sort();
    assertEquals([...full.keys()].filter((k) => !k.startsWith("x")), colliding, name);
    strictEqual(full.set("a", "A"), full, name);
    const updated = full.set("a", "a2");
    assertEquals(diffKeys(full, updated), ["a"], name);
    let shrinking = full;
    for (const key of keys) {
      const next = shrinking.delete(key);
      strictEqual(next.get(key), undefined, name);
      strictEqual(next.size, shrinking.size - 1, name);
      assertEquals(diffKeys(shrinking, next), [key], name);
      strictEqual(next.delete(key), next, name);
      shrinking = next;
    }
    strictEqual(shrinking.size, 0, name);
    assertEquals(sortedDiff(full, shrinking), [...keys].sort(), name);
    assertEquals([...full].length, keys.length, `${name}: old version intact`);
  }
});

Deno.test("PersistentMap: two keys with equal default hashes", () => {
  // Birthday search: a 32-bit hash repeats within ~100,000 keys; deterministic for a fixed hash.
  const seen = new Map<number, string>();
  let pair: [string, string] | undefined;
  for (let i = 0; !pair; i++) {
    const key = `ns-${i % 97}/svc-${i}`;
    const other = seen.get(hashKey(key));
    if (other !== undefined) pair = [other, key];
    seen.set(hashKey(key), key);
  }
  const [a, b] = pair;
  const map = PersistentMap.from([[a, 1], [b, 2], ["default/web", 3]]);
  strictEqual(map.get(a), 1);
  strictEqual(map.get(b), 2);
  assertEquals(diffKeys(map, map.set(b, 5)), [b]);
  const withoutA = map.delete(a);
  assertEquals(new Map(withoutA), new Map([[b, 2], ["default/web", 3]]));
  assertEquals(diffKeys(map, withoutA), [a]);
});

Deno.test("diffKeys reports exactly the keys whose values differ", () => {
  const random = mulberry32(7);
  const keys = serviceKeys(10_000);
  const values = keys.map((_, i) => ({ i }));
  const model = new Map(keys.map((key, i) => [key, values[i]]));
  const base = PersistentMap.from(model);
  const cases: { name: string; after: (m: PersistentMap<{ i: number }>) => typeof m }[] = [
    { name: "same map", after: (m) => m },
    {
      name: "equal map built apart",
      after: () => PersistentMap.from(shuffled([...model], random)),
    },
    { name: "same value set again", after: (m) => m.set(keys[3], values[3]) },
    { name: "deleted and re-added", after: (m) => m.delete(keys[3]).set(keys[3], values[3]) },
  ];
  for (const { name, after } of cases) assertEquals(diffKeys(base, after(base)), [], name);
  // An equal but different object is a different value (!==).
  assertEquals(diffKeys(base, base.delete(keys[3]).set(keys[3], { i: 3 })), [keys[3]]);

  for (const writes of [1, 10, 100, 1000]) {
    const expected = new Map(model);
    const after = base.withMutations((m) => {
      for (let w = 0; w < writes; w++) {
        const roll = random();
        const key = roll < 0.2 ? `new/${randomInt(random, 1e6)}` : keys[randomInt(random, 1e4)];
        if (roll >= 0.8) {
          m.delete(key);
          expected.delete(key);
          continue;
        }
        // Some writes put back the value already there, which is no change.
        const value = roll < 0.5 ? values[randomInt(random, 1e4)] : expected.get(key) ?? { i: -1 };
        m.set(key, value);
        expected.set(key, value);
      }
    });
    const name = `${writes} random writes`;
    const diff = diffKeys(base, after);
    assertEquals([...diff].sort(), expectedDiff(model, expected), name);
    assertEquals(diffKeys(after, base).sort(), [...diff].sort(), `${name}: symmetric`);
    assertEquals(diffKeys(base, after), diff, `${name}: same order every time`);
  }
});

Deno.test("diffKeys where one map has an entry and the other a subtree at the same place", () => {
  // All keys share hash fragment 1 at the root; x, y and z part one level down, x and x2 two.
  const hashes: Record<string, number> = {
    x: 1,
    x2: 1 | (1 << 10),
    y: 1 | (1 << 5),
    z: 1 | (2 << 5),
  };
  const hash: KeyHash = (key) => hashes[key];
  const one = { v: 1 }, two = { v: 2 };
  const cases: { name: string; entry: [string, object][]; subtree: [string, object][] }[] = [
    { name: "entry absent from subtree", entry: [["x", one]], subtree: [["y", one], ["z", one]] },
    {
      name: "entry in subtree, same value",
      entry: [["x", one]],
      subtree: [["x", one], ["y", one]],
    },
    { name: "entry in subtree, new value", entry: [["x", one]], subtree: [["x", two], ["y", one]] },
    {
      name: "entry deeper in subtree",
      entry: [["x", one]],
      subtree: [["x", one], ["x2", one], ["y", one]],
    },
  ];
  for (const { name, entry, subtree } of cases) {
    const expected = expectedDiff(new Map(entry), new Map(subtree));
    const withEntry = build(hash, entry), withSubtree = build(hash, subtree);
    assertEquals(sortedDiff(withEntry, withSubtree), expected, name);
    assertEquals(sortedDiff(withSubtree, withEntry), expected, `${name}, reversed`);
  }
});

Deno.test("diffKeys refuses maps placed by different hashes", () => {
  throws(
    () => diffKeys(PersistentMap.empty(), PersistentMap.emptyWithHash(() => 0)),
    RangeError,
  );
});

Deno.test("diffKeys skips shared subtrees: one write on 10,000 entries visits few nodes", () => {
  const keys = serviceKeys(10_000);
  const base = PersistentMap.from(keys.map((key, i) => [key, i] as const));
  const visited = (before: PersistentMap<number>, after: PersistentMap<number>) => {
    const stats: DiffStats = { nodesVisited: 0 };
    diffKeys(before, after, stats);
    return stats.nodesVisited;
  };
  // The counter is real: two equal maps sharing no node make the diff read the whole trie.
  const rebuilt = PersistentMap.from([...base].reverse());
  ok(visited(base, rebuilt) > 1000, `rebuilt: ${visited(base, rebuilt)}`);
  const cases: { name: string; after: PersistentMap<number> }[] = [
    { name: "update", after: base.set(keys[1234], -1) },
    { name: "insert", after: base.set("new/key", -1) },
    { name: "delete", after: base.delete(keys[4321]) },
    { name: "batch of one", after: base.withMutations((m) => m.set(keys[99], -1)) },
  ];
  for (const { name, after } of cases) {
    strictEqual(diffKeys(base, after).length, 1, name);
    ok(visited(base, after) < 100, `${name}: ${visited(base, after)} nodes`);
  }
});
