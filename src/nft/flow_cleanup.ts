/**
 * Stale-flow cleanup after a successful transaction: UDP conntrack entries pinned to endpoints
 * that are gone (or created before a UDP service routed), and session-affinity entries pointing
 * at removed endpoints. Best effort: failures are logged and counted, never failing the sync.
 *
 * {@link staleFlows} decides what is stale from the transaction (pure); {@link StaleFlowCleaner}
 * deletes it through conntrack and nft.
 * @module
 */

import type { Logger } from "../observe/log.ts";
import type { MetricsRegistry } from "../observe/metrics.ts";
import type { Op } from "./diff.ts";
import type { ConntrackCleaner, NftExecutor, UdpFlowFilter } from "./executor.ts";
import { parseDynamicMap } from "./parse.ts";
import { type Family, TABLE_NAME, type TableSpec } from "./ruleset.ts";
import { affinityMap, BACKEND_MAPS, SETS } from "./skeleton.ts";
import { METRICS } from "../observe/metrics_catalogue.ts";

/** conntrack processes run at once. */
const CONNTRACK_CONCURRENCY = 4;

/** An affinity entry kind that must go: its endpoint left the service port. */
export interface StaleAffinity {
  readonly family: Family;
  readonly map: string;
  /** Service address (undefined for NodePorts: any node address). */
  readonly vip: string | undefined;
  readonly port: number;
  /** Backend value `address . port`. */
  readonly value: string;
  readonly endpoint: string;
}

/** What a transaction made stale. */
export interface StaleFlows {
  /** UDP conntrack entries to delete, one filter each, without repeats. */
  readonly flows: readonly UdpFlowFilter[];
  readonly affinity: readonly StaleAffinity[];
}

/**
 * What the ops of an applied transaction made stale, given the tables they led to. `existed`:
 * whether each family's table was in the kernel before (flows can only be pinned then).
 *
 * @example
 * ```ts
 * const { flows, affinity } = staleFlows(ops, tables, new Map([["ip", true], ["ip6", true]]));
 * ```
 */
export function staleFlows(
  ops: readonly Op[],
  tables: ReadonlyMap<Family, TableSpec>,
  existed: ReadonlyMap<Family, boolean>,
): StaleFlows {
  const flows = new Map<string, UdpFlowFilter>();
  const affinity: StaleAffinity[] = [];
  const addFlow = (f: UdpFlowFilter) => flows.set(JSON.stringify(f), f);
  const deletedDispatch = new Set<string>();
  for (const op of ops) {
    if (op.op !== "delete-elements") continue;
    if (op.set === SETS.vipDispatch || op.set === SETS.nodePortDispatch) {
      for (const [k] of op.elements) deletedDispatch.add(`${op.family}|${op.set}|${k}`);
    }
    const info = BACKEND_MAPS.get(op.set);
    if (!info) continue;
    const table = tables.get(op.family)!;
    const want = table.elements.get(op.set)!;
    for (const [key, value] of op.elements) {
      // vip maps: `address . port . slot`; NodePort maps: `port . slot`.
      const parts = key.split(" . ");
      const prefix = parts.slice(0, -1).join(" . ");
      const vip = info.kind === "vip" ? parts[0] : undefined;
      const port = Number(info.kind === "vip" ? parts[1] : parts[0]);
      const endpoint = value.split(" . ")[0];
      if (stillServes(want, prefix, endpoint)) continue;
      if (info.proto === "udp") {
        addFlow({
          family: op.family,
          ...(vip ? { origDst: vip } : {}),
          origPortDst: port,
          replySrc: endpoint,
        });
      }
      const timeouts = vip
        ? table.elements.get(SETS.affinityVipTimeouts)?.has(`${vip} . ${info.proto} . ${port}`)
        : table.elements.get(SETS.affinityNodePortTimeouts)?.has(`${info.proto} . ${port}`);
      if (timeouts) {
        affinity.push({
          family: op.family,
          map: affinityMap(op.family, info.proto),
          vip,
          port,
          value,
          endpoint,
        });
      }
    }
  }
  // A UDP service that just appeared (or just got endpoints): flows created before it routed.
  for (const op of ops) {
    if (op.op !== "add-elements" || !existed.get(op.family)) continue;
    if (op.set !== SETS.vipDispatch && op.set !== SETS.nodePortDispatch) continue;
    const isVip = op.set === SETS.vipDispatch;
    for (const [key] of op.elements) {
      if (deletedDispatch.has(`${op.family}|${op.set}|${key}`)) continue;
      const parts = key.split(" . ");
      const [proto, port] = isVip ? [parts[1], Number(parts[2])] : [parts[0], Number(parts[1])];
      if (proto !== "udp") continue;
      addFlow({ family: op.family, ...(isVip ? { origDst: parts[0] } : {}), origPortDst: port });
    }
  }
  return { flows: [...flows.values()], affinity };
}

/** True when some slot of `prefix` in a backend map still points at the endpoint address. */
function stillServes(map: ReadonlyMap<string, string>, prefix: string, address: string): boolean {
  for (let i = 0;; i++) {
    const v = map.get(`${prefix} . ${i}`);
    if (v === undefined) return false;
    if (v.startsWith(`${address} . `)) return true;
  }
}

/** What a {@link StaleFlowCleaner} needs. */
export interface StaleFlowCleanerOptions {
  /** Lists and updates the dynamic affinity maps. */
  readonly executor: NftExecutor;
  /** Deletes UDP conntrack entries; omit to skip that part. */
  readonly conntrack?: ConntrackCleaner;
  readonly log: Logger;
  readonly metrics?: MetricsRegistry;
}

/**
 * Deletes what {@link staleFlows} found. Never throws.
 *
 * @example
 * ```ts
 * const cleaner = new StaleFlowCleaner({ executor, conntrack, log });
 * await cleaner.clean(ops, tables, existed);
 * ```
 */
export class StaleFlowCleaner {
  readonly #executor: NftExecutor;
  readonly #conntrack?: ConntrackCleaner;
  readonly #log: Logger;
  readonly #metrics?: MetricsRegistry;

  constructor(options: StaleFlowCleanerOptions) {
    this.#executor = options.executor;
    if (options.conntrack) this.#conntrack = options.conntrack;
    this.#log = options.log;
    if (options.metrics) this.#metrics = options.metrics;
  }

  /** Cleans up after an applied transaction (arguments as {@link staleFlows}). */
  async clean(
    ops: readonly Op[],
    tables: ReadonlyMap<Family, TableSpec>,
    existed: ReadonlyMap<Family, boolean>,
  ): Promise<void> {
    const { flows, affinity } = staleFlows(ops, tables, existed);
    await Promise.all([this.#clearFlows(flows), this.#clearAffinity(affinity, tables)]);
  }

  async #clearFlows(filters: readonly UdpFlowFilter[]): Promise<void> {
    if (!this.#conntrack || filters.length === 0) return;
    let deleted = 0, failed = 0;
    for (let i = 0; i < filters.length; i += CONNTRACK_CONCURRENCY) {
      const batch = filters.slice(i, i + CONNTRACK_CONCURRENCY);
      const results = await Promise.allSettled(
        batch.map((f) => this.#conntrack!.deleteUdpFlows(f)),
      );
      for (const r of results) {
        if (r.status === "fulfilled") deleted += r.value;
        else {
          failed++;
          this.#log.warn("cannot delete stale UDP conntrack entries", { error: r.reason as Error });
        }
      }
    }
    this.#metrics?.of(METRICS.nftConntrackDeleted)
      .inc(undefined, deleted);
    if (failed > 0) {
      this.#metrics?.of(METRICS.nftConntrackFailures).inc(undefined, failed);
    }
    this.#log.debug("UDP conntrack cleanup", { filters: filters.length, deleted, failed });
  }

  async #clearAffinity(
    stale: readonly StaleAffinity[],
    tables: ReadonlyMap<Family, TableSpec>,
  ): Promise<void> {
    const byMap = new Map<string, StaleAffinity[]>();
    for (const s of stale) {
      const id = `${s.family} ${s.map}`;
      byMap.set(id, [...(byMap.get(id) ?? []), s]);
    }
    for (const group of byMap.values()) {
      const { family, map } = group[0];
      const spec = tables.get(family)!.sets.get(map)!;
      // IPv4 keys are `client . service address . port`: precise. IPv6 keys are hashes, so every
      // entry pointing at a removed endpoint address goes (its clients simply pick again).
      const precise = new Set(group.map((s) => `${s.vip ?? "*"} . ${s.port} -> ${s.value}`));
      const addresses = new Set(group.map((s) => s.endpoint));
      for (let attempt = 0; attempt < 2; attempt++) {
        try {
          const json = await this.#executor.listSet(family, "map", map);
          if (json === null) break;
          const victims = parseDynamicMap(json, spec).filter(([k, v]) => {
            if (family === "ip6") return addresses.has(v);
            const parts = k.split(" . ");
            return precise.has(`${parts[1]} . ${parts[2]} -> ${v}`) ||
              precise.has(`* . ${parts[2]} -> ${v}`);
          });
          if (victims.length === 0) break;
          // `add` first makes the delete valid even if the entry expired meanwhile.
          const t = `${family} ${TABLE_NAME} ${map}`;
          const lines = victims.flatMap(([k, v]) => [
            `add element ${t} { ${k} : ${v} }`,
            `delete element ${t} { ${k} }`,
          ]);
          await this.#executor.apply(lines.join("\n") + "\n");
          this.#log.debug("deleted affinity entries of removed endpoints", {
            family,
            map,
            count: victims.length,
          });
          break;
        } catch (e) {
          if (attempt === 1) {
            this.#metrics?.of(METRICS.nftAffinityCleanupFailures).inc();
            this.#log.warn("cannot delete affinity entries of removed endpoints", {
              family,
              map,
              error: e as Error,
            });
          }
        }
      }
    }
  }
}
