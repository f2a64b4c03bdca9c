/**
 * The VIP lock file: the VIPs one node allocated, written beside the manifests by
 * `svcgate ipam pin`, so every node given the same files uses the same VIPs. Pure.
 *
 * Format (`svcgate-vips.lock`, JSON; the extension keeps manifest loaders that read `*.json`
 * from taking it for a manifest):
 * ```json
 * {
 *   "version": 1,
 *   "services": {
 *     "default/web": ["198.19.93.17", "2001:db8:1::5e2a"]
 *   }
 * }
 * ```
 * The allocator honours each entry like an explicit clusterIP, before any VIP a node allocated on
 * its own: a node whose local state disagrees moves that service to the pinned VIP. An explicit
 * `spec.clusterIP` in a manifest wins over the lock. Entries of services that no longer exist are
 * ignored.
 * @module
 */

import { canonicalIp, type IpText } from "../model/ip.ts";
import type { Cidr } from "../model/ip.ts";
import type { Service } from "../model/types.ts";
import { serviceKey } from "../model/types.ts";
import { allocateVips, type AllocationResult, type VipPins } from "./allocator.ts";
import type { IpamState } from "./state.ts";
import { isServiceKey } from "./state.ts";

/** The lock file's name, beside the manifests. */
export const VIP_LOCK_FILE = "svcgate-vips.lock";

/** Content of the lock file, version 1. */
export interface VipLock {
  readonly version: 1;
  /** Service key -> its clusterIPs, in the service's family order. */
  readonly services: VipPins;
}

/**
 * Where the lock file lives: inside the manifests directory, or beside a single manifest file.
 *
 * @example
 * ```ts
 * vipLockPath("/etc/svcgate/manifests", true); // "/etc/svcgate/manifests/svcgate-vips.lock"
 * vipLockPath("/etc/svcgate/web.yaml", false); // "/etc/svcgate/svcgate-vips.lock"
 * ```
 */
export function vipLockPath(manifestsPath: string, isDirectory: boolean): string {
  const trimmed = manifestsPath.length > 1 ? manifestsPath.replace(/\/+$/, "") : manifestsPath;
  if (isDirectory) return `${trimmed === "/" ? "" : trimmed}/${VIP_LOCK_FILE}`;
  const slash = trimmed.lastIndexOf("/");
  if (slash < 0) return VIP_LOCK_FILE;
  return `${trimmed.slice(0, slash) || ""}/${VIP_LOCK_FILE}`;
}

/**
 * Parses a lock file's text. Returns the lock or a message saying what is wrong, naming the file.
 *
 * @example
 * ```ts
 * const lock = parseVipLock('{"version":1,"services":{}}', "/m/svcgate-vips.lock");
 * ```
 */
export function parseVipLock(text: string, path: string): VipLock | string {
  const where = `Cannot read VIP lock file ${JSON.stringify(path)}`;
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    return `${where}: not valid JSON (${e instanceof Error ? e.message : String(e)})`;
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    return `${where}: the top level is not a JSON object`;
  }
  const obj = raw as Record<string, unknown>;
  if (obj.version !== 1) {
    return `${where}: version ${JSON.stringify(obj.version ?? null)} is not supported (expected 1)`;
  }
  const services = obj.services;
  if (typeof services !== "object" || services === null || Array.isArray(services)) {
    return `${where}: "services" is not an object`;
  }
  const out: Record<string, IpText[]> = {};
  const owner = new Map<string, string>();
  for (const [key, value] of Object.entries(services as Record<string, unknown>)) {
    const at = `services[${JSON.stringify(key)}]`;
    if (!isServiceKey(key)) {
      return `${where}: ${at}: ${JSON.stringify(key)} is not a namespace/name key`;
    }
    if (!Array.isArray(value)) return `${where}: ${at} is not an array of IP addresses`;
    const ips: IpText[] = [];
    for (const [i, ip] of value.entries()) {
      const canonical = typeof ip === "string" ? canonicalIp(ip) : null;
      if (canonical === null) {
        return `${where}: ${at}[${i}]: ${JSON.stringify(ip)} is not an IP address`;
      }
      const other = owner.get(canonical);
      if (other !== undefined) {
        return `${where}: ${at}[${i}]: ${JSON.stringify(ip)} is also pinned to ${other}`;
      }
      owner.set(canonical, key);
      ips.push(canonical);
    }
    out[key] = ips;
  }
  return { version: 1, services: out };
}

/**
 * The lock file's stable text: keys sorted, one service per line.
 *
 * @example
 * ```ts
 * renderVipLock({ version: 1, services: { "default/web": ["198.19.0.20"] } });
 * ```
 */
export function renderVipLock(lock: VipLock): string {
  const keys = Object.keys(lock.services).sort();
  if (keys.length === 0) return `{\n  "version": 1,\n  "services": {}\n}\n`;
  const lines = keys.map((k) => `    ${JSON.stringify(k)}: ${JSON.stringify(lock.services[k])}`);
  return `{\n  "version": 1,\n  "services": {\n${lines.join(",\n")}\n  }\n}\n`;
}

/** Inputs of {@link pinVips}. */
export interface PinOptions {
  /** Every service from the manifests, as the manifest source parsed them. */
  readonly services: readonly Service[];
  /** This node's IPAM state. */
  readonly state: IpamState;
  readonly cidrs: readonly Cidr[];
  /** Time in milliseconds since the epoch. */
  readonly now: number;
  readonly quarantineMs?: number;
  /** The lock file as it is now, if there is one: its pins are honoured and kept. */
  readonly previous?: VipLock;
}

/** What {@link pinVips} returns. */
export interface PinResult {
  readonly lock: VipLock;
  /** The text to write to {@link vipLockPath}. */
  readonly text: string;
  /**
   * The allocation behind it: its errors name services that could not be pinned. Its state is
   * informational: do not save it from the CLI while a daemon may run on this node; the daemon
   * reads the new lock file on its next reload and takes the same VIPs.
   */
  readonly allocation: AllocationResult;
}

/**
 * Computes the lock file for `svcgate ipam pin`: allocates (honouring an existing lock) and records
 * every service's clusterIPs. A service with an allocation error keeps its previous lock entry.
 *
 * @example
 * ```ts
 * const { text, allocation } = pinVips({ services, state, cidrs, now: Date.now() });
 * for (const e of allocation.errors) console.error(e.message);
 * await writeFileAtomic(vipLockPath(dir, true), text);
 * ```
 */
export function pinVips(options: PinOptions): PinResult {
  const allocation = allocateVips(options.state, options.services, {
    cidrs: options.cidrs,
    now: options.now,
    ...(options.quarantineMs !== undefined ? { quarantineMs: options.quarantineMs } : {}),
    ...(options.previous ? { pins: options.previous.services } : {}),
  });
  return pinAllocation(allocation, options.previous);
}

/**
 * The lock file that records an allocation made with `previous`'s pins (as {@link pinVips}
 * makes it): every service's clusterIPs; a service the allocation failed keeps its previous entry.
 *
 * @example
 * ```ts
 * const allocation = allocateVips(state, services, { cidrs, now, pins: previous?.services });
 * const { text } = pinAllocation(allocation, previous);
 * ```
 */
export function pinAllocation(allocation: AllocationResult, previous?: VipLock): PinResult {
  const services: Record<string, readonly IpText[]> = {};
  for (const s of allocation.services) {
    if (s.clusterIPs.length > 0) services[serviceKey(s.namespace, s.name)] = [...s.clusterIPs];
  }
  for (const { key } of allocation.errors) {
    const before = previous?.services[key];
    if (before) services[key] = before;
  }
  const lock: VipLock = { version: 1, services };
  return { lock, text: renderVipLock(lock), allocation };
}
