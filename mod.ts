/**
 * svcgate as a library: the typed model and its snapshot, the sources (manifest files and the
 * Kubernetes API), the nftables dataplane, the cluster DNS server, VIP allocation, health checks
 * and the daemon that wires them together.
 *
 * @example
 * ```ts
 * import { ModelStore, renderRuleset, formatRuleset, loadManifestTexts } from "./mod.ts";
 *
 * const load = loadManifestTexts([{ path: "web.yaml", text: await Deno.readTextFile("web.yaml") }]);
 * const store = new ModelStore();
 * store.replaceAll(load);
 * const ruleset = renderRuleset(store.commit().snapshot, {
 *   clusterCidrs: [],
 *   nodeName: "node-1",
 *   nodePortAddresses: [],
 * });
 * console.log(formatRuleset(ruleset));
 * ```
 * @module
 */

export type {
  Endpoint,
  EndpointPort,
  EndpointSet,
  IpFamily,
  Protocol,
  Service,
  ServiceKey,
  ServicePort,
  ServiceType,
  TrafficPolicy,
} from "./src/model/types.ts";
export { SERVICE_NAME_LABEL, SERVICE_PROXY_NAME_LABEL, serviceKey } from "./src/model/types.ts";
export type { Cidr, IpAddress } from "./src/model/ip.ts";
export {
  canonicalIp,
  cidrContains,
  formatIp,
  parseCidr,
  parseIp,
  parseReverseName,
  reverseName,
} from "./src/model/ip.ts";
export type { Backend, ResolvedPort, ServiceEntry, Snapshot } from "./src/model/snapshot.ts";
export { buildServiceEntry, EMPTY_SNAPSHOT, publishedEndpoints } from "./src/model/snapshot.ts";
export type {
  EndpointCategories,
  EndpointConditions,
  NodeTopology,
  TrafficPolicies,
} from "./src/model/topology.ts";
export { categorizeEndpoints } from "./src/model/topology.ts";
export type { ChangeSet, Commit, ModelState } from "./src/model/store.ts";
export { ModelStore } from "./src/model/store.ts";

export type { Source, SourceSink, SourceStatus } from "./src/sources/source.ts";
export type { ValidationError } from "./src/sources/objects/validate.ts";
export { formatError } from "./src/sources/objects/validate.ts";
export { parseEndpoints } from "./src/sources/objects/endpoints.ts";
export { parseEndpointSlice } from "./src/sources/objects/endpoint_slice.ts";
export { parseService } from "./src/sources/objects/service.ts";
export type { ManifestLoad } from "./src/sources/manifests/load.ts";
export { loadManifestTexts } from "./src/sources/manifests/load.ts";
export { readManifests } from "./src/sources/manifests/read.ts";
export { ManifestSource } from "./src/sources/manifests/source.ts";
export type { KubeSourceOptions } from "./src/sources/kube/kube_source.ts";
export { KubeSource } from "./src/sources/kube/kube_source.ts";
export type { StandaloneSourceOptions } from "./src/sources/standalone/standalone_source.ts";
export { StandaloneSource } from "./src/sources/standalone/standalone_source.ts";

export type { RenderOptions } from "./src/nft/render.ts";
export { renderRuleset } from "./src/nft/render.ts";
export type { Ruleset } from "./src/nft/ruleset.ts";
export { formatRuleset } from "./src/nft/ruleset.ts";
export type { NftExecutor } from "./src/nft/executor.ts";
export { ConntrackCommand, NftCommandExecutor, NftError } from "./src/nft/executor.ts";
export { NftDataplane } from "./src/nft/dataplane.ts";

export type { DnsAnswerOptions, DnsServerOptions } from "./src/dns/serve/engine_setup.ts";
export { DnsServer } from "./src/dns/serve/server.ts";

export { VipAllocator } from "./src/ipam/vip_allocator.ts";
export { pinVips } from "./src/ipam/lock.ts";
export { HealthChecker } from "./src/health/checker.ts";

export type { Config } from "./src/config/flags.ts";
export { parseArgs, UsageError } from "./src/config/flags.ts";
export type { DaemonParts } from "./src/daemon/daemon.ts";
export { Daemon } from "./src/daemon/daemon.ts";
export { SyncLoop } from "./src/daemon/sync_loop.ts";
export { buildDaemon } from "./src/daemon/compose.ts";
export type { Logger } from "./src/observe/log.ts";
export { createLogger, silentLogger } from "./src/observe/log.ts";
export { MetricsRegistry } from "./src/observe/metrics.ts";
export { VERSION } from "./src/version.ts";
