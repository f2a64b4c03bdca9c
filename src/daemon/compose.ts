/**
 * Composition: builds each command's parts from the configuration. The daemon's source, dataplane
 * and DNS for `run`, the rendered ruleset for `render`, the clean-up for `cleanup` and the lock
 * file for `ipam pin`. Thin: the parts do the work.
 * @module
 */

import type { Config } from "../config/flags.ts";
import { canonicalIp, type Cidr, ipFamilyOf, type IpText } from "../model/ip.ts";
import { primaryCidrs } from "../nft/render_options.ts";
import { ZONE_LABEL } from "../model/types.ts";
import { ModelStore } from "../model/store.ts";
import type { Logger } from "../observe/log.ts";
import { MetricsRegistry } from "../observe/metrics.ts";
import { type RenderOptions, renderRuleset } from "../nft/render.ts";
import { formatRuleset, TABLE_NAME } from "../nft/ruleset.ts";
import { NftDataplane, readLiveVips } from "../nft/dataplane.ts";
import { ConntrackCommand, NftCommandExecutor, type NftExecutor } from "../nft/executor.ts";
import { NftLibExecutor } from "../nft/lib_executor.ts";
import { BIG_SCRIPT_BYTES, RoutedExecutor } from "../nft/routed_executor.ts";
import { DnsServer } from "../dns/serve/server.ts";
import { loadStandaloneOnce } from "../sources/standalone/load_once.ts";
import { StandaloneSource } from "../sources/standalone/standalone_source.ts";
import type { ManifestLimits } from "../sources/manifests/parse_file.ts";
import { pinAllocation } from "../ipam/lock.ts";
import { writeFileAtomic } from "../ipam/state_file.ts";
import { Daemon, DEFAULT_HEALTH_TIMEOUT_MS } from "./daemon.ts";
import { MallocTrimmer } from "../observe/memory.ts";
import { KernelMonitor, OwnProcesses } from "../nft/kernel_monitor.ts";
import { takeInheritedSockets } from "../dns/serve/inherited_sockets.ts";
import { VERSION } from "../version.ts";

/**
 * This host's own addresses in interface order, loopback and link-local left out (the node-local
 * DNS address is link-local): what "the node's addresses" means for load-balancer source ranges,
 * and, the first of each family, for `--nodeport-addresses primary` outside Kubernetes mode.
 */
export function localNodeIps(): IpText[] {
  const out = new Set<IpText>();
  for (const nic of Deno.networkInterfaces()) {
    const ip = canonicalIp(nic.address);
    if (!ip) continue;
    const v4 = ipFamilyOf(ip) === 4;
    if (v4 ? /^(127|169\.254)\./.test(ip) : ip === "::1" || /^fe[89ab]/i.test(ip)) continue;
    out.add(ip);
  }
  return [...out];
}

/** The addresses NodePorts and health checks listen on, under `--nodeport-addresses`. */
function nodePortAddressesFor(config: Config, nodeIps: readonly IpText[]): readonly Cidr[] {
  return config.nodePortPrimary ? primaryCidrs(nodeIps) : config.nodePortAddresses;
}

/** The nft render options the configuration implies, on a node with these addresses. */
export function renderOptionsFor(
  config: Config,
  nodeIps: readonly IpText[] = localNodeIps(),
): RenderOptions {
  return {
    clusterCidrs: config.clusterCidrs,
    nodeName: config.hostname,
    nodePortAddresses: nodePortAddressesFor(config, nodeIps),
    ...(config.nodePortPrimary ? { nodePortPrimary: true } : {}),
    ...(config.masqueradeAll ? { masqueradeAll: true } : {}),
    ...(config.localDetect.mode !== "ClusterCIDR" ? { localDetect: config.localDetect } : {}),
    serviceCidrs: config.serviceCidrs,
    nodeIps: [...nodeIps].sort(),
    ...(config.nodeLabels[ZONE_LABEL] ? { zone: config.nodeLabels[ZONE_LABEL] } : {}),
    ...(config.dnsBind
      ? { dnsNotrack: [{ address: config.dnsBind.hostname, port: config.dnsBind.port }] }
      : {}),
  };
}

/**
 * The nft executor: libnftables in process (no process spawn per transaction) when the library
 * loads and --allow-ffi is granted, with big transactions and full listings in an `nft` child so
 * their parse trees never count in the daemon's memory (routed_executor.ts); else the `nft`
 * command. `SVCGATE_NFT_EXECUTOR=command` forces the command (e.g. to put a wrapper `nft` on
 * PATH); `=libnftables` runs everything in process and makes the library's absence an error.
 */
export function chooseNftExecutor(log: Logger, own?: OwnProcesses): NftExecutor {
  const commandOptions = own ? { onSpawn: (pid: number) => own.add(pid) } : {};
  const wanted = Deno.env.get("SVCGATE_NFT_EXECUTOR") ?? "auto";
  if (!["auto", "libnftables", "command"].includes(wanted)) {
    throw new Error(
      `Cannot use SVCGATE_NFT_EXECUTOR="${wanted}": expected "auto", "libnftables" or "command"`,
    );
  }
  if (wanted === "command") {
    log.info("nftables through the nft command", { reason: "SVCGATE_NFT_EXECUTOR=command" });
    return new NftCommandExecutor(commandOptions);
  }
  const lib = NftLibExecutor.tryOpen();
  if (lib && wanted === "libnftables") {
    log.info("nftables through libnftables in process", { library: lib.path });
    return lib;
  }
  if (lib) {
    log.info("nftables through libnftables in process, big calls through the nft command", {
      library: lib.path,
      bigScriptBytes: BIG_SCRIPT_BYTES,
    });
    return new RoutedExecutor({ small: lib, big: new NftCommandExecutor(commandOptions), log });
  }
  if (wanted === "libnftables") {
    throw new Error(
      `Cannot use libnftables (SVCGATE_NFT_EXECUTOR=libnftables): ${NftLibExecutor.unavailableReason}`,
    );
  }
  log.info("nftables through the nft command", { reason: NftLibExecutor.unavailableReason });
  return new NftCommandExecutor(commandOptions);
}

/** The Kubernetes source's options the configuration implies. */
function kubeSourceOptions(config: Config, log: Logger, metrics: MetricsRegistry) {
  return {
    ...(config.kubeconfig ? { kubeconfigPath: config.kubeconfig } : {}),
    ...(config.master ? { master: config.master } : {}),
    useEndpoints: config.useEndpoints,
    nodeName: config.hostname,
    keepPodNames: config.endpointPodNames,
    syncTimeoutMs: config.initialSyncTimeoutMs,
    log: log.child("kube"),
    metrics,
    objectLimits: manifestLimits(config).objects,
  };
}

/** The bounds on input the configuration gives (`--manifest-max-*`, `--max-*`). */
function manifestLimits({ limits }: Config): ManifestLimits {
  return {
    fileBytes: limits.manifestFileBytes,
    documents: limits.manifestDocuments,
    depth: limits.manifestDepth,
    documentTokens: limits.manifestDocumentTokens,
    objects: {
      servicePorts: limits.servicePorts,
      sliceEndpoints: limits.sliceEndpoints,
      subsetEndpoints: limits.subsetEndpoints,
    },
  };
}

function requireSource(config: Config): "manifests" | "kube" {
  if (config.manifests) return "manifests";
  if (config.kubeconfig || config.master) return "kube";
  if (Deno.env.get("KUBECONFIG") || Deno.env.get("KUBERNETES_SERVICE_HOST")) return "kube";
  throw new Error(
    "No source of services: give --manifests PATH (standalone) or --kubeconfig PATH " +
      "(or run in a cluster, or set KUBECONFIG)",
  );
}

/**
 * Builds the daemon for `svcgate run`.
 *
 * @example
 * ```ts
 * const daemon = await buildDaemon(config, log, new MetricsRegistry());
 * await daemon.start();
 * ```
 */
export async function buildDaemon(
  config: Config,
  log: Logger,
  metrics: MetricsRegistry,
  options: {
    /** Module DNS workers run; main.ts passes itself so a bundle needs no second file. */
    readonly dnsWorkerUrl?: string;
  } = {},
): Promise<Daemon> {
  const kind = requireSource(config);
  const own = new OwnProcesses();
  const executor = chooseNftExecutor(log.child("nft"), own);
  const dataplane = new NftDataplane({
    executor,
    conntrack: new ConntrackCommand(),
    renderOptions: renderOptionsFor(config),
    log: log.child("nft"),
    metrics,
  });
  // Socket activation: systemd holds the DNS sockets across restarts (inherited_sockets.ts).
  const inherited = config.dnsBind ? takeInheritedSockets(config.dnsBind) : null;
  if (inherited) {
    log.info("DNS serves the sockets passed by systemd", {
      udpFd: inherited.udpFd,
      tcpFd: inherited.tcpFd ?? "none",
    });
  }
  const dns = config.dnsBind
    ? new DnsServer({
      bind: config.dnsBind,
      clusterDomain: config.clusterDomain,
      ttl: config.dnsTtl,
      workers: config.dnsWorkers,
      reverseCidrs: [...config.serviceCidrs, ...config.clusterCidrs],
      ...(config.upstreams ? { upstreams: config.upstreams } : {}),
      allowRecursion: config.dnsAllowRecursion,
      // The node's resolver (issue 15): its own addresses recurse, its resolv.conf must give
      // upstreams, per-zone forwarding and the cache in outages.
      allowNodeAddresses: config.dnsResolver.allowNodeAddresses,
      requireUpstreams: true,
      ...(config.dnsResolver.resolvConf ? { resolvConfPath: config.dnsResolver.resolvConf } : {}),
      cacheSize: config.dnsResolver.cacheSize,
      forwarding: {
        zones: config.dnsResolver.forwardZones,
        staleMs: config.dnsResolver.serveStaleMs,
        prefetchHits: config.dnsResolver.prefetchHits,
        maxTtl: config.dnsResolver.cacheMaxTtl,
        maxNegativeTtl: config.dnsResolver.cacheMaxNegativeTtl,
      },
      tcpIdleTimeoutMs: config.dnsTcp.idleTimeoutMs,
      tcpLimits: {
        maxConnections: config.dnsTcp.maxConnections,
        maxConnectionsPerIp: config.dnsTcp.maxConnectionsPerIp,
        ioTimeoutMs: config.dnsTcp.ioTimeoutMs,
        maxLifetimeMs: config.dnsTcp.maxLifetimeMs,
        maxQueries: config.dnsTcp.maxQueries,
      },
      rrlResponsesPerSecond: config.dnsRrl,
      answers: {
        strictSpec: config.dnsStrictSpec,
        podRecords: config.podRecords,
        endpointPodNames: config.endpointPodNames,
        autopath: config.autopath,
        clientNamespaces: config.clientNamespaces,
        // Standalone: the manifests' endpoints say which namespace a client is in.
        clientNamespacesFromEndpoints: kind === "manifests",
      },
      ...(options.dnsWorkerUrl ? { workerUrl: options.dnsWorkerUrl } : {}),
      ...(inherited ? { inheritedSockets: inherited } : {}),
      reusePort: config.reusePort,
      log: log.child("dns"),
      metrics,
    })
    : null;
  const common = {
    log,
    metrics,
    dataplane,
    dns,
    minSyncPeriodMs: config.minSyncPeriodMs,
    syncPeriodMs: config.syncPeriodMs,
    initialSyncTimeoutMs: config.initialSyncTimeoutMs,
    // As kube-proxy: twice the sync period (svcgate's drift-check period), 60 s when it is off.
    healthTimeoutMs: config.syncPeriodMs > 0 ? 2 * config.syncPeriodMs : DEFAULT_HEALTH_TIMEOUT_MS,
    healthzBind: config.healthzBind,
    metricsBind: config.metricsBind,
    serviceHealth: {
      nodeName: config.hostname,
      nodePortAddresses: nodePortAddressesFor(config, localNodeIps()),
    },
    conntrack: config.conntrack,
    trimmer: new MallocTrimmer(),
    kernelMonitor: new KernelMonitor({ table: TABLE_NAME, own, log: log.child("nft") }),
    savedSnapshot: { stateDir: config.stateDir, version: VERSION },
    // A lame duck helps only a process listening beside this one; with socket activation the
    // queries wait in systemd's sockets instead.
    lameDuckMs: config.reusePort && !inherited ? config.dnsLameDuckMs : 0,
    reusePort: config.reusePort,
  };
  if (kind === "kube") {
    // Loaded only in Kubernetes mode: even its Watch alone (kube_access.ts) costs ~30 MB at import.
    const { KubeSource } = await import("../sources/kube/kube_source.ts");
    const { loadKubeConfig } = await import("../sources/kube/config.ts");
    const options = kubeSourceOptions(config, log, metrics);
    // Bad connection settings are a configuration error, reported before anything starts.
    loadKubeConfig(options);
    // This node's pods: their namespaces for the search path on the server and verified pods.
    const nodePods = dns && (config.autopath || config.podRecords === "verified")
      ? {
        nodeName: config.hostname,
        onChange: (pods: ReadonlyMap<string, string>) => dns.setNodePods(pods),
      }
      : undefined;
    return new Daemon({
      ...common,
      source: new KubeSource({ ...options, ...(nodePods ? { nodePods } : {}) }),
    });
  }
  const source = new StandaloneSource({
    ...standaloneOptions(config, log),
    // The VIPs the kernel serves now: a lost state file is rebuilt from them.
    liveVips: await readLiveVips(executor),
    metrics,
  });
  return new Daemon({ ...common, source });
}

/** The standalone source's options the configuration implies. */
function standaloneOptions(config: Config, log: Logger) {
  return {
    manifests: config.manifests!,
    serviceCidrs: config.serviceCidrs,
    stateDir: config.stateDir,
    keepPodNames: config.endpointPodNames,
    log,
    limits: manifestLimits(config),
  };
}

/**
 * `svcgate render`: the exact ruleset for the source, as nft text, computed without root.
 * In standalone mode VIPs are allocated as `run` would (reading, never writing, --state-dir).
 */
export async function renderForConfig(
  config: Config,
  log: Logger,
): Promise<{ text: string; errors: string[] }> {
  const store = new ModelStore();
  const errors: string[] = [];
  if (requireSource(config) === "manifests") {
    const once = await loadStandaloneOnce(standaloneOptions(config, log));
    errors.push(...once.errors);
    store.replaceAll({
      services: once.services,
      endpointSets: once.load.endpointSets,
      namespaces: once.load.namespaces,
    });
  } else {
    const { KubeSource } = await import("../sources/kube/kube_source.ts");
    const source = new KubeSource(kubeSourceOptions(config, log, new MetricsRegistry()));
    await source.start({ store, requestSync: () => {} });
    await source.stop();
  }
  const ruleset = renderRuleset(store.commit().snapshot, renderOptionsFor(config));
  for (const w of ruleset.warnings) log.warn(w);
  return { text: formatRuleset(ruleset), errors };
}

/** `svcgate cleanup`: deletes the svcgate tables (both families). */
export async function cleanupDataplane(log: Logger): Promise<void> {
  const executor = chooseNftExecutor(log.child("nft"));
  const dataplane = new NftDataplane({
    executor,
    renderOptions: { clusterCidrs: [], nodeName: "", nodePortAddresses: [] },
    log: log.child("nft"),
  });
  await dataplane.cleanup();
  log.info("removed the svcgate nftables tables");
}

/**
 * `svcgate ipam pin`: writes the VIPs every service gets into a lock file beside the manifests,
 * so every node given the same files uses the same VIPs.
 */
export async function pinVipsForConfig(
  config: Config,
  log: Logger,
): Promise<{ summary: string; errors: string[] }> {
  if (!config.manifests) throw new Error("ipam pin needs --manifests PATH");
  const once = await loadStandaloneOnce(standaloneOptions(config, log));
  const result = pinAllocation(once.allocation, once.lock ?? undefined);
  await writeFileAtomic(once.lockPath, result.text);
  const count = Object.keys(result.lock.services).length;
  return { summary: `pinned ${count} services in ${once.lockPath}`, errors: [...once.errors] };
}
