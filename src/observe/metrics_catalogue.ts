/**
 * Every metric svcgate exports, declared once: name, help, type, labels and buckets, as
 * kube-proxy's pkg/proxy/metrics/metrics.go. Code asks the registry for a metric by its
 * declaration (`metrics.of(METRICS.nftSyncs)`), so a new metric is one entry here and one call
 * where it is counted. Pure data.
 * @module
 */

/** Seconds buckets from 100 µs to 60 s, for latencies. */
export const LATENCY_BUCKETS: readonly number[] = [
  0.0001,
  0.00025,
  0.0005,
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
  30,
  60,
];

/** Go's prometheus.ExponentialBuckets(start, factor, count). */
function exponentialBuckets(start: number, factor: number, count: number): number[] {
  const out: number[] = [];
  for (let b = start, i = 0; i < count; i++, b *= factor) out.push(b);
  return out;
}

/** Go's prometheus.LinearBuckets(start, width, count). */
function linearBuckets(start: number, width: number, count: number): number[] {
  return Array.from({ length: count }, (_, i) => start + i * width);
}

/** kube-proxy's sync duration buckets: 1 ms doubling to 16.384 s. */
export const KUBE_PROXY_SYNC_BUCKETS: readonly number[] = exponentialBuckets(0.001, 2, 15);

/**
 * kube-proxy's network programming buckets: 0 (its merge() starts with one), 0.25 s, 0.5 s, then
 * every second to 59 s, every 5 s to 115 s, every 30 s to 5 min.
 */
export const KUBE_PROXY_PROGRAMMING_BUCKETS: readonly number[] = [
  0,
  ...linearBuckets(0.25, 0.25, 2),
  ...linearBuckets(1, 1, 59),
  ...linearBuckets(60, 5, 12),
  ...linearBuckets(120, 30, 7),
];

/** One metric as the catalogue declares it. */
export interface MetricDeclaration {
  readonly name: string;
  readonly help: string;
  readonly type: "counter" | "gauge" | "histogram";
  /** Label names, for a labelled metric. */
  readonly labels?: readonly string[];
  /** Upper bounds of a histogram's buckets (default {@link LATENCY_BUCKETS}). */
  readonly buckets?: readonly number[];
}

/** Every metric outside DNS, by the key the code counts it with. */
export const METRICS = {
  // Process
  residentMemory: {
    name: "process_resident_memory_bytes",
    help: "Resident memory size in bytes",
    type: "gauge",
  },
  heapUsed: {
    name: "svcgate_heap_used_bytes",
    help: "V8 heap in use per isolate (main thread, DNS workers), bytes",
    type: "gauge",
    labels: ["isolate"],
  },
  // Daemon and sync loop
  sourceErrors: {
    name: "svcgate_source_errors_total",
    help: "Source failures",
    type: "counter",
  },
  driftCheckFailures: {
    name: "svcgate_drift_check_failures_total",
    help: "Drift checks that failed",
    type: "counter",
  },
  networkProgramming: {
    name: "svcgate_network_programming_duration_seconds",
    help: "From a change reaching the model to rules live and DNS answering from it",
    type: "histogram",
    buckets: LATENCY_BUCKETS,
  },
  syncDuration: {
    name: "svcgate_sync_duration_seconds",
    help: "Duration of one sync",
    type: "histogram",
    buckets: LATENCY_BUCKETS,
  },
  syncFailures: {
    name: "svcgate_sync_failures_total",
    help: "Syncs that failed and will be retried",
    type: "counter",
  },
  snapshotVersion: {
    name: "svcgate_snapshot_version",
    help: "Version of the snapshot serving now",
    type: "gauge",
  },
  services: {
    name: "svcgate_services",
    help: "Services in the serving snapshot",
    type: "gauge",
  },
  // nftables dataplane
  nftSyncs: {
    name: "svcgate_nft_syncs_total",
    help: "nftables syncs that succeeded",
    type: "counter",
    labels: ["mode"],
  },
  nftSyncDuration: {
    name: "svcgate_nft_sync_duration_seconds",
    help: "Time to render, diff and apply a snapshot",
    type: "histogram",
    labels: ["mode"],
    buckets: LATENCY_BUCKETS,
  },
  nftSyncFailures: {
    name: "svcgate_nft_sync_failures_total",
    help: "nftables syncs that failed",
    type: "counter",
    labels: ["stage"],
  },
  nftDriftCheckDuration: {
    name: "svcgate_nft_drift_check_duration_seconds",
    help: "Drift check duration",
    type: "histogram",
    buckets: LATENCY_BUCKETS,
  },
  nftForeignChanges: {
    name: "svcgate_nft_foreign_changes_total",
    help:
      "Transactions by other processes that touched svcgate's tables, seen by nft monitor (each is checked and repaired at once)",
    type: "counter",
  },
  nftDriftRepairs: {
    name: "svcgate_nft_drift_repairs_total",
    help: "Kernel drift found and repaired (someone else changed svcgate's tables)",
    type: "counter",
  },
  nftElements: {
    name: "svcgate_nft_elements",
    help: "Set and map elements in svcgate's tables",
    type: "gauge",
    labels: ["family"],
  },
  nftRules: {
    name: "svcgate_nft_rules",
    help: "Rules in svcgate's tables",
    type: "gauge",
    labels: ["family"],
  },
  nftChains: {
    name: "svcgate_nft_chains",
    help: "Chains in svcgate's tables",
    type: "gauge",
    labels: ["family"],
  },
  nftConntrackDeleted: {
    name: "svcgate_nft_conntrack_deleted_total",
    help: "Stale UDP conntrack entries deleted",
    type: "counter",
  },
  nftConntrackFailures: {
    name: "svcgate_nft_conntrack_failures_total",
    help: "conntrack cleanups that failed",
    type: "counter",
  },
  nftAffinityCleanupFailures: {
    name: "svcgate_nft_affinity_cleanup_failures_total",
    help: "Affinity cleanups that failed",
    type: "counter",
  },
  // Manifest source
  manifestReloadErrors: {
    name: "svcgate_manifest_reload_errors_total",
    help: "Manifest loads that found a new error (the last good state kept serving)",
    type: "counter",
  },
  manifestReloads: {
    name: "svcgate_manifest_reloads_total",
    help: "Manifest states handed to the model",
    type: "counter",
  },
  manifestErrors: {
    name: "svcgate_manifest_errors",
    help: "Current problems in the manifest files, by severity",
    type: "gauge",
    labels: ["severity"],
  },
  manifestObjects: {
    name: "svcgate_manifest_objects",
    help: "Objects loaded from the manifest files",
    type: "gauge",
  },
  // Standalone VIP allocation
  ipamSaveFailures: {
    name: "svcgate_ipam_save_failures_total",
    help: "Failed writes of ipam.json",
    type: "counter",
  },
  ipamErrors: {
    name: "svcgate_ipam_errors",
    help: "Services whose VIP could not be allocated",
    type: "gauge",
  },
  // Health checks
  healthProbes: {
    name: "svcgate_health_probes_total",
    help: "Health-check probes by service and result",
    type: "counter",
    labels: ["service", "result"],
  },
  healthEndpoints: {
    name: "svcgate_health_endpoints",
    help: "Health-checked endpoints by service and verdict (unknown, healthy, unhealthy)",
    type: "gauge",
    labels: ["service", "verdict"],
  },
  healthProbeDuration: {
    name: "svcgate_health_probe_duration_seconds",
    help: "Duration of health-check probes by kind",
    type: "histogram",
    labels: ["kind"],
    buckets: LATENCY_BUCKETS,
  },
  healthConfigErrors: {
    name: "svcgate_health_config_errors",
    help: "Services whose health-check annotations are invalid",
    type: "gauge",
  },
  // Kubernetes source
  kubeRelists: {
    name: "svcgate_kube_relists_total",
    help:
      "Relists because the server could not serve our resourceVersion (reason: expired = 410 Gone, too_large = Too large resource version, continue_expired)",
    type: "counter",
    labels: ["resource", "reason"],
  },
  kubeWatchFailures: {
    name: "svcgate_kube_watch_failures_total",
    help: "Watches that ended in an error",
    type: "counter",
    labels: ["resource", "reason"],
  },
  kubeListRequests: {
    name: "svcgate_kube_list_requests_total",
    help: "List requests (pages) sent",
    type: "counter",
    labels: ["resource"],
  },
  kubeListFailures: {
    name: "svcgate_kube_list_failures_total",
    help: "List requests that failed",
    type: "counter",
    labels: ["resource"],
  },
  kubeHandlerErrors: {
    name: "svcgate_kube_handler_errors_total",
    help: "Exceptions thrown by event handlers",
    type: "counter",
    labels: ["resource"],
  },
  kubeWatchRequests: {
    name: "svcgate_kube_watch_requests_total",
    help: "Watch requests sent",
    type: "counter",
    labels: ["resource"],
  },
  kubeWatchEvents: {
    name: "svcgate_kube_watch_events_total",
    help: "Watch events received",
    type: "counter",
    labels: ["resource", "type"],
  },
  kubeListDuration: {
    name: "svcgate_kube_list_duration_seconds",
    help: "Duration of complete lists",
    type: "histogram",
    labels: ["resource"],
    buckets: LATENCY_BUCKETS,
  },
  kubeInvalidObjects: {
    name: "svcgate_kube_invalid_objects_total",
    help: "API objects rejected by validation (the last good version keeps serving)",
    type: "counter",
    labels: ["resource"],
  },
  kubeSynced: {
    name: "svcgate_kube_synced",
    help: "1 once the initial lists are in the model",
    type: "gauge",
  },
  kubeDegraded: {
    name: "svcgate_kube_degraded",
    help: "1 while an API request is failing and the last state keeps serving",
    type: "gauge",
  },
  kubeObjects: {
    name: "svcgate_kube_objects",
    help: "API objects held in the model",
    type: "gauge",
    labels: ["resource"],
  },
  // Health checks for external load balancers (healthCheckNodePort)
  serviceHealthServers: {
    name: "svcgate_service_health_servers",
    help: "Services whose healthCheckNodePort server is listening",
    type: "gauge",
  },
  serviceHealthListenFailures: {
    name: "svcgate_service_health_listen_failures_total",
    help: "healthCheckNodePort servers that could not listen (port in use); retried each sync",
    type: "counter",
  },
  // kube-proxy's own names (pkg/proxy/metrics/metrics.go), beside svcgate's, so its dashboards
  // and alerts keep working after a cutover: same names, types, labels and buckets.
  kubeProxyHealthz: {
    name: "kubeproxy_proxy_healthz_total",
    help: "Cumulative proxy healthz HTTP status",
    type: "counter",
    labels: ["code"],
  },
  kubeProxyLivez: {
    name: "kubeproxy_proxy_livez_total",
    help: "Cumulative proxy livez HTTP status",
    type: "counter",
    labels: ["code"],
  },
  kubeProxySyncDuration: {
    name: "kubeproxy_sync_proxy_rules_duration_seconds",
    help: "SyncProxyRules latency in seconds",
    type: "histogram",
    labels: ["ip_family"],
    buckets: KUBE_PROXY_SYNC_BUCKETS,
  },
  kubeProxySyncFullDuration: {
    name: "kubeproxy_sync_full_proxy_rules_duration_seconds",
    help: "SyncProxyRules latency in seconds for full resyncs",
    type: "histogram",
    labels: ["ip_family"],
    buckets: KUBE_PROXY_SYNC_BUCKETS,
  },
  kubeProxySyncPartialDuration: {
    name: "kubeproxy_sync_partial_proxy_rules_duration_seconds",
    help: "SyncProxyRules latency in seconds for partial resyncs",
    type: "histogram",
    labels: ["ip_family"],
    buckets: KUBE_PROXY_SYNC_BUCKETS,
  },
  kubeProxyNetworkProgramming: {
    name: "kubeproxy_network_programming_duration_seconds",
    help: "In Cluster Network Programming Latency in seconds",
    type: "histogram",
    labels: ["ip_family"],
    buckets: KUBE_PROXY_PROGRAMMING_BUCKETS,
  },
  kubeProxyLastTimestamp: {
    name: "kubeproxy_sync_proxy_rules_last_timestamp_seconds",
    help: "The last time proxy rules were successfully synced",
    type: "gauge",
    labels: ["ip_family"],
  },
  kubeProxyLastQueuedTimestamp: {
    name: "kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds",
    help: "The last time a sync of proxy rules was queued",
    type: "gauge",
    labels: ["ip_family"],
  },
  kubeProxyEndpointChangesPending: {
    name: "kubeproxy_sync_proxy_rules_endpoint_changes_pending",
    help: "Pending proxy rules Endpoint changes",
    type: "gauge",
  },
  kubeProxyEndpointChangesTotal: {
    name: "kubeproxy_sync_proxy_rules_endpoint_changes_total",
    help: "Cumulative proxy rules Endpoint changes",
    type: "counter",
  },
  kubeProxyServiceChangesPending: {
    name: "kubeproxy_sync_proxy_rules_service_changes_pending",
    help: "Pending proxy rules Service changes",
    type: "gauge",
  },
  kubeProxyServiceChangesTotal: {
    name: "kubeproxy_sync_proxy_rules_service_changes_total",
    help: "Cumulative proxy rules Service changes",
    type: "counter",
  },
  kubeProxyNoLocalEndpoints: {
    // A gauge despite the name, as in kube-proxy: recounted on every sync.
    name: "kubeproxy_sync_proxy_rules_no_local_endpoints_total",
    help: "Number of services with a Local traffic policy and no endpoints",
    type: "gauge",
    labels: ["ip_family", "traffic_policy"],
  },
  kubeProxyNftSyncFailures: {
    name: "kubeproxy_sync_proxy_rules_nftables_sync_failures_total",
    help: "Cumulative proxy nftables sync failures",
    type: "counter",
    labels: ["ip_family"],
  },
} as const satisfies Record<string, MetricDeclaration>;

/** Every metric svcgate's DNS exports, by the key the code counts it with. */
export const DNS_METRICS = {
  requests: {
    name: "svcgate_dns_requests_total",
    help: "DNS queries answered, by query type and rcode",
    type: "counter",
    labels: ["type", "rcode"],
  },
  duration: {
    name: "svcgate_dns_request_duration_seconds",
    help: "Time from receiving a DNS query to sending its answer",
    type: "histogram",
    buckets: LATENCY_BUCKETS,
  },
  cacheHits: {
    name: "svcgate_dns_cache_hits_total",
    help: "Forwarded questions answered from the cache",
    type: "counter",
  },
  cacheMisses: {
    name: "svcgate_dns_cache_misses_total",
    help: "Forwarded questions not in the cache",
    type: "counter",
  },
  upstreamFailures: {
    name: "svcgate_dns_upstream_failures_total",
    help: "Forwarded questions no upstream answered (SERVFAIL)",
    type: "counter",
  },
  dropped: {
    name: "svcgate_dns_dropped_total",
    help: "Packets dropped without an answer (unreadable or responses)",
    type: "counter",
  },
  truncated: {
    name: "svcgate_dns_truncated_total",
    help: "UDP answers truncated (TC set)",
    type: "counter",
  },
  fastPath: {
    name: "svcgate_dns_fast_path_total",
    help: "Queries answered from precomputed wire answers",
    type: "counter",
  },
  internalErrors: {
    name: "svcgate_dns_internal_errors_total",
    help: "Packets whose handling hit a bug (answered SERVFAIL or dropped)",
    type: "counter",
  },
  tcpSlowClients: {
    name: "svcgate_dns_tcp_slow_clients_total",
    help: "TCP connections closed because the client stopped reading its answers",
    type: "counter",
  },
  // Issue 20: the limits that keep one client from wedging, starving or amplifying through DNS.
  limitHits: {
    name: "svcgate_dns_limit_hits_total",
    help:
      "Times a DNS limit was hit, by limit: compression_pointers, parse_budget (FORMERR); tcp_clients, tcp_clients_per_ip (connection refused), tcp_evicted (idle connection closed for a newcomer), tcp_lifetime, tcp_queries, tcp_io_timeout, tcp_buffers (connection closed); rrl (response rate limited)",
    type: "counter",
    labels: ["limit"],
  },
  zoneRecords: {
    name: "svcgate_dns_zone_records",
    help: "Records in the published DNS zone",
    type: "gauge",
  },
  zoneVersion: {
    name: "svcgate_dns_snapshot_version",
    help: "Snapshot version DNS answers from",
    type: "gauge",
  },
  zoneBuild: {
    name: "svcgate_dns_zone_build_seconds",
    help: "Seconds the last DNS zone build took",
    type: "gauge",
  },
  // The search path walked on the server (issue 16). CoreDNS calls the first
  // coredns_autopath_success_total; it is not among the CoreDNS names below (COREDNS_METRICS:
  // requests, responses, cache, forwarding), which came later with issue 15.
  autopathSuccess: {
    name: "svcgate_dns_autopath_success_total",
    help:
      "Queries answered by walking the client's search path on the server (a CNAME to the first name found), as CoreDNS's coredns_autopath_success_total",
    type: "counter",
  },
  autopathMiss: {
    name: "svcgate_dns_autopath_miss_total",
    help:
      "Search paths walked on the server that found nothing (or met an upstream failure): the first answer (NXDOMAIN) went back and the client searches on",
    type: "counter",
  },
  // The node's resolver (issue 15): the cache in outages.
  cacheHitsNegative: {
    name: "svcgate_dns_cache_negative_hits_total",
    help:
      "Forwarded questions answered from the cache with NXDOMAIN or NODATA (a part of the hits)",
    type: "counter",
  },
  staleAnswers: {
    name: "svcgate_dns_cache_stale_answers_total",
    help:
      "Expired answers served (TTL 30, RFC 8767) because no upstream answered, within --dns-serve-stale",
    type: "counter",
  },
  prefetches: {
    name: "svcgate_dns_cache_prefetches_total",
    help: "Often-asked answers refreshed from upstream before they expired",
    type: "counter",
  },
} as const satisfies Record<string, MetricDeclaration>;

/**
 * What svcgate's DNS exports under CoreDNS's names (issue 15), so CoreDNS dashboards and alerts
 * work unchanged: the same label sets, with `server` svcgate's listening address as CoreDNS
 * writes it (`dns://169.254.20.10:53`), `zone`/`zones` "." (one server block, as the default
 * Corefile) and `view` "". Left out: `family` of requests and `plugin` of responses (not tracked).
 * Derived from svcgate's own counts when they are exported (serve/coredns_metrics.ts).
 */
export const COREDNS_METRICS = {
  requests: {
    name: "coredns_dns_requests_total",
    help: "Counter of DNS requests made per zone, protocol and family.",
    type: "counter",
    labels: ["server", "zone", "view", "proto", "type"],
  },
  responses: {
    name: "coredns_dns_responses_total",
    help: "Counter of response status codes.",
    type: "counter",
    labels: ["server", "zone", "view", "rcode"],
  },
  duration: {
    name: "coredns_dns_request_duration_seconds",
    help: "Histogram of the time (in seconds) each request took per zone.",
    type: "histogram",
    labels: ["server", "zone", "view"],
    buckets: LATENCY_BUCKETS,
  },
  cacheEntries: {
    name: "coredns_cache_entries",
    help: "The number of elements in the cache.",
    type: "gauge",
    labels: ["server", "type", "zones", "view"],
  },
  cacheHits: {
    name: "coredns_cache_hits_total",
    help: "The count of cache hits.",
    type: "counter",
    labels: ["server", "type", "zones", "view"],
  },
  cacheMisses: {
    name: "coredns_cache_misses_total",
    help: "The count of cache misses.",
    type: "counter",
    labels: ["server", "zones", "view"],
  },
  cacheServedStale: {
    name: "coredns_cache_served_stale_total",
    help: "The number of requests served from stale cache entries.",
    type: "counter",
    labels: ["server", "zones", "view"],
  },
  cachePrefetch: {
    name: "coredns_cache_prefetch_total",
    help: "The number of times the cache has prefetched a cached item.",
    type: "counter",
    labels: ["server", "zones", "view"],
  },
  forwardRequests: {
    name: "coredns_forward_requests_total",
    help: "Counter of requests made per upstream.",
    type: "counter",
    labels: ["to"],
  },
  forwardResponses: {
    name: "coredns_forward_responses_total",
    help: "Counter of responses received per upstream.",
    type: "counter",
    labels: ["to", "rcode"],
  },
} as const satisfies Record<string, MetricDeclaration>;
