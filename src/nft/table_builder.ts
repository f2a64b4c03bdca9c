/**
 * {@link TableBuilder}: one family's desired table kept incrementally from per-service fragments,
 * with a journal of what changed since the kernel last agreed, so a sync touches O(changed) data.
 * Pure.
 * @module
 */

import type { ServiceKey } from "../model/types.ts";
import type { ChainSpec, Family, SetSpec, TableSpec } from "./ruleset.ts";
import { PackedStringMap } from "./packed_map.ts";
import type { RenderOptions } from "./render_options.ts";
import { type Fragment, optionsFragment } from "./service_fragment.ts";
import { dynamicChain } from "./lb_chains.ts";
import { fixedChains, setSpecs } from "./skeleton.ts";

/** Owner key of the options' own elements (sorts before every service key). */
export const OPTIONS_OWNER = "\u0000options";

/** What changed in a table since the journal was last cleared: the value before the first change. */
export interface Journal {
  /** Set name -> key -> value before (null: absent before). */
  readonly elements: ReadonlyMap<string, ReadonlyMap<string, string | null>>;
  /** Chain name -> spec before (null: absent before). */
  readonly chains: ReadonlyMap<string, ChainSpec | null>;
}

interface Contender {
  readonly owner: string;
  readonly value: string;
}

/**
 * Small integer ids for the owners (service keys) of valued elements, so an element stores an
 * int, not a pointer to a string; an id is freed with the last element that names it.
 */
class OwnerIds {
  readonly #ids = new Map<string, number>();
  readonly #names: string[] = [""];
  readonly #refs: number[] = [0];
  readonly #free: number[] = [];

  /** The owner's id, counting one more element that names it. */
  ref(owner: string): number {
    let id = this.#ids.get(owner);
    if (id === undefined) {
      id = this.#free.pop() ?? this.#names.length;
      this.#ids.set(owner, id);
      this.#names[id] = owner;
      this.#refs[id] = 0;
    }
    this.#refs[id]++;
    return id;
  }

  /** One element fewer names this id. */
  unref(id: number): void {
    if (--this.#refs[id] > 0) return;
    this.#ids.delete(this.#names[id]);
    this.#names[id] = "";
    this.#free.push(id);
  }

  name(id: number): string {
    return this.#names[id];
  }
}

/** What a fragment claimed: element keys by set, and chain names. */
interface Claimed {
  readonly elements: readonly (readonly [set: string, key: string])[];
  readonly chains: readonly string[];
}

/** Starts a chain line in a claim record. */
const CHAIN_LINE = "#";
/**
 * One-character codes of the sets in a claim record, in the order of the table's declarations:
 * letters, so a code packs into one byte and an address after it is still packed (packed_map.ts).
 */
const SET_CODES = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/**
 * What each owner's last fragment claimed, one packed record per owner: a line per chain
 * (`#lb-vip-tcp-2`) and per element (the set's code, then the key). Values are not kept:
 * removing an element needs only its set, key and owner. A tenth of what keeping the fragments
 * would cost (figures: README.md, Memory).
 */
class ClaimRecords {
  readonly #records = new PackedStringMap();
  readonly #codes = new Map<string, string>();
  readonly #names = new Map<string, string>();

  constructor(sets: Iterable<string>) {
    for (const name of sets) {
      const code = SET_CODES[this.#codes.size];
      if (code === undefined) {
        throw new Error(`Cannot give set "${name}" a claim code: too many sets`);
      }
      this.#codes.set(name, code);
      this.#names.set(code, name);
    }
  }

  /** Remembers what the fragment claims for the owner (nothing for null or an empty one). */
  record(owner: string, fragment: Fragment | null): void {
    if (!fragment || (fragment.elements.length === 0 && fragment.chains.length === 0)) {
      this.#records.delete(owner);
      return;
    }
    let text = "";
    for (const c of fragment.chains) text += CHAIN_LINE + c + "\n";
    for (const [set, key] of fragment.elements) {
      const code = this.#codes.get(set);
      if (code === undefined) {
        throw new Error(`Cannot record element "${key}": unknown set "${set}"`);
      }
      text += code + key + "\n";
    }
    this.#records.set(owner, text);
  }

  /** What the owner's recorded fragment claimed, or null when it claims nothing. */
  claimed(owner: string): Claimed | null {
    const text = this.#records.get(owner);
    if (text === undefined) return null;
    const elements: [string, string][] = [], chains: string[] = [];
    for (const line of text.split("\n")) {
      if (line === "") continue;
      if (line[0] === CHAIN_LINE) chains.push(line.slice(1));
      else elements.push([this.#names.get(line[0])!, line.slice(1)]);
    }
    return { elements, chains };
  }
}

/**
 * One family's desired table, maintained incrementally from per-owner fragments. An element
 * contributed by several owners (shared hairpin pairs, conflicting services) is held by the
 * smallest owner key, and passes to the next one when that owner goes. Dynamic chains are
 * reference-counted. Every change is journaled with its value before the first change.
 *
 * It remembers what each owner's fragment claimed (keys and chains, packed: see
 * {@link ClaimRecords}), so replacing an owner's fragment takes only the new one.
 *
 * @example
 * ```ts
 * const builder = new TableBuilder("ip", options);
 * builder.setService("default/web", renderServiceFragment(entry, "ip", options));
 * const journal = builder.journal(); // what a transaction must change
 * ```
 */
export class TableBuilder {
  readonly family: Family;
  readonly #sets = new Map<string, SetSpec>();
  readonly #chains = new Map<string, ChainSpec>();
  /**
   * Elements per set, packed (packed_map.ts). In sets whose elements carry a value (maps,
   * comments) each element's tag is the id of the owner whose value holds; an element of any
   * other set is the same whoever claims it, so there its tag counts the owners that claim it
   * (pods behind several services share their elements), with no map of counts beside.
   */
  readonly #elements = new Map<string, PackedStringMap>();
  readonly #owners = new OwnerIds();
  /** Valued sets: `set\nkey` -> the claimants other than the holder. */
  readonly #contested = new Map<string, Contender[]>();
  /** Sets without values, whose element tags count claims. */
  readonly #counted = new Set<string>();
  readonly #chainRefs = new Map<string, number>();
  readonly #claims: ClaimRecords;
  /** Owner -> the warnings of its fragment, for the few owners that have any. */
  readonly #warnings = new Map<string, readonly string[]>();
  #journalElements = new Map<string, Map<string, string | null>>();
  #journalChains = new Map<string, ChainSpec | null>();
  readonly #table: TableSpec;

  constructor(family: Family, options: RenderOptions) {
    this.family = family;
    for (const s of setSpecs(family, options)) {
      this.#sets.set(s.name, s);
      this.#elements.set(s.name, new PackedStringMap());
      if (s.kind !== "map" && !s.commentValue) this.#counted.add(s.name);
    }
    for (const c of fixedChains(family, options)) this.#chains.set(c.name, c);
    this.#claims = new ClaimRecords(this.#sets.keys());
    this.#table = { family, sets: this.#sets, chains: this.#chains, elements: this.#elements };
    this.setService(OPTIONS_OWNER, optionsFragment(family, options));
    // The initial content is the baseline, not a change.
    this.clearJournal();
  }

  /** The live desired table (do not mutate). */
  get table(): TableSpec {
    return this.#table;
  }

  /** Replaces what one owner contributes with `next` (null removes it). */
  setService(owner: ServiceKey, next: Fragment | null): void {
    const previous = this.#claims.claimed(owner);
    // New chain references first so a chain kept by both versions is never dropped and re-added.
    for (const c of next?.chains ?? []) this.#refChain(c, 1);
    for (const [s, k] of previous?.elements ?? []) this.#remove(s, k, owner);
    for (const [s, k, v] of next?.elements ?? []) this.#add(s, k, v, owner);
    for (const c of previous?.chains ?? []) this.#refChain(c, -1);
    this.#claims.record(owner, next);
    if (next && next.warnings.length > 0) this.#warnings.set(owner, next.warnings);
    else this.#warnings.delete(owner);
  }

  /** Warnings of every fragment, plus elements claimed with different values by several owners. */
  warnings(): string[] {
    const out: string[] = [];
    for (const w of this.#warnings.values()) out.push(...w);
    for (const [id, others] of this.#contested) {
      const [set, key] = id.split("\n");
      const els = this.#elements.get(set)!;
      const winner = this.#owners.name(els.tagOf(key)!);
      const value = els.get(key)!;
      const losers = others.filter((o) => o.value !== value).map((o) => o.owner);
      if (losers.length > 0) {
        out.push(
          `services ${
            [winner, ...losers].map((o) => `"${o}"`).join(", ")
          } all claim ${set} element "${key}"; "${winner}" wins`,
        );
      }
    }
    return out.sort();
  }

  /** Everything changed since the last {@link clearJournal}. */
  journal(): Journal {
    return { elements: this.#journalElements, chains: this.#journalChains };
  }

  /** True when the journal records any change (some may cancel out). */
  get dirty(): boolean {
    return this.#journalElements.size > 0 || this.#journalChains.size > 0;
  }

  /** Forgets the journal (after the changes reached the kernel, or after a full reconcile). */
  clearJournal(): void {
    this.#journalElements = new Map();
    this.#journalChains = new Map();
  }

  #touch(set: string, key: string): void {
    let j = this.#journalElements.get(set);
    if (!j) this.#journalElements.set(set, j = new Map());
    if (!j.has(key)) j.set(key, this.#elements.get(set)!.get(key) ?? null);
  }

  #add(set: string, key: string, value: string, owner: string): void {
    const els = this.#elements.get(set);
    if (!els) throw new Error(`Cannot add element "${key}": unknown set "${set}"`);
    if (this.#counted.has(set)) {
      if (value !== "") {
        throw new Error(
          `Cannot add element "${key}" with value "${value}" to set "${set}": it holds no values`,
        );
      }
      const claims = els.tagOf(key);
      if (claims !== undefined) els.setTag(key, claims + 1);
      else {
        this.#touch(set, key);
        els.set(key, value, 1);
      }
      return;
    }
    const currentId = els.tagOf(key);
    if (currentId === undefined) {
      this.#touch(set, key);
      els.set(key, value, this.#owners.ref(owner));
      return;
    }
    const current = this.#owners.name(currentId);
    const id = `${set}\n${key}`;
    let list = this.#contested.get(id);
    if (!list) this.#contested.set(id, list = []);
    if (owner < current) {
      list.push({ owner: current, value: els.get(key)! });
      if (els.get(key) !== value) this.#touch(set, key);
      els.set(key, value, this.#owners.ref(owner));
      this.#owners.unref(currentId);
    } else {
      list.push({ owner, value });
    }
  }

  #remove(set: string, key: string, owner: string): void {
    const els = this.#elements.get(set)!;
    if (this.#counted.has(set)) {
      const claims = els.tagOf(key);
      if (claims === undefined) return;
      if (claims > 1) els.setTag(key, claims - 1);
      else {
        this.#touch(set, key);
        els.delete(key);
      }
      return;
    }
    const holderId = els.tagOf(key);
    const id = `${set}\n${key}`;
    const list = this.#contested.get(id);
    if (holderId === undefined || this.#owners.name(holderId) !== owner) {
      const i = list?.findIndex((c) => c.owner === owner) ?? -1;
      if (list && i >= 0) list.splice(i, 1);
      if (list && list.length === 0) this.#contested.delete(id);
      return;
    }
    if (list && list.length > 0) {
      let best = 0;
      for (let i = 1; i < list.length; i++) if (list[i].owner < list[best].owner) best = i;
      const next = list.splice(best, 1)[0];
      if (list.length === 0) this.#contested.delete(id);
      if (els.get(key) !== next.value) this.#touch(set, key);
      els.set(key, next.value, this.#owners.ref(next.owner));
      this.#owners.unref(holderId);
      return;
    }
    this.#touch(set, key);
    els.delete(key);
    this.#owners.unref(holderId);
  }

  #refChain(name: string, delta: 1 | -1): void {
    const n = (this.#chainRefs.get(name) ?? 0) + delta;
    if (n > 0) {
      this.#chainRefs.set(name, n);
      if (n === 1 && delta === 1) {
        if (!this.#journalChains.has(name)) {
          this.#journalChains.set(name, this.#chains.get(name) ?? null);
        }
        this.#chains.set(name, dynamicChain(name, this.family));
      }
      return;
    }
    this.#chainRefs.delete(name);
    if (!this.#journalChains.has(name)) {
      this.#journalChains.set(name, this.#chains.get(name) ?? null);
    }
    this.#chains.delete(name);
  }
}
