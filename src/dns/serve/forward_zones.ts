/**
 * Per-zone forwarding (`--forward-zone ZONE=IP[:PORT][,IP[:PORT]...]`, kube-dns's stubDomains,
 * CoreDNS's `forward ZONE`): names under a zone go to its servers instead of the global upstreams;
 * the longest zone wins; reverse zones (`x.in-addr.arpa`, `ip6.arpa`) work the same way. Who may
 * have a name forwarded is still the allow-list's decision (answer.ts). Pure.
 * @module
 */

import { nameKey, plainNameProblem } from "../codec/names.ts";
import { parseUpstream, type Upstream } from "./upstream.ts";

/** One `--forward-zone`: a zone (lookup key: lower case, no trailing dot) and its servers. */
export interface ForwardZone {
  readonly zone: string;
  readonly upstreams: readonly Upstream[];
}

/**
 * Parses one `ZONE=IP[:PORT][,IP[:PORT]...]`; returns the problem as text (quoting the part that
 * is wrong) when it is not one. The root zone is refused: that is `--upstream`.
 *
 * @example
 * ```ts
 * parseForwardZone("corp.example=198.18.5.53,198.18.5.54:5353");
 * // { zone: "corp.example", upstreams: [198.18.5.53:53, 198.18.5.54:5353] }
 * ```
 */
export function parseForwardZone(text: string): ForwardZone | string {
  const eq = text.indexOf("=");
  if (eq < 0) return "expected ZONE=IP[:PORT][,IP[:PORT]...]";
  const zoneText = text.slice(0, eq).trim();
  const zone = nameKey(zoneText);
  if (zone === "" || zoneText === ".") {
    return "the root zone is not a forward zone (use --upstream for every other name)";
  }
  if (zone.indexOf("\\") >= 0 || plainNameProblem(zone) !== null || /[\s=,]/.test(zone)) {
    return `"${zoneText}" is not a DNS zone name`;
  }
  const servers = text.slice(eq + 1).split(",").map((s) => s.trim());
  if (servers.length === 0 || servers.some((s) => s === "")) {
    return `zone "${zone}" needs at least one IP[:PORT] after "=" and no empty entries`;
  }
  const upstreams: Upstream[] = [];
  for (const s of servers) {
    const u = parseUpstream(s);
    if (typeof u === "string") return `"${s}" is not IP[:PORT]`;
    upstreams.push(u);
  }
  return { zone, upstreams };
}

/** True when the lookup key `name` is `zone` or under it. */
export function inZone(name: string, zone: string): boolean {
  return name === zone ||
    (name.length > zone.length && name.endsWith(zone) &&
      name[name.length - zone.length - 1] === ".");
}

/**
 * The forward zones, most specific first.
 *
 * @example
 * ```ts
 * const zones = new ForwardZones([corp, ad]);
 * zones.match("host.ad.corp.example")?.zone; // "ad.corp.example" (the longest)
 * ```
 */
export class ForwardZones {
  readonly #zones: readonly ForwardZone[];

  constructor(zones: readonly ForwardZone[]) {
    // Longest first, so the first match is the most specific; later duplicates lose.
    const byZone = new Map<string, ForwardZone>();
    for (const z of zones) if (!byZone.has(z.zone)) byZone.set(z.zone, z);
    this.#zones = [...byZone.values()].sort((a, b) => b.zone.length - a.zone.length);
  }

  /** Number of zones. */
  get size(): number {
    return this.#zones.length;
  }

  /** The most specific zone holding the name (any case, trailing dot or not), or null. */
  match(name: string): ForwardZone | null {
    if (this.#zones.length === 0) return null;
    const key = nameKey(name);
    for (const z of this.#zones) if (inZone(key, z.zone)) return z;
    return null;
  }

  /** Every zone, most specific first. */
  get zones(): readonly ForwardZone[] {
    return this.#zones;
  }
}

/**
 * Forward zones svcgate would never use because it answers for them itself: the cluster domain
 * and names under it, and zones under one of its reverse apexes. Each as a warning line.
 */
export function shadowedZones(
  zones: readonly ForwardZone[],
  clusterDomain: string,
  reverseApexes: readonly string[],
): string[] {
  const ours = [nameKey(clusterDomain), ...reverseApexes.map(nameKey)];
  const out: string[] = [];
  for (const z of zones) {
    const apex = ours.find((o) => inZone(z.zone, o));
    if (apex !== undefined) {
      out.push(
        `--forward-zone "${z.zone}" is never used: svcgate answers for "${apex}" itself`,
      );
    }
  }
  return out;
}
