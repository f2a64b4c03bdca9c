/**
 * In-memory stand-ins for the nft and conntrack seams, for unit tests of the dataplane (the other
 * side of the seam). The fake nft understands the command grammar svcgate writes (one command per
 * line, see diff.ts), applies a transaction all-or-nothing with the kernel's main refusals (element
 * exists with another value, element or chain missing, chain still referenced), and lists tables as
 * `nft -j` does, so the read-back parser runs on the same shapes.
 * @module
 */

import {
  type ConntrackCleaner,
  nftErrorFrom,
  type NftExecutor,
  type UdpFlowFilter,
} from "../../src/nft/executor.ts";
import { type BaseChain, type Family, TABLE_NAME } from "../../src/nft/ruleset.ts";

interface FakeSet {
  kind: "set" | "map";
  body: string;
  comment: string | null;
  dynamic: boolean;
  elements: Map<string, string>;
}

interface FakeChain {
  base?: BaseChain;
  rules: { text: string; comment: string | null }[];
}

interface FakeTable {
  sets: Map<string, FakeSet>;
  chains: Map<string, FakeChain>;
}

class Refusal extends Error {}

const COMMENT = /comment "([^"]*)"/;

function cloneTable(t: FakeTable): FakeTable {
  const sets = new Map<string, FakeSet>();
  for (const [k, s] of t.sets) sets.set(k, { ...s, elements: new Map(s.elements) });
  const chains = new Map<string, FakeChain>();
  for (const [k, c] of t.chains) chains.set(k, { ...c, rules: [...c.rules] });
  return { sets, chains };
}

function splitElements(body: string): [string, string][] {
  return body.split(", ").map((e) => {
    const commented = /^(.*) comment "([^"]*)"$/.exec(e.trim());
    if (commented) return [commented[1], commented[2]];
    const i = e.indexOf(" : ");
    return i < 0 ? [e.trim(), ""] : [e.slice(0, i).trim(), e.slice(i + 3).trim()];
  });
}

function atomJson(part: string): unknown {
  if (/^\d+$/.test(part)) return Number(part);
  const slash = part.indexOf("/");
  if (slash > 0) {
    return { prefix: { addr: part.slice(0, slash), len: Number(part.slice(slash + 1)) } };
  }
  return part;
}

function valueJson(text: string): unknown {
  const m = /^(goto|jump) (\S+)$/.exec(text);
  if (m) return { [m[1]]: { target: m[2] } };
  if (text === "drop" || text === "accept") return { [text]: null };
  const parts = text.split(" . ").map(atomJson);
  return parts.length === 1 ? parts[0] : { concat: parts };
}

/** A chain as nft -j lists it; a full listing numbers it with a handle, the outline does not. */
function chainJson(family: Family, name: string, c: FakeChain, handle?: number): unknown {
  return {
    chain: {
      family,
      table: TABLE_NAME,
      name,
      ...(handle !== undefined ? { handle } : {}),
      ...(c.base
        ? { type: c.base.type, hook: c.base.hook, prio: c.base.priority, policy: "accept" }
        : {}),
    },
  };
}

function keyJson(text: string): unknown {
  const parts = text.split(" . ").map(atomJson);
  return parts.length === 1 ? parts[0] : { concat: parts };
}

/**
 * A fake nft with fault injection.
 *
 * @example
 * ```ts
 * const nft = new FakeNftExecutor();
 * nft.failNextApply("Could not process rule: Cannot allocate memory");
 * ```
 */
export class FakeNftExecutor implements NftExecutor {
  #tables = new Map<Family, FakeTable>();
  #failures: string[] = [];
  /** Every script applied successfully, in order. */
  readonly applied: string[] = [];
  /** Number of apply calls, successful or not. */
  applyCalls = 0;
  /** Number of listTable calls. */
  listCalls = 0;

  /** Makes the next apply fail as nft would, with this reason; the state stays unchanged. */
  failNextApply(reason = "Could not process rule: Operation not permitted"): void {
    this.#failures.push(reason);
  }

  /** True when the table exists. */
  hasTable(family: Family): boolean {
    return this.#tables.has(family);
  }

  /** The elements of a set (a copy), or undefined. */
  elements(family: Family, set: string): Map<string, string> | undefined {
    const s = this.#tables.get(family)?.sets.get(set);
    return s ? new Map(s.elements) : undefined;
  }

  /** Rule texts of a chain, or undefined. */
  rules(family: Family, chain: string): string[] | undefined {
    return this.#tables.get(family)?.chains.get(chain)?.rules.map((r) => r.text);
  }

  /** Chain names of a table. */
  chainNames(family: Family): string[] {
    return [...(this.#tables.get(family)?.chains.keys() ?? [])].sort();
  }

  /** Simulates someone else's change: deletes a whole table. */
  dropTable(family: Family): void {
    this.#tables.delete(family);
  }

  /** Simulates someone else's change: deletes one element. */
  dropElement(family: Family, set: string, key: string): void {
    this.#tables.get(family)?.sets.get(set)?.elements.delete(key);
  }

  /** Simulates packets writing a dynamic map (affinity). */
  setDynamicElements(family: Family, set: string, entries: [string, string][]): void {
    const s = this.#tables.get(family)?.sets.get(set);
    if (!s) throw new Error(`fake nft: no set ${family} ${set}`);
    for (const [k, v] of entries) s.elements.set(k, v);
  }

  apply(script: string): Promise<void> {
    this.applyCalls++;
    const failure = this.#failures.shift();
    if (failure !== undefined) {
      const first = script.split("\n")[0] ?? "";
      return Promise.reject(nftErrorFrom(
        "Applying an nft transaction",
        `/dev/stdin:1:1-${Math.max(1, first.length)}: Error: ${failure}\n${first}\n`,
        1,
        script,
      ));
    }
    const work = new Map<Family, FakeTable>();
    for (const [f, t] of this.#tables) work.set(f, cloneTable(t));
    const lines = script.split("\n");
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i];
      if (line.trim() === "" || line.trimStart().startsWith("#")) continue;
      try {
        this.#exec(work, line);
      } catch (e) {
        if (!(e instanceof Refusal)) throw e;
        return Promise.reject(nftErrorFrom(
          "Applying an nft transaction",
          `/dev/stdin:${i + 1}:1-${line.length}: Error: ${e.message}\n${line}\n`,
          1,
          script,
        ));
      }
    }
    this.#tables = work;
    this.applied.push(script);
    return Promise.resolve();
  }

  #exec(tables: Map<Family, FakeTable>, line: string): void {
    let m: RegExpExecArray | null;
    const table = (family: string): FakeTable => {
      const t = tables.get(family as Family);
      if (!t) throw new Refusal("Could not process rule: No such file or directory");
      return t;
    };
    const T = `(ip6?) ${TABLE_NAME}`;
    if ((m = new RegExp(`^add table ${T}$`).exec(line))) {
      if (!tables.has(m[1] as Family)) {
        tables.set(m[1] as Family, { sets: new Map(), chains: new Map() });
      }
      return;
    }
    if ((m = new RegExp(`^delete table ${T}$`).exec(line))) {
      table(m[1]);
      tables.delete(m[1] as Family);
      return;
    }
    if ((m = new RegExp(`^add (set|map) ${T} (\\S+) \\{ (.*) \\}$`).exec(line))) {
      const t = table(m[2]);
      const existing = t.sets.get(m[3]);
      if (existing) {
        if (existing.body !== m[4]) throw new Refusal("Could not process rule: File exists");
        return;
      }
      t.sets.set(m[3], {
        kind: m[1] as "set" | "map",
        body: m[4],
        comment: COMMENT.exec(m[4])?.[1] ?? null,
        dynamic: /flags [^;]*dynamic/.test(m[4]),
        elements: new Map(),
      });
      return;
    }
    if (
      (m = new RegExp(
        `^add chain ${T} (\\S+)(?: \\{ type (filter|nat) hook (\\w+) priority (-?\\d+); policy accept; \\})?$`,
      ).exec(line))
    ) {
      const t = table(m[1]);
      const base: BaseChain | undefined = m[3]
        ? {
          type: m[3] as BaseChain["type"],
          hook: m[4] as BaseChain["hook"],
          priority: Number(m[5]),
        }
        : undefined;
      const existing = t.chains.get(m[2]);
      if (existing) {
        if (JSON.stringify(existing.base) !== JSON.stringify(base)) {
          throw new Refusal("Could not process rule: File exists");
        }
        return;
      }
      t.chains.set(m[2], base ? { base, rules: [] } : { rules: [] });
      return;
    }
    if ((m = new RegExp(`^flush chain ${T} (\\S+)$`).exec(line))) {
      const c = table(m[1]).chains.get(m[2]);
      if (!c) throw new Refusal("Could not process rule: No such file or directory");
      c.rules = [];
      return;
    }
    if ((m = new RegExp(`^delete chain ${T} (\\S+)$`).exec(line))) {
      const t = table(m[1]);
      if (!t.chains.has(m[2])) {
        throw new Refusal("Could not process rule: No such file or directory");
      }
      const ref = new RegExp(`(?:goto|jump) ${m[2].replace(/[-]/g, "\\-")}(?:\\s|$)`);
      for (const s of t.sets.values()) {
        for (const v of s.elements.values()) {
          if (ref.test(v)) throw new Refusal("Could not process rule: Device or resource busy");
        }
      }
      for (const c of t.chains.values()) {
        if (c.rules.some((r) => ref.test(r.text))) {
          throw new Refusal("Could not process rule: Device or resource busy");
        }
      }
      t.chains.delete(m[2]);
      return;
    }
    if ((m = new RegExp(`^add rule ${T} (\\S+) (.*)$`).exec(line))) {
      const t = table(m[1]);
      const c = t.chains.get(m[2]);
      if (!c) throw new Refusal("Could not process rule: No such file or directory");
      for (const ref of m[3].matchAll(/@([\w-]+)/g)) {
        if (!t.sets.has(ref[1])) {
          throw new Refusal(`Could not process rule: No such file or directory`);
        }
      }
      for (const ref of m[3].matchAll(/(?:jump|goto) ([\w-]+)/g)) {
        if (!t.chains.has(ref[1])) {
          throw new Refusal(`Could not process rule: No such file or directory`);
        }
      }
      c.rules.push({ text: m[3], comment: COMMENT.exec(m[3])?.[1] ?? null });
      return;
    }
    if ((m = new RegExp(`^(add|delete) element ${T} (\\S+) \\{ (.*) \\}$`).exec(line))) {
      const t = table(m[2]);
      const s = t.sets.get(m[3]);
      if (!s) throw new Refusal("Could not process rule: No such file or directory");
      for (const [k, v] of splitElements(m[4])) {
        if (m[1] === "add") {
          const have = s.elements.get(k);
          if (have !== undefined && have !== v) {
            throw new Refusal("Could not process rule: File exists");
          }
          const target = /^(?:goto|jump) (\S+)$/.exec(v);
          if (target && !t.chains.has(target[1])) {
            throw new Refusal("Could not process rule: No such file or directory");
          }
          s.elements.set(k, v);
        } else {
          if (!s.elements.has(k)) {
            throw new Refusal("Could not process rule: No such file or directory");
          }
          s.elements.delete(k);
        }
      }
      return;
    }
    throw new Refusal(`syntax error, unexpected command: ${line.slice(0, 60)}`);
  }

  listTable(family: Family): Promise<string | null> {
    this.listCalls++;
    const t = this.#tables.get(family);
    if (!t) return Promise.resolve(null);
    const items: unknown[] = [
      { metainfo: { version: "1.0.6", release_name: "fake", json_schema_version: 1 } },
      { table: { family, name: TABLE_NAME, handle: 1 } },
    ];
    for (const [name, s] of t.sets) items.push(this.#setJson(family, name, s));
    let handle = 100;
    for (const [name, c] of t.chains) items.push(chainJson(family, name, c, handle++));
    for (const [name, c] of t.chains) {
      for (const r of c.rules) {
        items.push({
          rule: {
            family,
            table: TABLE_NAME,
            chain: name,
            handle: handle++,
            ...(r.comment !== null ? { comment: r.comment } : {}),
            expr: [],
          },
        });
      }
    }
    return Promise.resolve(JSON.stringify({ nftables: items }));
  }

  /** A set as nft -j lists it; without its elements for the outline. */
  #setJson(family: Family, name: string, s: FakeSet, withElements = true): unknown {
    const elem = !withElements ? [] : [...s.elements].map(([k, v]) => {
      if (s.kind === "set" && v !== "") return { elem: { val: keyJson(k), comment: v } };
      const key = s.dynamic
        ? { elem: { val: keyJson(k), timeout: 10800, expires: 10000 } }
        : keyJson(k);
      return s.kind === "map" ? [key, valueJson(v)] : key;
    });
    return {
      [s.kind]: {
        family,
        name,
        table: TABLE_NAME,
        ...(s.comment !== null ? { comment: s.comment } : {}),
        ...(elem.length > 0 ? { elem } : {}),
      },
    };
  }

  listOutline(family: Family): Promise<string> {
    const t = this.#tables.get(family);
    const items: unknown[] = [];
    if (t) {
      for (const [name, s] of t.sets) items.push(this.#setJson(family, name, s, false));
      for (const [name, c] of t.chains) items.push(chainJson(family, name, c));
    }
    return Promise.resolve(JSON.stringify({ nftables: items }));
  }

  listSet(family: Family, kind: "set" | "map", name: string): Promise<string | null> {
    const s = this.#tables.get(family)?.sets.get(name);
    if (!s || s.kind !== kind) return Promise.resolve(null);
    return Promise.resolve(JSON.stringify({ nftables: [this.#setJson(family, name, s)] }));
  }
}

/** A conntrack stand-in that records every request. */
export class FakeConntrack implements ConntrackCleaner {
  readonly calls: UdpFlowFilter[] = [];
  /** When set, every call fails with this message. */
  failWith: string | null = null;

  deleteUdpFlows(filter: UdpFlowFilter): Promise<number> {
    this.calls.push(filter);
    if (this.failWith) return Promise.reject(new Error(this.failWith));
    return Promise.resolve(0);
  }
}
