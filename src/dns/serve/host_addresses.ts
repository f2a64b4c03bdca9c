/**
 * Who may recurse by default (issue 15): loopback, `--cluster-cidr`, and every address of the node
 * itself. A query the node sends to 169.254.20.10 leaves from 169.254.20.10, and a hostNetwork
 * pod's from one of the node's addresses: both are the node asking, never a stranger. Pure: the
 * edge (host_watch.ts) reads the interfaces every few seconds and hands them in.
 * @module
 */

import {
  canonicalIp,
  type Cidr,
  cidrContains,
  ipFamilyOf,
  type IpText,
  parseCidr,
} from "../../model/ip.ts";

/** Loopback of both families: always allowed by default. */
export const LOOPBACK_TEXT = ["127.0.0.0/8", "::1/128"] as const;

/** An address's canonical text without an IPv6 zone id (`fe80::1%eth0`), or null. */
function canonical(text: string): IpText | null {
  return canonicalIp(text.replace(/%.*$/, ""));
}

/**
 * svcgate's own addresses: the bind address, or with a wildcard bind every address of the node
 * (`interfaces`, as Deno.networkInterfaces() lists them), canonical and without duplicates.
 */
export function ownAddresses(bindHost: string, interfaces: readonly string[]): string[] {
  const bind = canonical(bindHost);
  const wildcard = bind === "0.0.0.0" || bind === "::";
  const out: string[] = [];
  for (const a of wildcard ? interfaces : [bindHost]) {
    const ip = canonical(a);
    if (ip && !out.includes(ip)) out.push(ip);
  }
  return out;
}

/**
 * The default allow-list: `base` (loopback and the cluster CIDRs) and a host route for each
 * address of the node (`addresses`: the bind address and the interfaces' addresses) that `base`
 * does not already cover. The order is stable: base first, then the addresses as given.
 *
 * @example
 * ```ts
 * nodeAllowList(base, ["169.254.20.10", "198.18.100.1"]).map((c) => c.text);
 * // [...base, "169.254.20.10/32", "198.18.100.1/32"]
 * ```
 */
export function nodeAllowList(base: readonly Cidr[], addresses: readonly string[]): Cidr[] {
  const out = [...base];
  const seen = new Set(base.map((c) => c.text));
  for (const a of addresses) {
    const ip = canonical(a);
    if (!ip || (ip === "0.0.0.0" || ip === "::")) continue;
    if (base.some((c) => cidrContains(c, ip))) continue;
    const host = parseCidr(`${ip}/${ipFamilyOf(ip) === 4 ? 32 : 128}`);
    if (typeof host === "string" || seen.has(host.text)) continue;
    seen.add(host.text);
    out.push(host);
  }
  return out;
}

/** True when two allow-lists hold the same CIDRs in the same order (no update needed). */
export function sameCidrs(a: readonly Cidr[], b: readonly Cidr[]): boolean {
  return a.length === b.length && a.every((c, i) => c.text === b[i].text);
}
