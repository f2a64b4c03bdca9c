/**
 * Desired table vs what the kernel holds -> the smallest transaction that makes them equal. Pure.
 *
 * Three plans:
 * - {@link planScoped}: from the builder's journal (what changed since the last successful apply):
 *   O(changed). The steady-state path.
 * - {@link planFull}: from a read-back of the kernel (start-up adoption, after a failure, drift
 *   check): element diffs and rewrites of the chains whose rule tags differ. When the set
 *   declarations or base chains differ (an older svcgate, someone's edits), the table is
 *   replaced: `add table; delete table; <create everything>` in the same transaction. nft applies a
 *   transaction atomically, so no packet ever sees a half-built or missing table, and conntrack
 *   keeps the NAT of established flows; only the dynamic affinity entries are lost.
 * - {@link planCreate} / {@link planDelete}.
 *
 * Operation order inside a transaction: new chains and their rules, rewritten chains, element
 * deletes, element adds, then obsolete chains (flushed and deleted last, when no element or rule
 * refers to them any more).
 * @module
 */

import {
  type BaseChain,
  baseChainText,
  type ChainSpec,
  elementText,
  type Family,
  type Rule,
  ruleTag,
  ruleText,
  setDeclLines,
  type SetSpec,
  setTag,
  TABLE_NAME,
  type TableSpec,
} from "./ruleset.ts";
import type { Journal } from "./table_builder.ts";

/** One step of a transaction. */
export type Op =
  | { readonly op: "add-table"; readonly family: Family }
  | { readonly op: "delete-table"; readonly family: Family }
  | { readonly op: "add-set"; readonly family: Family; readonly set: SetSpec }
  | { readonly op: "add-chain"; readonly family: Family; readonly chain: ChainSpec }
  | { readonly op: "flush-chain"; readonly family: Family; readonly name: string }
  | { readonly op: "delete-chain"; readonly family: Family; readonly name: string }
  | {
    readonly op: "add-rule";
    readonly family: Family;
    readonly chain: string;
    readonly rule: Rule;
  }
  | {
    readonly op: "add-elements";
    readonly family: Family;
    readonly set: string;
    readonly elements: readonly (readonly [key: string, value: string])[];
    /** The set keeps element values as comments (see SetSpec.commentValue). */
    readonly comments?: boolean;
  }
  | {
    readonly op: "delete-elements";
    readonly family: Family;
    readonly set: string;
    /** Keys with the value they had (kept for conntrack/affinity cleanup decisions). */
    readonly elements: readonly (readonly [key: string, value: string])[];
  };

/** What the kernel holds, as read back (see parse.ts). */
export interface ObservedTable {
  readonly family: Family;
  /** Set name -> its kind and the `sg:` tag of its declaration (null when untagged). */
  readonly sets: ReadonlyMap<string, { readonly kind: "set" | "map"; readonly tag: string | null }>;
  /** Chain name -> hook properties and the tags of its rules, in order. */
  readonly chains: ReadonlyMap<
    string,
    { readonly base?: BaseChain; readonly ruleTags: readonly (string | null)[] }
  >;
  /** Elements of the non-dynamic sets, as canonical text. */
  readonly elements: ReadonlyMap<string, ReadonlyMap<string, string>>;
  /** Anything that could not be understood; non-empty forces a replace. */
  readonly problems: readonly string[];
}

const CHUNK = 1000;

function chunked(
  family: Family,
  op: "add-elements" | "delete-elements",
  set: string,
  elements: (readonly [string, string])[],
  comments = false,
): Op[] {
  const out: Op[] = [];
  for (let i = 0; i < elements.length; i += CHUNK) {
    const slice = elements.slice(i, i + CHUNK);
    out.push(
      op === "add-elements" && comments
        ? { op, family, set, elements: slice, comments: true }
        : { op, family, set, elements: slice },
    );
  }
  return out;
}

function chainOps(family: Family, chain: ChainSpec): Op[] {
  return [
    { op: "add-chain", family, chain },
    ...chain.rules.map((rule): Op => ({ op: "add-rule", family, chain: chain.name, rule })),
  ];
}

/** Creates the whole table (the table must not exist). */
export function planCreate(desired: TableSpec): Op[] {
  const family = desired.family;
  const ops: Op[] = [{ op: "add-table", family }];
  for (const set of desired.sets.values()) ops.push({ op: "add-set", family, set });
  // Declare every chain before any rule: rules jump to chains, elements goto them.
  for (const chain of desired.chains.values()) ops.push({ op: "add-chain", family, chain });
  for (const chain of desired.chains.values()) {
    for (const rule of chain.rules) ops.push({ op: "add-rule", family, chain: chain.name, rule });
  }
  for (const [name, els] of desired.elements) {
    if (desired.sets.get(name)?.dynamic || els.size === 0) continue;
    ops.push(
      ...chunked(family, "add-elements", name, [...els], desired.sets.get(name)?.commentValue),
    );
  }
  return ops;
}

/** Deletes the table whether or not it exists (`add` first makes the delete always valid). */
export function planDelete(family: Family): Op[] {
  return [{ op: "add-table", family }, { op: "delete-table", family }];
}

/** Replaces the table atomically: whatever is there goes, the desired table comes. */
export function planReplace(desired: TableSpec): Op[] {
  return [...planDelete(desired.family), ...planCreate(desired)];
}

function sameBase(a: BaseChain | undefined, b: BaseChain | undefined): boolean {
  if (!a || !b) return a === b;
  return a.type === b.type && a.hook === b.hook && a.priority === b.priority;
}

/**
 * Why an observed table cannot be patched in place (declarations differ), or null when it can.
 */
export function structuralMismatch(observed: ObservedTable, desired: TableSpec): string | null {
  if (observed.problems.length > 0) return observed.problems[0];
  for (const set of desired.sets.values()) {
    const o = observed.sets.get(set.name);
    if (!o) return `${set.kind} "${set.name}" is missing`;
    if (o.kind !== set.kind || o.tag !== setTag(set)) {
      return `${set.kind} "${set.name}" has another declaration`;
    }
  }
  for (const name of observed.sets.keys()) {
    if (!desired.sets.has(name)) return `set "${name}" is not svcgate's`;
  }
  for (const [name, o] of observed.chains) {
    const d = desired.chains.get(name);
    if (d && !sameBase(d.base, o.base)) return `chain "${name}" has other hook properties`;
    if (!d && o.base) return `base chain "${name}" is not svcgate's`;
  }
  return null;
}

function rulesMatch(desired: ChainSpec, tags: readonly (string | null)[], family: Family): boolean {
  if (desired.rules.length !== tags.length) return false;
  return desired.rules.every((r, i) => ruleTag(r, family) === tags[i]);
}

/** Options of {@link planFull}. */
export interface PlanFullOptions {
  /**
   * Keep what the kernel holds beyond the desired table (elements of keys not desired, chains not
   * desired) instead of deleting it: the desired table is partial (a source could not read all
   * of its input), so what is missing from it is unknown, not gone. Keys the desired table holds
   * are still made equal.
   */
  readonly keepUnknown?: boolean;
}

/**
 * The transaction that turns the observed table (null: absent) into the desired one, writing only
 * the difference when the declarations agree, else replacing the table atomically.
 *
 * @example
 * ```ts
 * const ops = planFull(parseTable(json, builder.table), builder.table);
 * await executor.apply(formatOps(ops));
 * ```
 */
export function planFull(
  observed: ObservedTable | null,
  desired: TableSpec,
  options: PlanFullOptions = {},
): Op[] {
  const family = desired.family;
  const keep = options.keepUnknown === true;
  if (!observed) return planCreate(desired);
  if (structuralMismatch(observed, desired) !== null) return planReplace(desired);
  const added: Op[] = [], rewritten: Op[] = [], obsolete: Op[] = [];
  for (const chain of desired.chains.values()) {
    const o = observed.chains.get(chain.name);
    if (!o) {
      added.push(...chainOps(family, chain));
    } else if (!rulesMatch(chain, o.ruleTags, family)) {
      rewritten.push({ op: "flush-chain", family, name: chain.name });
      for (const rule of chain.rules) {
        rewritten.push({ op: "add-rule", family, chain: chain.name, rule });
      }
    }
  }
  for (const name of observed.chains.keys()) {
    if (!keep && !desired.chains.has(name)) {
      obsolete.push({ op: "flush-chain", family, name }, { op: "delete-chain", family, name });
    }
  }
  const deletes: Op[] = [], adds: Op[] = [];
  for (const [name, want] of desired.elements) {
    if (desired.sets.get(name)?.dynamic) continue;
    const have = observed.elements.get(name) ?? new Map<string, string>();
    const del: [string, string][] = [], add: [string, string][] = [];
    for (const [k, v] of have) {
      const w = want.get(k);
      if (w === undefined ? !keep : w !== v) del.push([k, v]);
    }
    for (const [k, v] of want) {
      if (have.get(k) !== v) add.push([k, v]);
    }
    deletes.push(...chunked(family, "delete-elements", name, del));
    adds.push(...chunked(family, "add-elements", name, add, desired.sets.get(name)?.commentValue));
  }
  return [...added, ...rewritten, ...deletes, ...adds, ...obsolete];
}

/**
 * The transaction for what a {@link TableBuilder} journaled since the last successful apply,
 * assuming the kernel holds the journal's "before" values.
 */
export function planScoped(journal: Journal, desired: TableSpec): Op[] {
  const family = desired.family;
  const added: Op[] = [], rewritten: Op[] = [], obsolete: Op[] = [];
  for (const [name, before] of journal.chains) {
    const after = desired.chains.get(name) ?? null;
    if (!before && after) added.push(...chainOps(family, after));
    else if (before && !after) {
      obsolete.push({ op: "flush-chain", family, name }, { op: "delete-chain", family, name });
    } else if (
      before && after && !rulesMatch(after, before.rules.map((r) => ruleTag(r, family)), family)
    ) {
      rewritten.push({ op: "flush-chain", family, name });
      for (const rule of after.rules) rewritten.push({ op: "add-rule", family, chain: name, rule });
    }
  }
  const deletes: Op[] = [], adds: Op[] = [];
  for (const [name, keys] of journal.elements) {
    if (desired.sets.get(name)?.dynamic) continue;
    const want = desired.elements.get(name);
    const del: [string, string][] = [], add: [string, string][] = [];
    for (const [k, before] of keys) {
      const after = want?.get(k) ?? null;
      if (before === after) continue;
      if (before !== null) del.push([k, before]);
      if (after !== null) add.push([k, after]);
    }
    deletes.push(...chunked(family, "delete-elements", name, del));
    adds.push(...chunked(family, "add-elements", name, add, desired.sets.get(name)?.commentValue));
  }
  return [...added, ...rewritten, ...deletes, ...adds, ...obsolete];
}

function setBody(set: SetSpec): string {
  return [...setDeclLines(set), `comment "${setTag(set)}"`].join("; ");
}

/** One operation as an nft command line. */
export function opText(op: Op): string {
  const t = `${op.family} ${TABLE_NAME}`;
  switch (op.op) {
    case "add-table":
      return `add table ${t}`;
    case "delete-table":
      return `delete table ${t}`;
    case "add-set":
      return `add ${op.set.kind} ${t} ${op.set.name} { ${setBody(op.set)}; }`;
    case "add-chain":
      return op.chain.base
        ? `add chain ${t} ${op.chain.name} { ${baseChainText(op.chain.base)} }`
        : `add chain ${t} ${op.chain.name}`;
    case "flush-chain":
      return `flush chain ${t} ${op.name}`;
    case "delete-chain":
      return `delete chain ${t} ${op.name}`;
    case "add-rule":
      return `add rule ${t} ${op.chain} ${ruleText(op.rule, op.family)}`;
    case "add-elements":
      return `add element ${t} ${op.set} { ${
        op.elements.map(([k, v]) => elementText(k, v, op.comments)).join(", ")
      } }`;
    case "delete-elements":
      return `delete element ${t} ${op.set} { ${op.elements.map(([k]) => k).join(", ")} }`;
  }
}

/** The transaction text for `nft -f -`: one command per line. */
export function formatOps(ops: readonly Op[]): string {
  return ops.length === 0 ? "" : ops.map(opText).join("\n") + "\n";
}

/** Counts for logs and metrics. */
export function summarizeOps(ops: readonly Op[]): {
  elementsAdded: number;
  elementsDeleted: number;
  chainsChanged: number;
  replaced: boolean;
} {
  let elementsAdded = 0, elementsDeleted = 0, chainsChanged = 0, replaced = false;
  for (const op of ops) {
    if (op.op === "add-elements") elementsAdded += op.elements.length;
    else if (op.op === "delete-elements") elementsDeleted += op.elements.length;
    else if (op.op === "add-chain" || op.op === "flush-chain") chainsChanged++;
    else if (op.op === "delete-table") replaced = true;
  }
  return { elementsAdded, elementsDeleted, chainsChanged, replaced };
}
