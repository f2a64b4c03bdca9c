/**
 * Standalone mode loaded once, for the commands that run beside (or instead of) the daemon:
 * `svcgate render` and `svcgate ipam pin`. The manifests are read, and VIPs allocated the way
 * `svcgate run` would, from --state-dir and the lock file, reading both and writing neither.
 * @module
 */

import type { Cidr } from "../../model/ip.ts";
import type { Service } from "../../model/types.ts";
import type { Logger } from "../../observe/log.ts";
import { allocateVips, type AllocationResult } from "../../ipam/allocator.ts";
import type { VipLock } from "../../ipam/lock.ts";
import type { IpamState } from "../../ipam/state.ts";
import { loadIpamState } from "../../ipam/state_file.ts";
import { formatLoadErrors, type ManifestLoad } from "../manifests/load.ts";
import { readManifests } from "../manifests/read.ts";
import type { ManifestLimits } from "../manifests/parse_file.ts";
import { readManifestLock } from "./manifest_lock.ts";

/** What {@link loadStandaloneOnce} needs: the standalone part of the configuration. */
export interface LoadOnceOptions {
  /** A manifest file, or a folder read recursively. */
  readonly manifests: string;
  readonly serviceCidrs: readonly Cidr[];
  /** Where `run` keeps ipam.json; read only. */
  readonly stateDir: string;
  /** Manifest warnings are logged here. */
  readonly log: Logger;
  /** Time of the allocation in milliseconds since the epoch; now by default. */
  readonly now?: number;
  /** Bounds on each manifest file and object; the defaults of parse_file.ts when absent. */
  readonly limits?: ManifestLimits;
}

/** What {@link loadStandaloneOnce} found. */
export interface StandaloneLoad {
  /** The manifests as loaded, every object with its origin. */
  readonly load: ManifestLoad;
  /** The services with their VIPs, as `run` would serve them now. */
  readonly services: readonly Service[];
  /** The allocation behind `services`; its state is informational (never saved from here). */
  readonly allocation: AllocationResult;
  /** The IPAM state allocated from (--state-dir's, as read). */
  readonly state: IpamState;
  /** The VIP lock file as it is; null when there is none or it cannot be used. */
  readonly lock: VipLock | null;
  /** Where the VIP lock file of these manifests lives. */
  readonly lockPath: string;
  /** Every error line: manifest errors, then a bad lock file, then VIP allocation errors. */
  readonly errors: readonly string[];
}

/**
 * Loads the manifests and allocates VIPs the way `run` would, without writing anything. Rejects
 * only when the manifest path cannot be read at all.
 *
 * @example
 * ```ts
 * const once = await loadStandaloneOnce({ manifests, serviceCidrs, stateDir, log });
 * store.replaceAll({ ...once.load, services: once.services });
 * for (const e of once.errors) console.error(e);
 * ```
 */
export async function loadStandaloneOnce(options: LoadOnceOptions): Promise<StandaloneLoad> {
  const load = await readManifests(options.manifests, options.limits);
  const lines = formatLoadErrors(load);
  const errors = lines.filter((e) => !e.startsWith("warning: "));
  for (const w of lines.filter((e) => e.startsWith("warning: "))) options.log.warn(w);
  const { state } = await loadIpamState(options.stateDir, {}, { readOnly: true });
  const { path: lockPath, lock } = await readManifestLock(options.manifests);
  if (typeof lock === "string") errors.push(lock);
  const previous = typeof lock === "string" ? null : lock;
  const allocation = allocateVips(state, load.services, {
    cidrs: options.serviceCidrs,
    now: options.now ?? Date.now(),
    ...(previous ? { pins: previous.services } : {}),
  });
  errors.push(...allocation.errors.map((e) => e.message));
  return {
    load,
    services: allocation.services,
    allocation,
    state,
    lock: previous,
    lockPath,
    errors,
  };
}
