/**
 * Virtual IP allocation for standalone mode: gives every Service from the manifests its
 * clusterIPs out of `--service-cidr`, stable across restarts through the persisted state. Pure: the
 * state and the clock come in as arguments, the next state goes out in the result.
 *
 * Rules, as Kubernetes applies them:
 * - The network address of each CIDR is reserved (for IPv6 that is the subnet-router anycast
 *   address), and for IPv4 the broadcast address too.
 * - An explicit `spec.clusterIP(s)` is honoured when it lies inside a configured CIDR of its family
 *   and no other service holds it; otherwise that service alone gets an error.
 * - Headless services (`clusterIP: None`) and ExternalName services get no VIP.
 * - Families follow `service.ipFamilies` (one VIP per family; empty means the family of the first
 *   CIDR, as Kubernetes' primary family). A family without a CIDR is an error for that service,
 *   except under `ipFamilyPolicy: PreferDualStack`, which settles for the families configured.
 *
 * Choice of new addresses: a hash of the service key (FNV-1a) picks the starting point, then the
 * next free address is taken, so a VIP does not depend on the order services come in; the upper
 * part of each range first, the lower band kept for explicit clusterIPs (KEP-3070). See README.md.
 *
 * Quarantine: a VIP a service no longer holds is not given to a different service for
 * {@link DEFAULT_QUARANTINE_MS}, so traffic meant for a deleted service never reaches a new one.
 * The same service key gets its old VIP back within that time; an explicit clusterIP (or a
 * lock-file entry) may take a quarantined VIP: the operator named that address on purpose.
 * @module
 */

import {
  bigIntToIp,
  type Cidr,
  cidrContains,
  cidrSize,
  formatIp,
  ipFamilyOf,
  type IpText,
  ipToBigInt,
  parseIp,
} from "../model/ip.ts";
import { fnv1a64 } from "../model/hash.ts";
import { compareText } from "../model/text.ts";
import type { IpFamily, Service } from "../model/types.ts";
import { serviceKey } from "../model/types.ts";
import { type IpamState, type ReleasedVip, sameIpamState } from "./state.ts";

/** How long a released VIP stays reserved for its previous service: 10 minutes. */
export const DEFAULT_QUARANTINE_MS = 10 * 60 * 1000;

/** Service key -> clusterIPs pinned for it on every node (the VIP lock file's content). */
export type VipPins = Readonly<Record<string, readonly IpText[]>>;

/** Inputs of {@link allocateVips} besides the state and the services. */
export interface AllocateOptions {
  /** The configured `--service-cidr` ranges, IPv4 and/or IPv6; earlier ones are tried first. */
  readonly cidrs: readonly Cidr[];
  /** The current time in milliseconds since the epoch (injected: pure code reads no clock). */
  readonly now: number;
  /** Quarantine of released VIPs; defaults to {@link DEFAULT_QUARANTINE_MS}. */
  readonly quarantineMs?: number;
  /** VIPs pinned by the lock file, honoured like explicit clusterIPs; see {@link ./lock.ts}. */
  readonly pins?: VipPins;
  /**
   * The list is incomplete (a manifest file could not be read): services missing from it keep
   * their VIPs, where nobody else took them, instead of releasing them.
   */
  readonly keepUnlisted?: boolean;
}

/** An error or warning about one service. */
export interface AllocationProblem {
  /** The service key, `namespace/name`. */
  readonly key: string;
  /** Full text, starting with the key, e.g. `default/web: clusterIP "..." is ...`. */
  readonly message: string;
}

/** What {@link allocateVips} returns. */
export interface AllocationResult {
  /**
   * The services that can be served, in input order, with clusterIPs (and ipFamilies) filled in.
   * Headless and ExternalName services pass through unchanged. Services with an error are left out.
   */
  readonly services: readonly Service[];
  /** One entry per service left out, saying why. */
  readonly errors: readonly AllocationProblem[];
  /** Things that work but deserve a log line (e.g. a lock entry missing a requested family). */
  readonly warnings: readonly AllocationProblem[];
  /** The next state to persist. A failed service keeps whatever it held before. */
  readonly state: IpamState;
  /** True when {@link state} differs from the input state (the caller saves only then). */
  readonly stateChanged: boolean;
}

interface Pool {
  readonly cidr: Cidr;
  /** First and last allocatable integer addresses. */
  readonly first: bigint;
  readonly last: bigint;
  /** Last address of the static band (explicit clusterIPs); below `first` when there is none. */
  readonly staticLast: bigint;
}

function familyName(f: IpFamily): string {
  return f === 4 ? "IPv4" : "IPv6";
}

/** Kubernetes' `calculateRangeOffset`: size/16 clamped to 16..256, none below 16 addresses. */
function staticBandSize(size: bigint): bigint {
  if (size < 16n) return 0n;
  const offset = size / 16n;
  return offset < 16n ? 16n : offset > 256n ? 256n : offset;
}

function makePool(cidr: Cidr): Pool {
  const size = cidrSize(cidr);
  const first = cidr.network + 1n;
  const last = cidr.network + size - (cidr.family === 4 ? 2n : 1n);
  const band = staticBandSize(size);
  let staticLast = first + band - 1n;
  // Keep at least half the range dynamic, so tiny ranges stay usable.
  if (staticLast - first + 1n > (last - first + 1n) / 2n) staticLast = first - 1n;
  return { cidr, first, last, staticLast };
}

/** Why an address cannot be allocated in its pool, or null when it can. */
function reservedReason(pool: Pool, value: bigint): string | null {
  if (value === pool.cidr.network) {
    return pool.cidr.family === 4
      ? `is the network address of ${pool.cidr.text}`
      : `is the subnet-router anycast address of ${pool.cidr.text}`;
  }
  if (value > pool.last) return `is the broadcast address of ${pool.cidr.text}`;
  return null;
}

/** True when both lists hold the same values in the same order. */
export function sameList(a: readonly unknown[], b: readonly unknown[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/** How a service gets its VIPs. */
type Plan =
  | { kind: "none" }
  | { kind: "fixed"; ips: IpText[]; origin: "spec" | "lock"; extraFamilies: IpFamily[] }
  | { kind: "dynamic"; families: IpFamily[] };

/**
 * Allocates clusterIPs for every service that needs one. Pure and deterministic: the same state,
 * services and options give the same result whatever order the services come in.
 *
 * Services missing from `services` release their VIPs into quarantine. A service with an error is
 * left out of the result and keeps its previous allocation in the state (when nobody else took it),
 * so the caller can keep serving the previous version of that service.
 *
 * @example
 * ```ts
 * const cidr = parseCidr("198.19.0.0/16") as Cidr;
 * const r = allocateVips(EMPTY_IPAM_STATE, [webService], { cidrs: [cidr], now: Date.now() });
 * r.services[0].clusterIPs; // e.g. ["198.19.93.17"]
 * ```
 */
export function allocateVips(
  state: IpamState,
  services: readonly Service[],
  options: AllocateOptions,
): AllocationResult {
  const { cidrs, now } = options;
  const quarantineMs = options.quarantineMs ?? DEFAULT_QUARANTINE_MS;
  const pins = options.pins ?? {};
  const pools = cidrs.map(makePool);
  const poolsOf = (f: IpFamily) => pools.filter((p) => p.cidr.family === f);
  const cidrList = (f: IpFamily) => poolsOf(f).map((p) => p.cidr.text).join(", ");
  const primary: IpFamily = cidrs[0]?.family ?? 4;

  const errors = new Map<string, string>();
  const warnings: AllocationProblem[] = [];
  const fail = (key: string, message: string) => {
    if (!errors.has(key)) errors.set(key, `${key}: ${message}`);
  };

  // 1. Decide, per service, where its VIPs come from.
  const plans = new Map<string, Plan>();
  const order: { key: string; service: Service }[] = [];
  for (const service of services) {
    const key = serviceKey(service.namespace, service.name);
    if (plans.has(key)) {
      // The first definition stands; the duplicate alone is reported.
      warnings.push({ key, message: `${key}: defined twice; the second definition is ignored` });
      continue;
    }
    order.push({ key, service });
    plans.set(key, planFor(key, service));
  }

  function planFor(key: string, service: Service): Plan {
    if (service.headless || service.type === "ExternalName") return { kind: "none" };
    const families: IpFamily[] = service.ipFamilies.length > 0
      ? [...new Set(service.ipFamilies)]
      : [primary];
    if (service.clusterIPs.length > 0) {
      return fixedPlan(key, service.clusterIPs, "spec", []);
    }
    if (service.ipFamilyPolicy === "PreferDualStack") {
      // As in Kubernetes: "prefer" settles for the families this node has ranges for.
      const available = families.filter((f) => poolsOf(f).length > 0);
      if (available.length > 0) families.splice(0, families.length, ...available);
    }
    const pinned = pins[key];
    if (pinned && pinned.length > 0) {
      const wanted = pinned.filter((ip) => families.includes(ipFamilyOf(ip)));
      const extra = families.filter((f) => !wanted.some((ip) => ipFamilyOf(ip) === f));
      if (extra.length > 0) {
        warnings.push({
          key,
          message: `${key}: the VIP lock file has no ${
            extra.map(familyName).join("/")
          } address for it; allocating one here (rerun "svcgate ipam pin" so every node agrees)`,
        });
      }
      if (wanted.length > 0) return fixedPlan(key, wanted, "lock", extra);
    }
    return { kind: "dynamic", families };
  }

  function fixedPlan(
    key: string,
    requested: readonly IpText[],
    origin: "spec" | "lock",
    extraFamilies: IpFamily[],
  ): Plan {
    const from = origin === "lock" ? " (from the VIP lock file)" : "";
    const ips: IpText[] = [];
    const seen = new Map<IpFamily, string>();
    for (const ip of requested) {
      const family = ipFamilyOf(ip);
      const before = seen.get(family);
      if (before !== undefined) {
        fail(
          key,
          `clusterIPs ${JSON.stringify(before)} and ${JSON.stringify(ip)}${from} are both ${
            familyName(family)
          } (at most one per family)`,
        );
        continue;
      }
      seen.set(family, ip);
      ips.push(ip);
    }
    return { kind: "fixed", ips, origin, extraFamilies };
  }

  // 2. Claims: ip -> key. Order of precedence: explicit VIPs a service already holds, lock-file
  //    pins, dynamic VIPs already held, new explicit VIPs, new dynamic VIPs.
  const claims = new Map<string, string>();
  const held = new Map<string, IpText[]>(); // key -> VIPs it ends up with
  const hold = (key: string, ip: IpText) => {
    claims.set(ip, key);
    const list = held.get(key);
    if (list) list.push(ip);
    else held.set(key, [ip]);
  };
  const oldIps = (key: string) => state.allocations[key]?.ips ?? [];

  /** Checks that an address can be allocated at all; returns an error message or null. */
  const validate = (ip: IpText, from: string): string | null => {
    const family = ipFamilyOf(ip);
    const candidates = poolsOf(family);
    if (candidates.length === 0) {
      return `clusterIP ${JSON.stringify(ip)}${from} is ${familyName(family)} but no ${
        familyName(family)
      } --service-cidr is configured`;
    }
    const parsed = parseIp(ip)!;
    const pool = candidates.find((p) => cidrContains(p.cidr, parsed));
    if (!pool) {
      return `clusterIP ${JSON.stringify(ip)}${from} is outside --service-cidr ${cidrList(family)}`;
    }
    const reserved = reservedReason(pool, ipToBigInt(parsed));
    return reserved ? `clusterIP ${JSON.stringify(ip)}${from} ${reserved}` : null;
  };

  const sorted = [...order].sort((a, b) => compareText(a.key, b.key));
  const fixedOf = (origin: "spec" | "lock") =>
    sorted.filter(({ key }) => {
      const p = plans.get(key)!;
      return p.kind === "fixed" && p.origin === origin && !errors.has(key);
    });

  // 2a. Explicit VIPs already held by the same service stay with it.
  for (const { key } of fixedOf("spec")) {
    const plan = plans.get(key) as Extract<Plan, { kind: "fixed" }>;
    for (const ip of plan.ips) {
      if (oldIps(key).includes(ip) && !claims.has(ip) && validate(ip, "") === null) hold(key, ip);
    }
  }
  // 2b/2d. Fixed VIPs (lock pins, then new explicit ones): all of a service's VIPs or none.
  const claimFixed = (origin: "spec" | "lock") => {
    for (const { key } of fixedOf(origin)) {
      const plan = plans.get(key) as Extract<Plan, { kind: "fixed" }>;
      const from = origin === "lock" ? " (from the VIP lock file)" : "";
      const mine = held.get(key) ?? [];
      let problem: string | null = null;
      for (const ip of plan.ips) {
        if (mine.includes(ip)) continue;
        problem = validate(ip, from);
        const other = claims.get(ip);
        if (!problem && other !== undefined && other !== key) {
          problem = `clusterIP ${JSON.stringify(ip)}${from} is already allocated to ${other}`;
        }
        if (problem) break;
      }
      if (problem) {
        fail(key, problem);
        continue;
      }
      for (const ip of plan.ips) if (!mine.includes(ip)) hold(key, ip);
    }
  };
  claimFixed("lock");

  // 2c. Dynamic VIPs already held stay, if still inside a CIDR and of a requested family.
  for (const { key } of sorted) {
    const plan = plans.get(key)!;
    const families = plan.kind === "dynamic"
      ? plan.families
      : plan.kind === "fixed" && plan.origin === "lock"
      ? plan.extraFamilies
      : [];
    for (const ip of oldIps(key)) {
      if (!families.includes(ipFamilyOf(ip)) || claims.has(ip)) continue;
      if ((held.get(key) ?? []).some((h) => ipFamilyOf(h) === ipFamilyOf(ip))) continue;
      if (validate(ip, "") === null) hold(key, ip);
    }
  }
  claimFixed("spec");

  // 2e. New dynamic VIPs.
  const quarantine = new Map<string, ReleasedVip>(); // ip -> latest release still in quarantine
  for (const r of state.released) {
    if (r.at + quarantineMs <= now) continue;
    const prev = quarantine.get(r.ip);
    if (!prev || prev.at <= r.at) quarantine.set(r.ip, r);
  }
  // VIPs released by this very pass are quarantined like earlier ones.
  for (const key of Object.keys(state.allocations)) {
    for (const ip of state.allocations[key].ips) {
      if (!claims.has(ip)) quarantine.set(ip, { ip, key, at: now });
    }
  }
  const blocked = (key: string, ip: string) => {
    if (claims.has(ip)) return true;
    const q = quarantine.get(ip);
    return q !== undefined && q.key !== key;
  };

  const pick = (key: string, family: IpFamily): IpText | string[] => {
    // The service's own recently released VIP first.
    const own = [...quarantine.values()]
      .filter((r) => r.key === key && ipFamilyOf(r.ip) === family && !claims.has(r.ip))
      .sort((a, b) => b.at - a.at);
    for (const r of own) if (validate(r.ip, "") === null) return r.ip;
    const tried: string[] = [];
    for (const pool of poolsOf(family)) {
      const hash = fnv1a64(`${key}|${family}`);
      const bands: [bigint, bigint][] = [[pool.staticLast + 1n, pool.last]];
      if (pool.staticLast >= pool.first) bands.push([pool.first, pool.staticLast]);
      for (const [lo, hi] of bands) {
        if (hi < lo) continue;
        const size = hi - lo + 1n;
        const start = hash % size;
        // Terminates after at most (taken addresses in the band + 1) steps, or the band's size.
        for (let i = 0n; i < size; i++) {
          const ip = formatIp(bigIntToIp(lo + ((start + i) % size), family));
          if (!blocked(key, ip)) return ip;
        }
      }
      tried.push(pool.cidr.text);
    }
    return tried;
  };

  for (const { key } of sorted) {
    const plan = plans.get(key)!;
    if (errors.has(key)) continue;
    const families = plan.kind === "dynamic"
      ? plan.families
      : plan.kind === "fixed"
      ? plan.extraFamilies
      : [];
    const mine = held.get(key) ?? [];
    const fresh: IpText[] = [];
    for (const family of families) {
      if (mine.some((ip) => ipFamilyOf(ip) === family)) continue;
      if (poolsOf(family).length === 0) {
        fail(
          key,
          `${familyName(family)} is requested (ipFamilies) but no ${
            familyName(family)
          } --service-cidr is configured`,
        );
        break;
      }
      const got = pick(key, family);
      if (typeof got !== "string") {
        const pools = poolsOf(family);
        const usable = pools.reduce((n, p) => n + (p.last - p.first + 1n), 0n);
        const allocated = [...claims.keys()].filter((ip) =>
          pools.some((p) => cidrContains(p.cidr, ip))
        ).length;
        const quarantined = [...quarantine.keys()].filter((ip) =>
          !claims.has(ip) && pools.some((p) => cidrContains(p.cidr, ip))
        ).length;
        fail(
          key,
          `no free ${familyName(family)} address left in --service-cidr ${
            got.join(", ")
          } (${usable} usable: ${allocated} allocated, ${quarantined} quarantined)`,
        );
        break;
      }
      fresh.push(got);
      claims.set(got, key); // provisional, rolled back below on failure
    }
    if (errors.has(key)) {
      for (const ip of fresh) claims.delete(ip);
      continue;
    }
    for (const ip of fresh) {
      claims.delete(ip);
      hold(key, ip);
    }
  }

  // 3. A failed service keeps what it held before, when nobody else took it meanwhile; so does
  // a service missing from an incomplete list.
  const keepers = [...errors.keys()];
  if (options.keepUnlisted) {
    for (const key of Object.keys(state.allocations).sort()) {
      if (!plans.has(key) && !errors.has(key)) keepers.push(key);
    }
  }
  for (const key of keepers) {
    for (const ip of oldIps(key)) if (!claims.has(ip)) hold(key, ip);
  }

  // 4. Next state: held VIPs, plus releases of every VIP that is no longer held by its key.
  const allocations: Record<string, { ips: IpText[] }> = {};
  for (const key of [...held.keys()].sort()) {
    const ips = held.get(key)!;
    const want = plans.get(key);
    // Order: requested order for fixed plans, family order for dynamic ones.
    const rank = (ip: IpText) => {
      if (want?.kind === "fixed") {
        const i = want.ips.indexOf(ip);
        if (i >= 0) return i;
        return want.ips.length + want.extraFamilies.indexOf(ipFamilyOf(ip));
      }
      if (want?.kind === "dynamic") return want.families.indexOf(ipFamilyOf(ip));
      return oldIps(key).indexOf(ip);
    };
    allocations[key] = { ips: [...ips].sort((a, b) => rank(a) - rank(b)) };
  }
  const released: ReleasedVip[] = state.released.filter((r) =>
    r.at + quarantineMs > now && !claims.has(r.ip)
  );
  for (const key of Object.keys(state.allocations).sort()) {
    for (const ip of state.allocations[key].ips) {
      if (claims.get(ip) === key) continue;
      if (!claims.has(ip)) released.push({ ip, key, at: now });
    }
  }
  const nextState: IpamState = { version: 1, allocations, released: dedupeReleased(released) };

  // 5. Services with their VIPs.
  const out: Service[] = [];
  for (const { key, service } of order) {
    if (errors.has(key)) continue;
    const plan = plans.get(key)!;
    if (plan.kind === "none") {
      out.push(service);
      continue;
    }
    const ips = allocations[key]?.ips ?? [];
    const ipFamilies = ips.map(ipFamilyOf);
    if (sameList(ips, service.clusterIPs) && sameList(ipFamilies, service.ipFamilies)) {
      out.push(service);
    } else {
      out.push({ ...service, clusterIPs: ips, ipFamilies });
    }
  }
  const errorList = [...errors].map(([key, message]) => ({ key, message }))
    .sort((a, b) => compareText(a.key, b.key));
  return {
    services: out,
    errors: errorList,
    warnings,
    state: nextState,
    stateChanged: !sameIpamState(state, nextState),
  };
}

/** Keeps the latest release of each address, oldest first. */
function dedupeReleased(list: ReleasedVip[]): ReleasedVip[] {
  const latest = new Map<string, ReleasedVip>();
  for (const r of list) {
    const prev = latest.get(r.ip);
    if (!prev || prev.at <= r.at) latest.set(r.ip, r);
  }
  return [...latest.values()].sort((a, b) => a.at - b.at || compareText(a.ip, b.ip));
}
