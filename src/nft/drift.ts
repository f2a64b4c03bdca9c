/**
 * Drift: the kernel no longer holds what svcgate last applied (someone deleted an element, a
 * chain or a whole table). {@link repairDrift} reads the kernel back and writes the difference
 * in one transaction; {@link NftDataplane.checkDrift} runs it between applies.
 * @module
 */

import type { Logger } from "../observe/log.ts";
import type { MetricsRegistry } from "../observe/metrics.ts";
import { formatOps, type ObservedTable, type Op, planFull, structuralMismatch } from "./diff.ts";
import type { NftExecutor } from "./executor.ts";
import { parseTable } from "./parse.ts";
import type { Family, TableSpec } from "./ruleset.ts";
import type { DriftScope } from "./monitor_events.ts";
import { METRICS } from "../observe/metrics_catalogue.ts";

/** What {@link repairDrift} needs. */
export interface DriftCheckOptions {
  readonly executor: NftExecutor;
  /** The tables that should be in the kernel, by family. */
  readonly desired: ReadonlyMap<Family, TableSpec>;
  /** Reads one family's table back from the kernel (null: absent). */
  readonly read: (family: Family) => Promise<ObservedTable | null>;
  /** Keep services the desired tables do not know (the snapshot was partial). */
  readonly keepUnknown: boolean;
  /** false: compare the outline first and read every element only when it differs. */
  readonly elements?: boolean;
  readonly log: Logger;
  readonly metrics?: MetricsRegistry;
  /** Milliseconds clock for the duration metric. */
  readonly now: () => number;
}

/** What one drift check read and repaired. */
export interface DriftCheck {
  /** "outline": only the outline was read, and it agreed; "full": every element was read. */
  readonly read: "outline" | "full";
  /** The repair written to the kernel (empty: the kernel agreed). */
  readonly ops: readonly Op[];
  /** Bytes of transaction text sent to nft. */
  readonly scriptBytes: number;
}

/**
 * Reads the kernel and repairs any difference from the desired tables in one transaction.
 * Throws when reading or writing failed (the caller then reconciles in full on its next apply).
 *
 * A full check reads every element back (seconds of nft CPU at 10,000 services), so run it
 * rarely. With `elements: false` it first looks only at the table's
 * outline (set declarations and chains, milliseconds) and does the full check only when that
 * differs: it catches a deleted table, set or chain cheaply, but not a deleted element or rule.
 *
 * @example
 * ```ts
 * const check = await repairDrift({ executor, desired, read, keepUnknown: false, log, now });
 * if (check.ops.length > 0) console.log("repaired");
 * ```
 */
export async function repairDrift(options: DriftCheckOptions): Promise<DriftCheck> {
  const { executor, desired, log, metrics } = options;
  const t0 = options.now();
  if (options.elements === false && await outlinesAgree(executor, desired, log)) {
    return { read: "outline", ops: [], scriptBytes: 0 };
  }
  const ops: Op[] = [];
  for (const [f, table] of desired) {
    ops.push(...planFull(await options.read(f), table, { keepUnknown: options.keepUnknown }));
  }
  const script = formatOps(ops);
  if (script) await executor.apply(script);
  metrics?.of(METRICS.nftDriftCheckDuration)
    .observe((options.now() - t0) / 1000);
  if (ops.length > 0) {
    metrics?.of(METRICS.nftDriftRepairs).inc();
  }
  return { read: "full", ops, scriptBytes: script.length };
}

/** True when every family's outline is the desired one; false when any differs or cannot be read. */
async function outlinesAgree(
  executor: NftExecutor,
  desired: ReadonlyMap<Family, TableSpec>,
  log: Logger,
): Promise<boolean> {
  let same = true;
  try {
    for (const [f, table] of desired) {
      const outline = parseTable(await executor.listOutline(f), table);
      if (!sameOutline(outline, table)) same = false;
    }
  } catch (e) {
    log.warn("cannot read the nftables outline; checking in full", { error: e as Error });
    same = false;
  }
  return same;
}

/** True when the kernel's sets and chains (names, declarations, hooks) are the desired ones. */
export function sameOutline(outline: ObservedTable, table: TableSpec): boolean {
  if (structuralMismatch(outline, table) !== null) return false;
  if (outline.chains.size !== table.chains.size) return false;
  for (const name of table.chains.keys()) if (!outline.chains.has(name)) return false;
  return true;
}

/** What {@link repairScoped} needs besides {@link DriftCheckOptions}. */
export interface ScopedRepairOptions extends Omit<DriftCheckOptions, "elements"> {
  /** What another process changed, per family (from the kernel monitor). */
  readonly scopes: ReadonlyMap<Family, DriftScope>;
}

/**
 * Repairs what another process changed, reading only what it touched: each changed set is read
 * back and made equal; each changed chain is rewritten (its rules are ours alone). A structural
 * change (a table, set or chain created or deleted) reads and repairs every family in full, as
 * {@link repairDrift}. Changes to dynamic sets (affinity entries) are the packet path's own.
 *
 * @example
 * ```ts
 * await repairScoped({ executor, desired, read, keepUnknown: false, scopes, log, now });
 * ```
 */
export async function repairScoped(options: ScopedRepairOptions): Promise<DriftCheck> {
  const { executor, desired, scopes, metrics } = options;
  const full = () => repairDrift({ ...options, elements: true });
  const t0 = options.now();
  const ops: Op[] = [];
  for (const [family, scope] of scopes) {
    const table = desired.get(family);
    if (!table) continue;
    if (scope.structural) return full();
    for (const name of scope.sets) {
      const spec = table.sets.get(name);
      if (!spec) return full();
      if (spec.dynamic) continue;
      const json = await executor.listSet(family, spec.kind, name);
      if (json === null) return full();
      const one: TableSpec = {
        family,
        sets: new Map([[name, spec]]),
        chains: new Map(),
        elements: new Map([[name, table.elements.get(name) ?? new Map()]]),
      };
      ops.push(...planFull(parseTable(json, one), one, { keepUnknown: options.keepUnknown }));
    }
    for (const name of scope.chains) {
      const chain = table.chains.get(name);
      if (!chain) return full();
      ops.push({ op: "flush-chain", family, name });
      for (const rule of chain.rules) ops.push({ op: "add-rule", family, chain: name, rule });
    }
  }
  const script = formatOps(ops);
  if (script) await executor.apply(script);
  metrics?.of(METRICS.nftDriftCheckDuration)
    .observe((options.now() - t0) / 1000);
  if (ops.length > 0) {
    metrics?.of(METRICS.nftDriftRepairs).inc();
  }
  return { read: "full", ops, scriptBytes: script.length };
}
