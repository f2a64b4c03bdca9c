/**
 * What a {@link DnsServer} is given, and how it becomes each engine's options: the zone's flavour,
 * the answer options with the defaults read from the host (resolv.conf's search domains, the
 * addresses `ns.dns.<zone>` names), the sockets and limits. The host reads are at start only.
 * @module
 */

import { canonicalIp, type Cidr, type IpText } from "../../model/ip.ts";
import type { Logger } from "../../observe/log.ts";
import type { MetricsRegistry } from "../../observe/metrics.ts";
import { hostSearchDomains } from "../answer/autopath.ts";
import { type RecordOptions, recordOptions } from "../zone/zone.ts";
import type {
  EngineAnswerOptions,
  EngineOptions,
  ForwardingOptions,
  TcpLimits,
  UdpTransportChoice,
} from "./engine.ts";
import { ownAddresses } from "./host_addresses.ts";
import { interfaceAddresses } from "./host_watch.ts";
import type { NodeResolver } from "./node_resolver.ts";
import { readResolvConf } from "./upstream.ts";

/** Options of a DnsServer (server.ts). */
export interface DnsServerOptions {
  /** Where to listen (UDP and TCP), e.g. `{ hostname: "169.254.20.10", port: 53 }`; port 0 picks one. */
  readonly bind: { readonly hostname: string; readonly port: number };
  /** Cluster domain, default in the CLI `cluster.local`. */
  readonly clusterDomain: string;
  /** TTL of cluster records, 0-3600 s. */
  readonly ttl: number;
  /** Service and cluster CIDRs: svcgate is authoritative for their reverse zones. */
  readonly reverseCidrs: readonly Cidr[];
  /**
   * Upstream resolvers as `ip`, `ip:port` or `[ipv6]:port`. Undefined: the nameservers of
   * /etc/resolv.conf minus svcgate's own address. Empty: no forwarding (SERVFAIL).
   */
  readonly upstreams?: readonly string[];
  /** Clients allowed to recurse (everyone else gets REFUSED for non-cluster names). */
  readonly allowRecursion: readonly Cidr[];
  readonly log?: Logger;
  readonly metrics?: MetricsRegistry;
  /** Engines in workers sharing the port (SO_REUSEPORT); 0 runs in-process. Default 1. */
  readonly workers?: number;
  /** UDP transport: FFI batched syscalls, node:dgram, or FFI when permitted (default). */
  readonly udpTransport?: UdpTransportChoice;
  /** Idle TCP connections are closed after this long. Default 10000 ms. */
  readonly tcpIdleTimeoutMs?: number;
  /**
   * TCP connection limits and timeouts (`--dns-tcp-*`: clients, clients per IP, I/O timeout,
   * lifetime, queries per connection); unset ones take tcp.ts's defaults.
   */
  readonly tcpLimits?: TcpLimits;
  /** UDP responses per second per source address (`--dns-rrl`). Default 0: no limit. */
  readonly rrlResponsesPerSecond?: number;
  /** Forwarded questions get SERVFAIL after this long. Default 1500 ms. */
  readonly upstreamTimeoutMs?: number;
  /** Forwarding cache entries per engine. Default 10000. */
  readonly cacheSize?: number;
  /**
   * Module the workers run: worker_main.ts beside this file by default; a bundle passes where it
   * put that entry (main.ts does).
   */
  readonly workerUrl?: string | URL;
  /**
   * Where default upstreams (and the host's search domains) come from (`--resolv-conf`). Default:
   * /run/systemd/resolve/resolv.conf when it exists, else /etc/resolv.conf (resolv_conf.ts).
   */
  readonly resolvConfPath?: string;
  /**
   * Also let every address of the node recurse (the bind address included), following changes:
   * `svcgate run` without `--dns-allow-recursion`. Default false.
   */
  readonly allowNodeAddresses?: boolean;
  /**
   * Fail to start when the resolv.conf leaves no upstream and `upstreams` is not given (`svcgate
   * run`); default false: warn and forward nothing.
   */
  readonly requireUpstreams?: boolean;
  /** Per-zone forwarding, serve-stale, prefetch and the cache's TTL caps. */
  readonly forwarding?: ForwardingOptions;
  /** How often the node's addresses and resolv.conf are polled. Default 2000 ms. */
  readonly nodePollMs?: number;
  /** What the zone answers beyond the spec, and the search path on the server. */
  readonly answers?: DnsAnswerOptions;
  /** Sockets inherited from systemd (socket activation, inherited_sockets.ts) to serve. */
  readonly inheritedSockets?: { readonly udpFd: number; readonly tcpFd: number | null };
  /** SO_REUSEPORT on the UDP socket and TCP listener: another process may serve beside this one. */
  readonly reusePort?: boolean;
}

/**
 * What svcgate's DNS answers where the spec allows two answers, and for whom it searches (the
 * engine's options, engine.ts EngineAnswerOptions; defaults: CoreDNS's answers, pods insecure, no
 * search path on the server), with two defaults read from the host.
 */
export type DnsAnswerOptions = Omit<EngineAnswerOptions, "indexEndpoints" | "nsAddresses"> & {
  /**
   * What `ns.dns.<zone>` answers. Default: the bind address, or with a wildcard bind every
   * non-loopback address of the host (as CoreDNS's boundIPs); loopback is never named.
   */
  readonly nsAddresses?: readonly string[];
  /** The host's search domains, walked after the cluster's. Default: resolv.conf's. */
  readonly searchDomains?: readonly string[];
};

/** The zone's flavour (what service fingerprints and slim entries must cover). */
export function zoneRecords(opts: DnsServerOptions): RecordOptions {
  const a = opts.answers ?? {};
  return recordOptions({
    strictSpec: a.strictSpec ?? false,
    endpointPodNames: a.endpointPodNames ?? false,
    indexEndpoints: a.podRecords === "verified" || (a.clientNamespacesFromEndpoints ?? false),
  });
}

/**
 * The engines' answer options, with the defaults read from the host: the search domains of
 * `resolvConfPath` (autopath) and the addresses svcgate answers on (CoreDNS's boundIPs; never
 * loopback or link-local).
 */
export async function engineAnswers(
  opts: DnsServerOptions,
  resolvConfPath: string,
): Promise<EngineAnswerOptions> {
  const a = opts.answers ?? {};
  const records = zoneRecords(opts);
  let searchDomains = a.searchDomains ? [...a.searchDomains] : [];
  if (a.autopath && !a.searchDomains) {
    try {
      searchDomains = hostSearchDomains(await readResolvConf(resolvConfPath), opts.clusterDomain);
    } catch {
      // No resolv.conf: no host domains to walk (the upstreams' warning says why).
    }
  }
  const nsAddresses: IpText[] = [];
  for (const text of a.nsAddresses ?? nameServerAddresses(opts.bind.hostname)) {
    const ip = canonicalIp(text);
    if (ip && !nsAddresses.includes(ip)) nsAddresses.push(ip);
  }
  return {
    strictSpec: records.strictSpec,
    podRecords: a.podRecords ?? "insecure",
    endpointPodNames: records.endpointPodNames,
    indexEndpoints: records.indexEndpoints,
    nsAddresses,
    autopath: a.autopath ?? false,
    searchDomains,
    clientNamespaces: [...a.clientNamespaces ?? []],
    clientNamespacesFromEndpoints: a.clientNamespacesFromEndpoints ?? false,
  };
}

/** What `ns.dns.<zone>` names: svcgate's own addresses but loopback and link-local ones. */
function nameServerAddresses(bindHost: string): string[] {
  // Without --allow-sys the interfaces are unknown: a wildcard bind then names no address.
  const interfaces = interfaceAddresses();
  return ownAddresses(bindHost, typeof interfaces === "string" ? [] : interfaces)
    .filter((a) => !a.startsWith("127.") && a !== "::1" && !a.startsWith("fe80:"));
}

/** The first engine's options (the others share its port, without TCP). */
export function engineOptions(
  opts: DnsServerOptions,
  node: NodeResolver,
  answers: EngineAnswerOptions,
): EngineOptions {
  const inherited = opts.inheritedSockets;
  const reusePort = opts.reusePort ?? false;
  return {
    hostname: opts.bind.hostname,
    port: opts.bind.port,
    clusterDomain: opts.clusterDomain,
    ttl: opts.ttl,
    reverseCidrs: [...opts.reverseCidrs],
    upstreams: [...node.upstreams],
    allowRecursion: [...node.allow],
    udp: opts.udpTransport ?? "auto",
    reusePort: (opts.workers ?? 1) > 1 || reusePort,
    tcp: true,
    ...(inherited ? { inheritedUdpFd: inherited.udpFd } : {}),
    ...(inherited?.tcpFd != null
      ? { tcpSocket: { kind: "inherited" as const, fd: inherited.tcpFd } }
      : reusePort
      ? { tcpSocket: { kind: "reuseport" as const } }
      : {}),
    tcpIdleTimeoutMs: opts.tcpIdleTimeoutMs ?? 10_000,
    tcpLimits: { ...opts.tcpLimits },
    rrlResponsesPerSecond: opts.rrlResponsesPerSecond ?? 0,
    upstreamTimeoutMs: opts.upstreamTimeoutMs ?? 1500,
    cacheSize: opts.cacheSize ?? 10_000,
    forwarding: opts.forwarding ?? {},
    answers,
  };
}
