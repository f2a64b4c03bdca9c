/**
 * The flags of svcgate as the node's resolver (issue 15): where upstreams come from
 * (`--resolv-conf`), per-zone forwarding (`--forward-zone`, repeatable), and the cache in outages
 * (`--dns-serve-stale`, `--dns-prefetch`, `--dns-cache-*`). Declared and parsed here, beside
 * flags.ts, which lists them with the others. Pure.
 * @module
 */

import { nameKey } from "../dns/codec/names.ts";
import { type ForwardZone, inZone, parseForwardZone } from "../dns/serve/forward_zones.ts";

/** What these flags configure. */
export interface DnsResolverConfig {
  /** `--resolv-conf`; null: systemd-resolved's file when it exists, else /etc/resolv.conf. */
  readonly resolvConf: string | null;
  /** `--forward-zone`, in the order given. */
  readonly forwardZones: readonly ForwardZone[];
  /** `--dns-serve-stale`: how long past expiry an answer may be served when upstreams fail. */
  readonly serveStaleMs: number;
  /** `--dns-prefetch`: fresh hits that make an answer worth refreshing early (0: off). */
  readonly prefetchHits: number;
  /** `--dns-cache-size`: forwarding cache entries per engine (0: no cache). */
  readonly cacheSize: number;
  /** `--dns-cache-max-ttl`, `--dns-cache-max-negative-ttl`, seconds. */
  readonly cacheMaxTtl: number;
  readonly cacheMaxNegativeTtl: number;
  /** No `--dns-allow-recursion`: the node's own addresses may recurse too. */
  readonly allowNodeAddresses: boolean;
}

/** The flags, as flags.ts declares every flag (it adds them to its list, in this order). */
export const DNS_RESOLVER_FLAGS = [
  {
    name: "resolv-conf",
    kind: "string",
    default: "",
    help:
      "resolv.conf whose nameservers are the upstreams when --upstream is not given, svcgate's own addresses left out; re-read when it changes (default: /run/systemd/resolve/resolv.conf when it exists, else /etc/resolv.conf)",
  },
  {
    name: "forward-zone",
    kind: "string",
    default: "",
    help:
      "ZONE=IP[:PORT][,IP[:PORT]...]: names under ZONE (reverse zones too) go to these servers instead of the upstreams; repeatable, the longest zone wins",
  },
  {
    name: "dns-serve-stale",
    kind: "duration",
    default: "1h",
    help:
      "When no upstream answers, serve an answer expired for less than this, with TTL 30 (RFC 8767); 0 turns it off",
  },
  {
    name: "dns-prefetch",
    kind: "int",
    default: "5",
    help:
      "Refresh a forwarded answer asked this many times before it expires (when a tenth of its TTL is left); 0 turns it off",
  },
  {
    name: "dns-cache-size",
    kind: "int",
    default: "10000",
    help: "Forwarded answers cached at most (per DNS engine); 0 turns the cache off",
  },
  {
    name: "dns-cache-max-ttl",
    kind: "duration",
    default: "1h",
    help: "Longest time a forwarded answer is cached, whatever its TTL",
  },
  {
    name: "dns-cache-max-negative-ttl",
    kind: "duration",
    default: "30m",
    help:
      "Longest time a negative answer (NXDOMAIN, NODATA) is cached; otherwise its SOA minimum (RFC 2308)",
  },
] as const;

/** Metavars of the flags in help. */
export const DNS_RESOLVER_METAVARS: Readonly<Record<string, string>> = {
  "resolv-conf": "PATH",
  "forward-zone": "ZONE=IP[:PORT][,...]",
};

/** What parsing needs from flags.ts. */
export interface FlagAccess {
  /** The flag's value (the default when absent); a repeated flag's values joined by "\n". */
  value(name: string): string;
  /** Whether the flag was given. */
  given(name: string): boolean;
  /** Throws the usage error naming the flag and quoting `quoted` (default: its value). */
  fail(name: string, why: string, quoted?: string): never;
  /** A duration flag, ms. */
  duration(name: string): number;
}

/** Parses the flags; `clusterDomain` is refused as a forward zone (svcgate answers for it). */
export function parseDnsResolverFlags(f: FlagAccess, clusterDomain: string): DnsResolverConfig {
  const forwardZones: ForwardZone[] = [];
  const text = f.value("forward-zone");
  for (const item of text === "" ? [] : text.split("\n")) {
    const z = parseForwardZone(item);
    if (typeof z === "string") f.fail("forward-zone", z, item);
    if (inZone(z.zone, nameKey(clusterDomain))) {
      f.fail("forward-zone", `svcgate answers for "${clusterDomain}" itself`, item);
    }
    if (forwardZones.some((o) => o.zone === z.zone)) {
      f.fail("forward-zone", `zone "${z.zone}" is given twice`, item);
    }
    forwardZones.push(z);
  }
  const whole = (name: string, max: number): number => {
    const v = f.value(name);
    return /^\d+$/.test(v) && Number(v) <= max
      ? Number(v)
      : f.fail(name, `expected a whole number 0-${max}`);
  };
  const seconds = (name: string, max: number): number => {
    const ms = f.duration(name);
    return ms >= 1000 && ms <= max * 1000
      ? Math.floor(ms / 1000)
      : f.fail(name, `expected 1s-${max / 3600}h`);
  };
  const stale = f.duration("dns-serve-stale");
  if (stale > 7 * 86_400_000) f.fail("dns-serve-stale", "expected 0-168h");
  const path = f.value("resolv-conf");
  if (f.given("resolv-conf") && path === "") f.fail("resolv-conf", "expected a file path");
  return {
    resolvConf: path === "" ? null : path,
    forwardZones,
    serveStaleMs: stale,
    prefetchHits: whole("dns-prefetch", 1_000_000),
    cacheSize: whole("dns-cache-size", 10_000_000),
    cacheMaxTtl: seconds("dns-cache-max-ttl", 7 * 86_400),
    cacheMaxNegativeTtl: seconds("dns-cache-max-negative-ttl", 7 * 86_400),
    allowNodeAddresses: f.value("dns-allow-recursion") === "",
  };
}
