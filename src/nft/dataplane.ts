/**
 * The nftables dataplane: turns snapshots into kernel state, never leaving half of it.
 *
 * - In memory it keeps one {@link TableBuilder} per family: the desired table of the last snapshot
 *   it was given, built incrementally (only services whose entry changed are re-rendered), and a
 *   journal of what changed since the kernel last agreed. A steady-state apply sends exactly the
 *   journal as one `nft -f` transaction (both families in one atomic batch): O(changed).
 * - It does not read the kernel on every sync (a big table takes seconds to list as JSON). It reads
 *   it once at {@link NftDataplane.adopt} (restart: the first apply writes only the difference, so
 *   traffic never stops), after any failure (the next apply is a full reconcile against what really
 *   is in the kernel), and in {@link NftDataplane.checkDrift}.
 * - After a successful apply it deletes stale UDP conntrack and affinity entries (flow_cleanup.ts),
 *   best effort. Drift repair between applies: drift.ts.
 * @module
 */

import type { Logger } from "../observe/log.ts";
import { silentLogger } from "../observe/log.ts";
import type { MetricsRegistry } from "../observe/metrics.ts";
import {
  changedServiceKeys,
  EMPTY_SNAPSHOT,
  type ServiceEntry,
  type Snapshot,
} from "../model/snapshot.ts";
import type { ServiceKey } from "../model/types.ts";
import { type DriftCheck, repairDrift, repairScoped } from "./drift.ts";
import type { DriftScope } from "./monitor_events.ts";
import {
  formatOps,
  type ObservedTable,
  type Op,
  planDelete,
  planFull,
  planScoped,
  summarizeOps,
} from "./diff.ts";
import type { ConntrackCleaner, NftExecutor } from "./executor.ts";
import { StaleFlowCleaner } from "./flow_cleanup.ts";
import { elementFromJson, parseTable } from "./parse.ts";
import { effectiveRenderOptions, type RenderOptions, renderOptionsKey } from "./render_options.ts";
import { renderServiceFragment } from "./service_fragment.ts";
import { SETS, setSpecs } from "./skeleton.ts";
import { TableBuilder } from "./table_builder.ts";
import { FAMILIES, type Family, TABLE_NAME, type TableSpec, tableStats } from "./ruleset.ts";
import { METRICS } from "../observe/metrics_catalogue.ts";

/** What an {@link NftDataplane} needs. */
export interface NftDataplaneOptions {
  readonly executor: NftExecutor;
  /** Deletes stale UDP conntrack entries; omit to skip that cleanup. */
  readonly conntrack?: ConntrackCleaner;
  readonly renderOptions: RenderOptions;
  readonly log?: Logger;
  readonly metrics?: MetricsRegistry;
  /** Families to manage (default both). */
  readonly families?: readonly Family[];
  /** Milliseconds clock for durations (default performance.now). */
  readonly now?: () => number;
}

/** What one apply or drift check did. */
export interface SyncReport {
  readonly snapshotVersion: number;
  /** "incremental": journal only; "full": reconciled against a kernel read; "none": nothing to do. */
  readonly mode: "incremental" | "full" | "none";
  readonly elementsAdded: number;
  readonly elementsDeleted: number;
  readonly chainsChanged: number;
  /** The table was replaced (declarations differed) or created. */
  readonly replaced: boolean;
  readonly durationMs: number;
  /** Bytes of transaction text sent to nft. */
  readonly scriptBytes: number;
}

/** A sync that did not reach the kernel; the previous ruleset is still the one serving. */
export class NftSyncError extends Error {
  override readonly name = "NftSyncError";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** Changed services per transaction past which a sync is split (see {@link NftDataplane.apply}). */
export const APPLY_BATCH = 1000;

/** Totals of the transactions one apply or drift repair sent. */
class AppliedOps {
  elementsAdded = 0;
  elementsDeleted = 0;
  chainsChanged = 0;
  replaced = false;
  scriptBytes = 0;
  any = false;

  add(ops: readonly Op[], scriptBytes: number): void {
    const s = summarizeOps(ops);
    this.elementsAdded += s.elementsAdded;
    this.elementsDeleted += s.elementsDeleted;
    this.chainsChanged += s.chainsChanged;
    this.replaced ||= s.replaced || ops.some((o) => o.op === "add-set");
    this.scriptBytes += scriptBytes;
    this.any = true;
  }
}

/**
 * Applies snapshots to `ip svcgate` and `ip6 svcgate`. Calls are serialized internally.
 *
 * @example
 * ```ts
 * const dataplane = new NftDataplane({
 *   executor: new NftCommandExecutor(),
 *   conntrack: new ConntrackCommand(),
 *   renderOptions: { clusterCidrs, nodeName, nodePortAddresses: [] },
 * });
 * await dataplane.adopt();
 * await dataplane.apply(store.snapshot);
 * ```
 */
export class NftDataplane {
  readonly #executor: NftExecutor;
  readonly #flows: StaleFlowCleaner;
  /** The options of the configuration; a snapshot's node facts may change them (zone...). */
  readonly #baseOptions: RenderOptions;
  /** The options the builders render with now. */
  #options: RenderOptions;
  #optionsKey: string;
  readonly #log: Logger;
  readonly #metrics?: MetricsRegistry;
  readonly #families: readonly Family[];
  readonly #now: () => number;
  #builders = new Map<Family, TableBuilder>();
  /** The snapshot the builders hold: the next apply re-renders only the services changed since. */
  #absorbed: Snapshot | null = null;
  /** Kernel state read by adopt(), used once by the next apply. */
  #adopted: Map<Family, ObservedTable | null> | null = null;
  /** The next apply must reconcile against a kernel read (start, after a failure). */
  #full = true;
  /**
   * The kernel may hold services the absorbed snapshot does not know (it was partial, see
   * Snapshot.partial): they are kept until a complete snapshot reconciles in full.
   */
  #keptUnknown = false;
  #queue: Promise<unknown> = Promise.resolve();
  #lastReport: SyncReport | null = null;
  /** Per family, the services with Local-policy ports and no local endpoint (few, usually none). */
  #noLocal = new Map<Family, Map<ServiceKey, { internal: number; external: number }>>();

  constructor(options: NftDataplaneOptions) {
    this.#executor = options.executor;
    this.#baseOptions = options.renderOptions;
    this.#options = options.renderOptions;
    this.#optionsKey = renderOptionsKey(this.#options);
    this.#log = options.log ?? silentLogger;
    if (options.metrics) this.#metrics = options.metrics;
    this.#families = options.families ?? FAMILIES;
    this.#now = options.now ?? (() => performance.now());
    this.#flows = new StaleFlowCleaner({
      executor: options.executor,
      conntrack: options.conntrack,
      log: this.#log,
      metrics: this.#metrics,
    });
    this.#resetBuilders();
  }

  /** The last successful apply or drift repair. */
  get lastReport(): SyncReport | null {
    return this.#lastReport;
  }

  /** Warnings of the current desired ruleset (services rendered partially). */
  warnings(): string[] {
    const out = new Set<string>();
    for (const b of this.#builders.values()) for (const w of b.warnings()) out.add(w);
    return [...out].sort();
  }

  /**
   * Reads the existing svcgate tables once, so the first {@link apply} writes only the difference
   * (a restart drops no traffic). Optional: without it, the first apply reads them itself.
   */
  adopt(): Promise<void> {
    return this.#serialize(async () => {
      const adopted = new Map<Family, ObservedTable | null>();
      for (const f of this.#families) adopted.set(f, await this.#read(f));
      this.#adopted = adopted;
      this.#full = true;
      const found = [...adopted].filter(([, t]) => t !== null).map(([f]) => `${f} ${TABLE_NAME}`);
      this.#log.info("adopted nftables state", { tables: found.join(", ") || "none" });
    });
  }

  /**
   * The ClusterIPs the kernel routes now (the `cluster-ips` sets, which a service's VIPs join in
   * the transaction that writes its rules): one small read per family, not the whole table. A
   * restart answers DNS from its saved snapshot only for these (issue 15).
   */
  async liveVips(): Promise<ReadonlySet<string>> {
    const owners = await readLiveVips(this.#executor, this.#families);
    return new Set(Object.values(owners).flat());
  }

  /**
   * Makes the kernel hold the ruleset of this snapshot. On failure throws {@link NftSyncError}:
   * the next call reconciles in full against what the kernel holds.
   *
   * Atomicity: a reconcile against existing tables is one transaction, and so is every sync of
   * up to {@link APPLY_BATCH} changed services. More changed services (a cold start, a big
   * relist) go in transactions of that many services each, every service whole in one of them,
   * so the text and plans of a whole big table are never held at once (README.md). A cold start
   * of that size first creates the empty table, then fills it batch by batch.
   */
  apply(snapshot: Snapshot): Promise<SyncReport> {
    return this.#serialize(async () => {
      const t0 = this.#now();
      this.#followNode(snapshot);
      const partial = snapshot.partial === true;
      // The first complete snapshot after a partial one deletes what was kept for it.
      if (this.#keptUnknown && !partial) this.#full = true;
      const mode = this.#full ? "full" : "incremental";
      const done = new AppliedOps();
      let batched = false;
      try {
        if (this.#full) {
          const observed = new Map<Family, ObservedTable | null>();
          for (const f of this.#families) {
            observed.set(f, this.#adopted?.has(f) ? this.#adopted.get(f)! : await this.#read(f));
          }
          this.#adopted = null;
          const absent = [...observed.values()].every((o) => o === null);
          if (absent && snapshot.services.size > APPLY_BATCH) {
            // Nothing of ours in the kernel: create the empty table, then fill it in batches.
            this.#resetBuilders();
            this.#absorbed = null;
            await this.#transaction(done, (b) => planFull(null, b.table), false);
            this.#full = false;
          } else {
            this.#absorb(snapshot);
            await this.#transaction(
              done,
              (b) => planFull(observed.get(b.family)!, b.table, { keepUnknown: partial }),
              (f) => observed.get(f) !== null,
            );
          }
          this.#keptUnknown = partial;
        }
        if (!this.#full) {
          const prev = this.#absorbed ?? EMPTY_SNAPSHOT;
          const keys = changedServiceKeys(prev, snapshot);
          batched = keys.length > APPLY_BATCH;
          const existed = mode === "incremental";
          for (let i = 0; i === 0 || i < keys.length; i += APPLY_BATCH) {
            for (const key of keys.slice(i, i + APPLY_BATCH)) {
              this.#absorbService(key, snapshot.services.get(key));
            }
            await this.#transaction(done, (b) => planScoped(b.journal(), b.table), existed);
          }
          this.#absorbed = snapshot;
        }
      } catch (e) {
        // A batch failed after others went in: the builders hold services the kernel may lack.
        if (batched) {
          this.#resetBuilders();
          this.#absorbed = null;
        }
        this.#fail(e, "apply");
        throw new NftSyncError(
          `Cannot apply snapshot version ${snapshot.version} to nftables (${mode} sync; ${
            batched
              ? "the services of earlier batches are in"
              : "the previous ruleset keeps serving"
          }): ${(e as Error).message}`,
          { cause: e },
        );
      }
      this.#full = false;
      const report = this.#report(snapshot.version, done.any ? mode : "none", done, t0);
      if (done.any) this.#log.info("nftables synced", { ...report });
      return report;
    });
  }

  /**
   * One transaction: the ops `plan` gives per family (both families in one batch), applied,
   * then the journals cleared and the conntrack cleanup after it run. `existed`: whether each
   * family's table was in the kernel before (stale UDP flows can only be pinned then).
   */
  async #transaction(
    done: AppliedOps,
    plan: (builder: TableBuilder) => Op[],
    existed: boolean | ((f: Family) => boolean),
  ): Promise<void> {
    const ops: Op[] = [];
    for (const b of this.#builders.values()) ops.push(...plan(b));
    const script = formatOps(ops);
    if (script) await this.#executor.apply(script);
    for (const b of this.#builders.values()) b.clearJournal();
    if (ops.length === 0) return;
    done.add(ops, script.length);
    const families = new Map(
      this.#families.map((f) => [f, typeof existed === "boolean" ? existed : existed(f)]),
    );
    await this.#flows.clean(ops, this.#tables(), families);
  }

  /**
   * Reads the kernel and repairs any difference from the last applied ruleset (an element or a
   * whole table deleted by someone). Returns true when something was repaired. With
   * `{ elements: false }` it reads only the outline unless that differs (see {@link repairDrift});
   * with `scopes` (what the kernel monitor saw another process change) it reads and repairs only
   * that (see {@link repairScoped}).
   */
  checkDrift(
    options: {
      readonly elements?: boolean;
      readonly scopes?: ReadonlyMap<Family, DriftScope>;
    } = {},
  ): Promise<boolean> {
    return this.#serialize(async () => {
      if (!this.#absorbed) return false;
      const t0 = this.#now();
      const common = {
        executor: this.#executor,
        desired: this.#tables(),
        read: (f: Family) => this.#read(f),
        keepUnknown: this.#keptUnknown,
        log: this.#log,
        metrics: this.#metrics,
        now: this.#now,
      };
      let check: DriftCheck;
      try {
        // After a failure the kernel may lack more than the monitor saw: repair in full.
        check = options.scopes && !this.#full
          ? await repairScoped({ ...common, scopes: options.scopes })
          : await repairDrift({ ...common, elements: options.elements });
      } catch (e) {
        this.#fail(e, "drift");
        throw new NftSyncError(`Cannot check or repair nftables drift: ${(e as Error).message}`, {
          cause: e,
        });
      }
      if (check.read === "outline") return false;
      for (const b of this.#builders.values()) b.clearJournal();
      this.#full = false;
      if (check.ops.length === 0) return false;
      const done = new AppliedOps();
      done.add(check.ops, check.scriptBytes);
      const report = this.#report(this.#absorbed.version, "full", done, t0);
      this.#log.warn("repaired nftables drift", { ...report });
      return true;
    });
  }

  /** Deletes svcgate's tables (`svcgate cleanup`); the next apply starts from nothing. */
  cleanup(): Promise<void> {
    return this.#serialize(async () => {
      const ops = this.#families.flatMap((f) => planDelete(f));
      try {
        await this.#executor.apply(formatOps(ops));
      } catch (e) {
        this.#fail(e, "cleanup");
        throw new NftSyncError(
          `Cannot delete the svcgate nftables tables: ${(e as Error).message}`,
          {
            cause: e,
          },
        );
      }
      this.#resetBuilders();
      this.#absorbed = null;
      this.#adopted = null;
      this.#full = true;
      this.#keptUnknown = false;
      this.#log.info("deleted nftables tables", {
        tables: this.#families.map((f) => `${f} ${TABLE_NAME}`).join(", "),
      });
    });
  }

  #serialize<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn, fn);
    this.#queue = run.catch(() => {});
    return run;
  }

  /** The desired tables, by family. */
  #tables(): Map<Family, TableSpec> {
    return new Map([...this.#builders].map(([f, b]) => [f, b.table]));
  }

  #resetBuilders(): void {
    this.#builders = new Map(this.#families.map((f) => [f, new TableBuilder(f, this.#options)]));
    this.#noLocal = new Map();
  }

  async #read(family: Family): Promise<ObservedTable | null> {
    const json = await this.#executor.listTable(family);
    if (json === null) return null;
    const observed = parseTable(json, this.#builders.get(family)!.table);
    if (observed.problems.length > 0) {
      this.#log.warn("nftables table differs in shape; it will be replaced atomically", {
        family,
        problem: observed.problems[0],
      });
    }
    return observed;
  }

  /**
   * Takes the render options a snapshot's node facts imply (zone and pod CIDRs from the Node
   * object, the service ranges of the ServiceCIDR objects). When
   * they differ from those the builders hold, every service renders again and the next apply
   * reconciles in full against the kernel: rare (a Node relabelled), and a full read is the one
   * way to be sure of what the kernel holds while every fragment changes.
   */
  #followNode(snapshot: Snapshot): void {
    const next = effectiveRenderOptions(this.#baseOptions, snapshot.node, snapshot.serviceCidrs);
    const key = renderOptionsKey(next);
    if (key === this.#optionsKey) return;
    this.#log.info("node facts changed the render options; rendering every service again", {
      zone: next.zone ?? "(none)",
      podCidrs: next.clusterCidrs.map((c) => c.text).join(","),
      serviceCidrs: (next.serviceCidrs ?? []).map((c) => c.text).join(","),
    });
    if (next.localDetect?.mode === "NodeCIDR" && next.clusterCidrs.length === 0) {
      this.#log.warn(
        "--detect-local-mode NodeCIDR: this node's pod CIDRs are not known (no Node object, or no " +
          "spec.podCIDRs); off-cluster traffic to ClusterIPs is not masqueraded meanwhile",
      );
    }
    this.#options = next;
    this.#optionsKey = key;
    this.#resetBuilders();
    this.#absorbed = null;
    this.#full = true;
  }

  /** Brings the builders to the snapshot, touching only services whose entry changed. */
  #absorb(snapshot: Snapshot): void {
    const prev = this.#absorbed ?? EMPTY_SNAPSHOT;
    if (prev === snapshot) return;
    for (const key of changedServiceKeys(prev, snapshot)) {
      this.#absorbService(key, snapshot.services.get(key));
    }
    this.#absorbed = snapshot;
  }

  /**
   * Brings the builders to one service's entry in the next snapshot (undefined: absent). Only the
   * new entry is rendered: the builders remember what the service contributed before.
   */
  #absorbService(key: ServiceKey, entry: ServiceEntry | undefined): void {
    for (const f of this.#families) {
      const fragment = entry ? renderServiceFragment(entry, f, this.#options) : null;
      this.#builders.get(f)!.setService(key, fragment);
      let noLocal = this.#noLocal.get(f);
      if (!noLocal) this.#noLocal.set(f, noLocal = new Map());
      if (fragment?.noLocalEndpoints) noLocal.set(key, fragment.noLocalEndpoints);
      else noLocal.delete(key);
    }
  }

  #fail(e: unknown, stage: string): void {
    this.#full = true;
    this.#adopted = null;
    this.#metrics?.of(METRICS.nftSyncFailures).inc({
      stage,
    });
    if (stage === "apply") {
      // Both families go in one transaction: a failure is each family's, as kube-proxy counts.
      for (const f of this.#families) {
        this.#metrics?.of(METRICS.kubeProxyNftSyncFailures).inc({ ip_family: ipFamilyLabel(f) });
      }
    }
    this.#log.error("nftables sync failed; previous ruleset keeps serving", {
      stage,
      error: e as Error,
    });
  }

  #report(version: number, mode: SyncReport["mode"], done: AppliedOps, t0: number): SyncReport {
    const durationMs = this.#now() - t0;
    const report: SyncReport = {
      snapshotVersion: version,
      mode,
      elementsAdded: done.elementsAdded,
      elementsDeleted: done.elementsDeleted,
      chainsChanged: done.chainsChanged,
      replaced: done.replaced,
      durationMs: Math.round(durationMs * 100) / 100,
      scriptBytes: done.scriptBytes,
    };
    this.#lastReport = report;
    const m = this.#metrics;
    if (m) {
      m.of(METRICS.nftSyncDuration)
        .observe(durationMs / 1000, { mode });
      m.of(METRICS.nftSyncs).inc({ mode });
      for (const [f, b] of this.#builders) {
        const st = tableStats(b.table);
        m.of(METRICS.nftElements).set(
          st.elements,
          {
            family: f,
          },
        );
        m.of(METRICS.nftRules).set(st.rules, { family: f });
        m.of(METRICS.nftChains).set(st.chains, { family: f });
        let internal = 0, external = 0;
        for (const n of this.#noLocal.get(f)?.values() ?? []) {
          internal += n.internal;
          external += n.external;
        }
        const ip_family = ipFamilyLabel(f);
        m.of(METRICS.kubeProxyNoLocalEndpoints).set(internal, {
          ip_family,
          traffic_policy: "internal",
        });
        m.of(METRICS.kubeProxyNoLocalEndpoints).set(external, {
          ip_family,
          traffic_policy: "external",
        });
      }
    }
    return report;
  }
}

/** kube-proxy's `ip_family` label of a table family. */
function ipFamilyLabel(family: Family): "IPv4" | "IPv6" {
  return family === "ip" ? "IPv4" : "IPv6";
}

/**
 * The ClusterIPs the kernel serves right now, by owning service key (`{"default/web":
 * ["198.19.0.10", "2001:db8:ffff::10"]}`), read from the comments of the `cluster-ips` sets. Cheap
 * (one small set per family); for a restart to keep every live VIP where it is. Tables or elements
 * written without owner comments contribute nothing.
 *
 * @example
 * ```ts
 * const live = await readLiveVips(new NftCommandExecutor());
 * ```
 */
export async function readLiveVips(
  executor: NftExecutor,
  families: readonly Family[] = FAMILIES,
): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  for (const family of families) {
    const json = await executor.listSet(family, "set", SETS.clusterIps);
    if (json === null) continue;
    const spec = setSpecs(family, { clusterCidrs: [], nodeName: "", nodePortAddresses: [] })
      .find((s) => s.name === SETS.clusterIps)!;
    let doc: unknown;
    try {
      doc = JSON.parse(json);
    } catch {
      continue;
    }
    const items = (doc as { nftables?: unknown[] }).nftables ?? [];
    for (const item of items) {
      const set = (item as { set?: { name?: string; elem?: unknown[] } }).set;
      if (!set || set.name !== SETS.clusterIps) continue;
      for (const e of set.elem ?? []) {
        try {
          const [vip, owner] = elementFromJson(e, spec);
          if (owner) (out[owner] ??= []).push(vip);
        } catch { /* not an address: skip */ }
      }
    }
  }
  const sorted: Record<string, string[]> = {};
  for (const key of Object.keys(out).sort()) sorted[key] = out[key].sort();
  return sorted;
}
