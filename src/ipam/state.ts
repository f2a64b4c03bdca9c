/**
 * The persisted IPAM state: plain data, its validation and its stable text form. Pure.
 *
 * The state is what makes allocation stable across restarts: every service key with the VIPs it
 * holds, and every recently released VIP with the time it was released (for the quarantine).
 * @module
 */

import { canonicalIp, type IpText } from "../model/ip.ts";

/** One released VIP, kept until its quarantine ends. */
export interface ReleasedVip {
  readonly ip: IpText;
  /** The service key that held it. */
  readonly key: string;
  /** When it was released, in milliseconds since the epoch. */
  readonly at: number;
}

/** The persisted allocation state, version 1. */
export interface IpamState {
  readonly version: 1;
  /** Service key (`namespace/name`) -> the VIPs it holds, at most one per family. */
  readonly allocations: Readonly<Record<string, { readonly ips: readonly IpText[] }>>;
  /** Released VIPs still in quarantine, oldest first. */
  readonly released: readonly ReleasedVip[];
}

/** A state with nothing allocated. */
export const EMPTY_IPAM_STATE: IpamState = Object.freeze({
  version: 1,
  allocations: Object.freeze({}),
  released: Object.freeze([]),
});

const KEY_RE = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?\/[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

/** True when the text is a service key as the model writes it (`namespace/name`). */
export function isServiceKey(text: string): boolean {
  return KEY_RE.test(text);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * Parses and validates the text of a state file. Returns the state, or a message saying what is
 * wrong and where (a JSON path and the quoted value); the caller adds the file name.
 *
 * @example
 * ```ts
 * const s = parseIpamState('{"version":1,"allocations":{},"released":[]}');
 * if (typeof s === "string") throw new Error(s);
 * ```
 */
export function parseIpamState(text: string): IpamState | string {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    return `not valid JSON (${e instanceof Error ? e.message : String(e)})`;
  }
  if (!isRecord(raw)) return "the top level is not a JSON object";
  if (raw.version !== 1) {
    return `version ${JSON.stringify(raw.version ?? null)} is not supported (expected 1)`;
  }
  if (!isRecord(raw.allocations)) return `"allocations" is not an object`;
  const allocations: Record<string, { ips: IpText[] }> = {};
  const owner = new Map<string, string>();
  for (const key of Object.keys(raw.allocations).sort()) {
    const where = `allocations[${JSON.stringify(key)}]`;
    if (!isServiceKey(key)) return `${where}: ${JSON.stringify(key)} is not a namespace/name key`;
    const entry = raw.allocations[key];
    if (!isRecord(entry) || !Array.isArray(entry.ips)) return `${where}.ips is not an array`;
    const ips: IpText[] = [];
    const families = new Set<string>();
    for (const [i, ip] of entry.ips.entries()) {
      const canonical = typeof ip === "string" ? canonicalIp(ip) : null;
      if (canonical === null) {
        return `${where}.ips[${i}]: ${JSON.stringify(ip)} is not an IP address`;
      }
      const family = canonical.includes(":") ? "6" : "4";
      if (families.has(family)) {
        return `${where}.ips[${i}]: ${JSON.stringify(ip)} is a second IPv${family} address`;
      }
      families.add(family);
      const other = owner.get(canonical);
      if (other !== undefined) {
        return `${where}.ips[${i}]: ${JSON.stringify(ip)} is also allocated to ${other}`;
      }
      owner.set(canonical, key);
      ips.push(canonical);
    }
    allocations[key] = { ips };
  }
  if (!Array.isArray(raw.released)) return `"released" is not an array`;
  const released: ReleasedVip[] = [];
  for (const [i, r] of raw.released.entries()) {
    const where = `released[${i}]`;
    if (!isRecord(r)) return `${where} is not an object`;
    const ip = typeof r.ip === "string" ? canonicalIp(r.ip) : null;
    if (ip === null) return `${where}.ip: ${JSON.stringify(r.ip ?? null)} is not an IP address`;
    if (typeof r.key !== "string" || !isServiceKey(r.key)) {
      return `${where}.key: ${JSON.stringify(r.key ?? null)} is not a namespace/name key`;
    }
    if (typeof r.at !== "number" || !Number.isFinite(r.at) || r.at < 0) {
      return `${where}.at: ${JSON.stringify(r.at ?? null)} is not a time in milliseconds`;
    }
    released.push({ ip, key: r.key, at: r.at });
  }
  return { version: 1, allocations, released };
}

/**
 * The stable text of a state: keys sorted, one allocation per line, so equal states give equal
 * bytes and a diff of two state files reads well.
 *
 * @example
 * ```ts
 * renderIpamState(EMPTY_IPAM_STATE); // '{\n  "version": 1,\n  "allocations": {},\n  "released": []\n}\n'
 * ```
 */
export function renderIpamState(state: IpamState): string {
  const keys = Object.keys(state.allocations).sort();
  const allocs = keys.map((k) =>
    `    ${JSON.stringify(k)}: ${JSON.stringify({ ips: state.allocations[k].ips })}`
  );
  const released = state.released.map((r) =>
    `    ${JSON.stringify({ ip: r.ip, key: r.key, at: r.at })}`
  );
  const block = (open: string, lines: string[], close: string) =>
    lines.length === 0 ? `${open}${close}` : `${open}\n${lines.join(",\n")}\n  ${close}`;
  return [
    "{",
    `  "version": 1,`,
    `  "allocations": ${block("{", allocs, "}")},`,
    `  "released": ${block("[", released, "]")}`,
    "}",
    "",
  ].join("\n");
}

/** True when two states hold the same data (compared through their stable text). */
export function sameIpamState(a: IpamState, b: IpamState): boolean {
  return a === b || renderIpamState(a) === renderIpamState(b);
}

/** What {@link adoptLiveAllocations} returns. */
export interface AdoptResult {
  readonly state: IpamState;
  /** Service keys whose VIPs were taken from the live list (they differed or were missing). */
  readonly adopted: readonly string[];
  /** Entries of the live list that could not be used, quoted. */
  readonly problems: readonly string[];
}

/**
 * Makes the state agree with the VIPs the kernel's rules serve right now, so nothing that is live
 * moves: each live VIP goes to its live service key (per family), and is taken away from any other
 * key and from the released list. Used on every start, and the only source when the state file is
 * missing or corrupt.
 *
 * @example
 * ```ts
 * const { state } = adoptLiveAllocations(EMPTY_IPAM_STATE, { "default/web": ["198.19.0.20"] });
 * ```
 */
export function adoptLiveAllocations(
  state: IpamState,
  live: Readonly<Record<string, readonly string[]>>,
): AdoptResult {
  const problems: string[] = [];
  const liveOwner = new Map<string, string>();
  const liveByKey = new Map<string, IpText[]>();
  for (const key of Object.keys(live).sort()) {
    if (!isServiceKey(key)) {
      problems.push(`live service key ${JSON.stringify(key)} is not a namespace/name key`);
      continue;
    }
    const ips: IpText[] = [];
    for (const text of live[key]) {
      const ip = canonicalIp(text);
      if (ip === null) {
        problems.push(`live VIP ${JSON.stringify(text)} of ${key} is not an IP address`);
        continue;
      }
      const other = liveOwner.get(ip);
      if (other !== undefined) {
        problems.push(`live VIP ${JSON.stringify(ip)} of ${key} is also live for ${other}`);
        continue;
      }
      if (ips.some((i) => i.includes(":") === ip.includes(":"))) {
        problems.push(`live VIP ${JSON.stringify(ip)} of ${key} is a second one of its family`);
        continue;
      }
      liveOwner.set(ip, key);
      ips.push(ip);
    }
    if (ips.length > 0) liveByKey.set(key, ips);
  }
  const allocations: Record<string, { ips: IpText[] }> = {};
  const adopted: string[] = [];
  const keys = new Set([...Object.keys(state.allocations), ...liveByKey.keys()]);
  for (const key of [...keys].sort()) {
    const liveIps = liveByKey.get(key) ?? [];
    const before = state.allocations[key]?.ips ?? [];
    const kept = before.filter((ip) => {
      const owner = liveOwner.get(ip);
      if (owner !== undefined) return owner === key;
      // A family the kernel serves for this key is decided by the kernel.
      return !liveIps.some((l) => l.includes(":") === ip.includes(":"));
    });
    const ips = [...kept, ...liveIps.filter((ip) => !kept.includes(ip))];
    if (ips.length > 0) allocations[key] = { ips };
    const same = ips.length === before.length && ips.every((ip) => before.includes(ip));
    if (liveIps.length > 0 && !same) adopted.push(key);
  }
  const released = state.released.filter((r) => !liveOwner.has(r.ip));
  return { state: { version: 1, allocations, released }, adopted, problems };
}
