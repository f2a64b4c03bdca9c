/**
 * Reads `nft monitor` output: what changed in the kernel's rulesets, and who changed it. Pure.
 *
 * nft prints each object a transaction touched, then `# new generation N by process PID (COMM)`
 * once the transaction committed; a change is attributed to a process by that closing line.
 * Only which tables, sets and chains changed is kept, so a transaction costs memory by the objects
 * it touched, not by its elements.
 * @module
 */

import { FAMILIES, type Family } from "./ruleset.ts";

/** One object a transaction added or deleted. */
export interface MonitorChange {
  readonly op: "add" | "delete";
  readonly object: "table" | "chain" | "set" | "element" | "rule";
  readonly family: Family;
  readonly table: string;
  /** The chain (of a chain or rule) or the set (of a set, map or element); "" for a table. */
  readonly name: string;
}

/** A committed transaction: its changes and the process that made it. */
export interface MonitorTransaction {
  readonly generation: number;
  readonly pid: number;
  readonly changes: readonly MonitorChange[];
}

const GENERATION = /^# new generation (\d+) by process (\d+)/;
const CHANGE = /^(add|delete) (table|chain|set|map|element|rule) (\S+) (\S+)(?: (\S+))?/;

/**
 * Turns monitor lines into committed transactions, keeping the changes of a transaction not yet
 * closed. Lines it does not know (other families, trace output) are skipped.
 *
 * @example
 * ```ts
 * const reader = new MonitorReader();
 * for (const line of lines) for (const tx of reader.push(line)) console.log(tx.pid, tx.changes);
 * ```
 */
export class MonitorReader {
  /** Distinct changes of the open transaction: a flush of 100,000 elements is one entry. */
  #pending = new Map<string, MonitorChange>();

  /** Reads one line; returns the transaction it closed, if any. */
  push(line: string): MonitorTransaction[] {
    const gen = GENERATION.exec(line);
    if (gen) {
      const changes = [...this.#pending.values()];
      this.#pending.clear();
      return [{ generation: Number(gen[1]), pid: Number(gen[2]), changes }];
    }
    const m = CHANGE.exec(line);
    if (m && (FAMILIES as readonly string[]).includes(m[3])) {
      const object = m[2] === "map" ? "set" : m[2] as MonitorChange["object"];
      const change: MonitorChange = {
        op: m[1] as "add" | "delete",
        object,
        family: m[3] as Family,
        table: m[4],
        name: object === "table" ? "" : m[5] ?? "",
      };
      const key = `${change.op} ${object} ${change.family} ${change.table} ${change.name}`;
      if (!this.#pending.has(key)) this.#pending.set(key, change);
    }
    return [];
  }
}

/** What a foreign change to one table needs repaired. */
export interface DriftScope {
  /** The table itself, a set or a chain was created or deleted: reconcile the whole table. */
  readonly structural: boolean;
  /** Sets whose elements changed. */
  readonly sets: ReadonlySet<string>;
  /** Chains whose rules changed. */
  readonly chains: ReadonlySet<string>;
}

/**
 * Per family, what the changes did to the table named `table`; families left untouched are
 * absent.
 *
 * @example
 * ```ts
 * driftScopes(tx.changes, "svcgate").get("ip")?.sets; // Set { "vip-dispatch" }
 * ```
 */
export function driftScopes(
  changes: readonly MonitorChange[],
  table: string,
): Map<Family, DriftScope> {
  const out = new Map<Family, { structural: boolean; sets: Set<string>; chains: Set<string> }>();
  for (const c of changes) {
    if (c.table !== table) continue;
    let scope = out.get(c.family);
    if (!scope) {
      out.set(c.family, scope = { structural: false, sets: new Set(), chains: new Set() });
    }
    if (c.object === "element") scope.sets.add(c.name);
    else if (c.object === "rule") scope.chains.add(c.name);
    else scope.structural = true;
  }
  return out;
}

const SKIPPED_PREFIX = new TextEncoder().encode("add element ");
const NEWLINE = 10;

/**
 * Cuts `nft monitor` output into the lines {@link MonitorReader} needs, without decoding the ones
 * it does not: element additions. svcgate's own cold start prints one line per element (130,000
 * at 10,000 services); an element someone else adds cannot stop traffic to a service, and the
 * periodic full check removes it.
 *
 * @example
 * ```ts
 * const lines = new MonitorLineSplitter();
 * for await (const chunk of child.stdout) for (const line of lines.push(chunk)) reader.push(line);
 * ```
 */
export class MonitorLineSplitter {
  readonly #decoder = new TextDecoder();
  /** The start of a line whose end has not arrived, when the line is kept. */
  #carry: Uint8Array[] = [];
  /** True while inside a skipped line whose end has not arrived. */
  #skipping = false;
  /** Bytes of the current line seen so far (to match the prefix across chunks). */
  #head = 0;

  /** Takes the next chunk; returns the whole kept lines it completed. */
  push(chunk: Uint8Array): string[] {
    const out: string[] = [];
    let start = 0;
    for (let i = 0; i < chunk.length; i++) {
      if (this.#head < SKIPPED_PREFIX.length && !this.#skipping) {
        const at = this.#head;
        const c = chunk[i];
        if (c !== SKIPPED_PREFIX[at]) this.#head = SKIPPED_PREFIX.length; // not a skipped line
        else if (at + 1 === SKIPPED_PREFIX.length) {
          this.#skipping = true;
          this.#carry = [];
        } else this.#head = at + 1;
      }
      if (chunk[i] !== NEWLINE) continue;
      if (!this.#skipping) {
        this.#carry.push(chunk.subarray(start, i));
        out.push(this.#decodeCarry());
      }
      this.#carry = [];
      this.#skipping = false;
      this.#head = 0;
      start = i + 1;
    }
    if (!this.#skipping && start < chunk.length) this.#carry.push(chunk.slice(start));
    return out;
  }

  #decodeCarry(): string {
    if (this.#carry.length === 1) return this.#decoder.decode(this.#carry[0]);
    let n = 0;
    for (const part of this.#carry) n += part.length;
    const all = new Uint8Array(n);
    let at = 0;
    for (const part of this.#carry) {
      all.set(part, at);
      at += part.length;
    }
    return this.#decoder.decode(all);
  }
}
