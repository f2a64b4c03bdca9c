/**
 * An immutable, persistent hash map with string keys: a hash array mapped trie (32-way, bitmap
 * compressed, entries and children kept apart as in CHAMP) whose writes return a new map sharing
 * all untouched nodes with the old one.
 *
 * Why: the model store commits a snapshot of up to 10,000 services on every change. Copying a Map
 * costs O(n) time and a full second table per commit; here a one-key write copies only the 3-4
 * small arrays on the key's path, and {@link diffKeys} skips every subtree two versions share, so
 * consumers learn what changed in O(k log n). Nodes are flat arrays (no object per entry), which
 * also makes 10,000 entries smaller than in a Map. Pure: no I/O, no clock.
 * @module
 */

import { hashKey } from "./hash.ts";

/**
 * A trie node, one flat array so that a node is a single allocation:
 * - bitmap node: `[dataMap, nodeMap, k0, v0, k1, v1, ..., child0, child1, ...]`. Bit f of dataMap
 *   says an entry sits at hash fragment f, bit f of nodeMap a child node; both in fragment order.
 *   The maps are int32, which V8 keeps unboxed (Smi) in the array.
 * - collision node, only below the last bitmap level, where all 32 hash bits are used up:
 *   `[k0, v0, k1, v1, ...]` sorted by key, so that order never depends on insertion order.
 *
 * The trie is canonical (its shape depends only on its keys): an entry sits at the shallowest
 * level where its hash prefix is unique, and a deletion moves a child left with one entry up.
 * That keeps iteration order deterministic for a given key set and diffs short.
 */
type Node = unknown[];

/** Nodes created by the running withMutations batch: the only ones it may edit in place. */
type Batch = Set<Node> | null;

/** A 32-bit hash of a key; any int32 or uint32 works. */
export type KeyHash = (key: string) => number;

/** Filled in by {@link diffKeys} when passed, so tests can check that shared subtrees are skipped. */
export interface DiffStats {
  /** Trie nodes the diff read (pairs compared count once). */
  nodesVisited: number;
}

const BITS = 5;
const FRAGMENT_MASK = 31;
/** Shift of the deepest bitmap level (hash bits 30-31); nodes below it are collision nodes. */
const LAST_SHIFT = 30;
const ABSENT = Symbol("absent");
const EMPTY_ROOT: Node = [0, 0];

/**
 * Set by insert (+1 when it added a key) and remove (-1 when it removed one). A module variable
 * rather than a returned record so that a write allocates nothing but the copied path.
 */
let sizeChange = 0;

function bitCount(x: number): number {
  x = x - ((x >>> 1) & 0x55555555);
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  return Math.imul((x + (x >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24;
}

function fragmentBit(hash: number, shift: number): number {
  return 1 << ((hash >>> shift) & FRAGMENT_MASK);
}

/** Index of the key of the entry at `bit`, in a node whose dataMap has (or will have) `bit`. */
function entryIndex(dataMap: number, bit: number): number {
  return 2 + 2 * bitCount(dataMap & (bit - 1));
}

/** Index of the child at `bit`, for the given maps (the child slots follow all entries). */
function childIndex(dataMap: number, nodeMap: number, bit: number): number {
  return 2 + 2 * bitCount(dataMap) + bitCount(nodeMap & (bit - 1));
}

function claim(batch: Batch, node: Node): Node {
  batch?.add(node);
  return node;
}

/** `node` with one slot replaced: in place when the batch owns it, else on a copy. */
function withSlot(node: Node, index: number, item: unknown, batch: Batch): Node {
  if (batch?.has(node)) {
    node[index] = item;
    return node;
  }
  const copy = node.slice();
  copy[index] = item;
  return claim(batch, copy);
}

/*
 * Edits that change a node's length always build a new array of the exact size, even in a batch:
 * growing an array in place would leave V8's spare capacity in the node for good.
 */

function withEntryAdded(node: Node, bit: number, key: string, value: unknown): Node {
  const dataMap = node[0] as number;
  const copy = node.toSpliced(entryIndex(dataMap, bit), 0, key, value);
  copy[0] = dataMap | bit;
  return copy;
}

function withEntryRemoved(node: Node, bit: number): Node {
  const dataMap = node[0] as number;
  const copy = node.toSpliced(entryIndex(dataMap, bit), 2);
  copy[0] = dataMap ^ bit;
  return copy;
}

/** Replaces the entry at `bit` with a child node holding it and another key. */
function withEntryMovedDown(node: Node, bit: number, child: Node): Node {
  const dataMap = node[0] as number, nodeMap = node[1] as number;
  const from = entryIndex(dataMap, bit);
  const to = childIndex(dataMap ^ bit, nodeMap, bit);
  const out: Node = new Array(node.length - 1);
  out[0] = dataMap ^ bit;
  out[1] = nodeMap | bit;
  for (let i = 2; i < from; i++) out[i] = node[i];
  for (let i = from + 2; i < to + 2; i++) out[i - 2] = node[i];
  out[to] = child;
  for (let i = to + 2; i < node.length; i++) out[i - 1] = node[i];
  return out;
}

/** Replaces the child at `bit` with its only remaining entry. */
function withChildMovedUp(node: Node, bit: number, key: unknown, value: unknown): Node {
  const dataMap = node[0] as number, nodeMap = node[1] as number;
  const from = childIndex(dataMap, nodeMap, bit);
  const to = entryIndex(dataMap, bit);
  const out: Node = new Array(node.length + 1);
  out[0] = dataMap | bit;
  out[1] = nodeMap ^ bit;
  for (let i = 2; i < to; i++) out[i] = node[i];
  out[to] = key;
  out[to + 1] = value;
  for (let i = to; i < from; i++) out[i + 2] = node[i];
  for (let i = from + 1; i < node.length; i++) out[i + 1] = node[i];
  return out;
}

/** Index of the only entry of `node` (a node at `shift`), or -1 when it holds more. */
function loneEntryIndex(node: Node, shift: number): number {
  if (shift > LAST_SHIFT) return node.length === 2 ? 0 : -1;
  return node.length === 4 && node[1] === 0 ? 2 : -1;
}

/**
 * The subtree at `shift` holding two entries with different keys: one-child nodes down to the level
 * where their hashes part, or a collision node when the hashes are equal.
 */
function nodeOfTwo(
  k1: string,
  v1: unknown,
  h1: number,
  k2: string,
  v2: unknown,
  h2: number,
  shift: number,
  batch: Batch,
): Node {
  if (shift > LAST_SHIFT) return claim(batch, k1 < k2 ? [k1, v1, k2, v2] : [k2, v2, k1, v1]);
  const f1 = (h1 >>> shift) & FRAGMENT_MASK, f2 = (h2 >>> shift) & FRAGMENT_MASK;
  if (f1 === f2) {
    return claim(batch, [0, 1 << f1, nodeOfTwo(k1, v1, h1, k2, v2, h2, shift + BITS, batch)]);
  }
  const dataMap = (1 << f1) | (1 << f2);
  return claim(batch, f1 < f2 ? [dataMap, 0, k1, v1, k2, v2] : [dataMap, 0, k2, v2, k1, v1]);
}

function lookup(root: Node, hash: number, key: string): unknown {
  let node = root;
  for (let shift = 0; shift <= LAST_SHIFT; shift += BITS) {
    const bit = fragmentBit(hash, shift);
    const dataMap = node[0] as number;
    if (dataMap & bit) {
      const i = entryIndex(dataMap, bit);
      return node[i] === key ? node[i + 1] : ABSENT;
    }
    const nodeMap = node[1] as number;
    if (!(nodeMap & bit)) return ABSENT;
    node = node[childIndex(dataMap, nodeMap, bit)] as Node;
  }
  for (let i = 0; i < node.length; i += 2) if (node[i] === key) return node[i + 1];
  return ABSENT;
}

function insertColliding(node: Node, key: string, value: unknown, batch: Batch): Node {
  let i = 0;
  while (i < node.length && (node[i] as string) < key) i += 2;
  if (node[i] === key) return node[i + 1] === value ? node : withSlot(node, i + 1, value, batch);
  sizeChange = 1;
  return claim(batch, node.toSpliced(i, 0, key, value));
}

function insert(
  node: Node,
  shift: number,
  hash: number,
  key: string,
  value: unknown,
  keyHash: KeyHash,
  batch: Batch,
): Node {
  if (shift > LAST_SHIFT) return insertColliding(node, key, value, batch);
  const bit = fragmentBit(hash, shift);
  const dataMap = node[0] as number, nodeMap = node[1] as number;
  if (dataMap & bit) {
    const i = entryIndex(dataMap, bit);
    const other = node[i] as string;
    if (other === key) return node[i + 1] === value ? node : withSlot(node, i + 1, value, batch);
    const child = nodeOfTwo(
      other,
      node[i + 1],
      keyHash(other),
      key,
      value,
      hash,
      shift + BITS,
      batch,
    );
    sizeChange = 1;
    return claim(batch, withEntryMovedDown(node, bit, child));
  }
  if (nodeMap & bit) {
    const j = childIndex(dataMap, nodeMap, bit);
    const child = node[j] as Node;
    const next = insert(child, shift + BITS, hash, key, value, keyHash, batch);
    return next === child ? node : withSlot(node, j, next, batch);
  }
  sizeChange = 1;
  return claim(batch, withEntryAdded(node, bit, key, value));
}

function remove(node: Node, shift: number, hash: number, key: string, batch: Batch): Node {
  if (shift > LAST_SHIFT) {
    let i = 0;
    while (i < node.length && node[i] !== key) i += 2;
    if (i === node.length) return node;
    sizeChange = -1;
    return claim(batch, node.toSpliced(i, 2));
  }
  const bit = fragmentBit(hash, shift);
  const dataMap = node[0] as number, nodeMap = node[1] as number;
  if (dataMap & bit) {
    if (node[entryIndex(dataMap, bit)] !== key) return node;
    sizeChange = -1;
    return claim(batch, withEntryRemoved(node, bit));
  }
  if (!(nodeMap & bit)) return node;
  const j = childIndex(dataMap, nodeMap, bit);
  const child = node[j] as Node;
  const next = remove(child, shift + BITS, hash, key, batch);
  // An unchanged reference means no length changed below (those edits always copy).
  if (next === child) return node;
  const lone = loneEntryIndex(next, shift + BITS);
  if (lone < 0) return withSlot(node, j, next, batch);
  return claim(batch, withChildMovedUp(node, bit, next[lone], next[lone + 1]));
}

/** Calls `visit` on every entry under `node`, in iteration order. */
function visitEntries(
  node: Node,
  shift: number,
  visit: (key: string, value: unknown) => void,
  stats?: DiffStats,
): void {
  if (stats) stats.nodesVisited++;
  if (shift > LAST_SHIFT) {
    for (let i = 0; i < node.length; i += 2) visit(node[i] as string, node[i + 1]);
    return;
  }
  const childStart = 2 + 2 * bitCount(node[0] as number);
  for (let i = 2; i < childStart; i += 2) visit(node[i] as string, node[i + 1]);
  for (let i = childStart; i < node.length; i++) {
    visitEntries(node[i] as Node, shift + BITS, visit, stats);
  }
}

/** Yields `project(key, value)` for every entry, in the same order as {@link visitEntries}. */
function* walk<T>(
  root: Node,
  project: (key: string, value: unknown) => T,
): Generator<T, undefined, unknown> {
  const nodes: Node[] = [root], shifts: number[] = [0];
  while (nodes.length > 0) {
    const node = nodes.pop()!, shift = shifts.pop()!;
    if (shift > LAST_SHIFT) {
      for (let i = 0; i < node.length; i += 2) yield project(node[i] as string, node[i + 1]);
      continue;
    }
    const childStart = 2 + 2 * bitCount(node[0] as number);
    for (let i = 2; i < childStart; i += 2) yield project(node[i] as string, node[i + 1]);
    for (let i = node.length - 1; i >= childStart; i--) {
      nodes.push(node[i] as Node);
      shifts.push(shift + BITS);
    }
  }
}

// Set by the class's static block: they let diffKeys read the private fields of any map.
let rootOfMap: (map: PersistentMap<unknown>) => Node;
let hashOfMap: (map: PersistentMap<unknown>) => KeyHash;

/**
 * An immutable map from strings to values. Writes return a new map; the old one stays valid and
 * unchanged, sharing every node the write did not touch.
 *
 * @example
 * ```ts
 * const v1 = PersistentMap.from([["default/web", 1], ["default/db", 2]]);
 * const v2 = v1.set("default/web", 3).delete("default/db");
 * v1.get("default/web"); // 1
 * v2.get("default/web"); // 3
 * diffKeys(v1, v2); // ["default/web", "default/db"] in some fixed order
 * ```
 */
export class PersistentMap<V> implements ReadonlyMap<string, V> {
  static #empty = new PersistentMap<never>(EMPTY_ROOT, 0, hashKey);

  static {
    rootOfMap = (map) => map.#root;
    hashOfMap = (map) => map.#hash;
  }

  readonly size: number;
  readonly #root: Node;
  readonly #hash: KeyHash;

  private constructor(root: Node, size: number, hash: KeyHash) {
    this.#root = root;
    this.size = size;
    this.#hash = hash;
  }

  /**
   * The empty map (one shared instance).
   *
   * @example
   * ```ts
   * const m = PersistentMap.empty<number>().set("a", 1);
   * ```
   */
  static empty<V>(): PersistentMap<V> {
    return PersistentMap.#empty;
  }

  /**
   * An empty map that places keys by `hash` instead of {@link hashKey}. For tests: a weak hash
   * forces collisions and deep paths. Maps from different hashes cannot be diffed.
   *
   * @example
   * ```ts
   * const m = PersistentMap.emptyWithHash<number>(() => 7).set("a", 1).set("b", 2);
   * ```
   */
  static emptyWithHash<V>(hash: KeyHash): PersistentMap<V> {
    return new PersistentMap<V>(EMPTY_ROOT, 0, hash);
  }

  /**
   * A map of the given entries; a later duplicate key wins.
   *
   * @example
   * ```ts
   * const m = PersistentMap.from(Object.entries({ a: 1, b: 2 }));
   * ```
   */
  static from<V>(entries: Iterable<readonly [string, V]>): PersistentMap<V> {
    return PersistentMap.empty<V>().withMutations((m) => {
      for (const [key, value] of entries) m.set(key, value);
    });
  }

  /**
   * The value of `key`, or undefined.
   *
   * @example
   * ```ts
   * PersistentMap.from([["a", 1]]).get("a"); // 1
   * ```
   */
  get(key: string): V | undefined {
    const value = lookup(this.#root, this.#hash(key), key);
    return value === ABSENT ? undefined : value as V;
  }

  /**
   * Whether `key` is present (also when its value is undefined).
   *
   * @example
   * ```ts
   * PersistentMap.from([["a", undefined]]).has("a"); // true
   * ```
   */
  has(key: string): boolean {
    return lookup(this.#root, this.#hash(key), key) !== ABSENT;
  }

  /**
   * A map with `key` set to `value`; `this` when it already is (===).
   *
   * @example
   * ```ts
   * const m = PersistentMap.empty<number>().set("a", 1);
   * m.set("a", 1) === m; // true
   * ```
   */
  set(key: string, value: V): PersistentMap<V> {
    sizeChange = 0;
    const root = insert(this.#root, 0, this.#hash(key), key, value, this.#hash, null);
    return root === this.#root ? this : new PersistentMap(root, this.size + sizeChange, this.#hash);
  }

  /**
   * A map without `key`; `this` when it is absent.
   *
   * @example
   * ```ts
   * PersistentMap.from([["a", 1]]).delete("a").size; // 0
   * ```
   */
  delete(key: string): PersistentMap<V> {
    sizeChange = 0;
    const root = remove(this.#root, 0, this.#hash(key), key, null);
    return root === this.#root ? this : new PersistentMap(root, this.size + sizeChange, this.#hash);
  }

  /**
   * Applies several writes at once and returns the result (`this` when nothing changed). The
   * batch edits in place the nodes it created itself, so a node that many writes pass through is
   * copied once (writes that add or remove a slot still re-copy it, at exact size); nodes shared
   * with other versions are never edited, so `this` stays unchanged. The batch object throws when
   * used after `fn` returns.
   *
   * @example
   * ```ts
   * const next = prev.withMutations((m) => {
   *   m.set("default/web", entry);
   *   m.delete("default/old");
   * });
   * ```
   */
  withMutations(
    fn: (m: { set(key: string, value: V): void; delete(key: string): void }) => void,
  ): PersistentMap<V> {
    const batch: Batch = new Set();
    const hash = this.#hash;
    let root = this.#root, size = this.size, open = true;
    const ensureOpen = () => {
      if (!open) throw new Error("PersistentMap: withMutations batch used after it ended");
    };
    try {
      fn({
        set(key, value) {
          ensureOpen();
          sizeChange = 0;
          root = insert(root, 0, hash(key), key, value, hash, batch);
          size += sizeChange;
        },
        delete(key) {
          ensureOpen();
          sizeChange = 0;
          root = remove(root, 0, hash(key), key, batch);
          size += sizeChange;
        },
      });
    } finally {
      open = false;
    }
    return root === this.#root ? this : new PersistentMap(root, size, hash);
  }

  /** Entries in hash order: fixed for a given key set, unrelated to insertion order. */
  entries(): MapIterator<[string, V]> {
    return walk(this.#root, (key, value) => [key, value as V]);
  }

  /** Keys, in the order of {@link PersistentMap.entries}. */
  keys(): MapIterator<string> {
    return walk(this.#root, (key) => key);
  }

  /** Values, in the order of {@link PersistentMap.entries}. */
  values(): MapIterator<V> {
    return walk(this.#root, (_, value) => value as V);
  }

  [Symbol.iterator](): MapIterator<[string, V]> {
    return this.entries();
  }

  /** Calls `callback` for every entry, in the order of {@link PersistentMap.entries}. */
  forEach(
    callback: (value: V, key: string, map: ReadonlyMap<string, V>) => void,
    thisArg?: unknown,
  ): void {
    visitEntries(this.#root, 0, (key, value) => callback.call(thisArg, value as V, key, this));
  }
}

/** Reports every key under `node` except `key` when it is there with `value`; `key` when absent. */
function diffEntryAgainstSubtree(
  key: string,
  value: unknown,
  node: Node,
  shift: number,
  out: string[],
  stats?: DiffStats,
): void {
  let found = false;
  visitEntries(node, shift, (k, v) => {
    if (k !== key) out.push(k);
    else {
      found = true;
      if (v !== value) out.push(k);
    }
  }, stats);
  if (!found) out.push(key);
}

function diffCollisions(a: Node, b: Node, out: string[]): void {
  let i = 0, j = 0;
  while (i < a.length || j < b.length) {
    if (j >= b.length || (i < a.length && (a[i] as string) < (b[j] as string))) {
      out.push(a[i] as string);
      i += 2;
    } else if (i >= a.length || (b[j] as string) < (a[i] as string)) {
      out.push(b[j] as string);
      j += 2;
    } else {
      if (a[i + 1] !== b[j + 1]) out.push(a[i] as string);
      i += 2;
      j += 2;
    }
  }
}

function diffNodes(a: Node, b: Node, shift: number, out: string[], stats?: DiffStats): void {
  // A node shared by both versions holds the same entries: the reason diffs are O(k log n).
  if (a === b) return;
  if (stats) stats.nodesVisited++;
  if (shift > LAST_SHIFT) return diffCollisions(a, b, out);
  const aData = a[0] as number, aNodes = a[1] as number;
  const bData = b[0] as number, bNodes = b[1] as number;
  const next = shift + BITS;
  for (let pending = aData | aNodes | bData | bNodes; pending !== 0;) {
    const bit = pending & -pending;
    pending ^= bit;
    if (aData & bit) {
      const i = entryIndex(aData, bit);
      const key = a[i] as string;
      if (bData & bit) {
        const j = entryIndex(bData, bit);
        if (b[j] !== key) out.push(key, b[j] as string);
        else if (b[j + 1] !== a[i + 1]) out.push(key);
      } else if (bNodes & bit) {
        const child = b[childIndex(bData, bNodes, bit)] as Node;
        diffEntryAgainstSubtree(key, a[i + 1], child, next, out, stats);
      } else out.push(key);
    } else if (aNodes & bit) {
      const child = a[childIndex(aData, aNodes, bit)] as Node;
      if (bData & bit) {
        const j = entryIndex(bData, bit);
        diffEntryAgainstSubtree(b[j] as string, b[j + 1], child, next, out, stats);
      } else if (bNodes & bit) {
        diffNodes(child, b[childIndex(bData, bNodes, bit)] as Node, next, out, stats);
      } else visitEntries(child, next, (key) => out.push(key), stats);
    } else if (bData & bit) out.push(b[entryIndex(bData, bit)] as string);
    else {
      const child = b[childIndex(bData, bNodes, bit)] as Node;
      visitEntries(child, next, (key) => out.push(key), stats);
    }
  }
}

/**
 * Keys whose values differ (!==) between two maps: present in only one, or with different values.
 * Subtrees the maps share by reference are skipped, so after k writes on top of a map of n
 * entries the diff costs O(k log n). The order is fixed for given inputs. Both maps must use the
 * same hash (all maps do unless made with {@link PersistentMap.emptyWithHash}).
 *
 * @example
 * ```ts
 * const before = PersistentMap.from([["a", 1], ["b", 2]]);
 * diffKeys(before, before.set("a", 9).delete("b")); // ["a", "b"] in some fixed order
 * ```
 */
export function diffKeys<V>(
  before: PersistentMap<V>,
  after: PersistentMap<V>,
  stats?: DiffStats,
): string[] {
  if (hashOfMap(before) !== hashOfMap(after)) {
    throw new RangeError("diffKeys: the maps place keys by different hash functions");
  }
  const out: string[] = [];
  diffNodes(rootOfMap(before), rootOfMap(after), 0, out, stats);
  return out;
}
