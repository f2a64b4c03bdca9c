/**
 * Every flag of every command, in help order: name, kind, default, help and the commands that
 * take it (kube-proxy and CoreDNS names where one exists). Parsing and validation are flags.ts's.
 * Pure data.
 * @module
 */

import type { Command } from "./flags.ts";
import { DNS_RESOLVER_FLAGS } from "./dns_flags.ts";

export type Kind = "string" | "bool" | "cidrs" | "hostport" | "duration" | "int" | "list" | "size";

export interface FlagSpec {
  readonly name: string;
  readonly kind: Kind;
  readonly default: string;
  readonly help: string;
  readonly commands: readonly Command[];
  /** Given several times, the values are kept (joined by "\n"), not the last one only. */
  readonly repeatable?: boolean;
}

export const DAEMON: Command[] = ["run"];
export const SOURCE: Command[] = ["run", "render", "ipam-pin"];
export const DATAPLANE: Command[] = ["run", "render"];

/** Every flag, in help order. */
export const FLAGS: readonly FlagSpec[] = [
  {
    name: "manifests",
    kind: "string",
    default: "",
    help: "File or directory of Service/Endpoints/EndpointSlice manifests (standalone mode)",
    commands: SOURCE,
  },
  {
    name: "kubeconfig",
    kind: "string",
    default: "",
    help: "Path to a kubeconfig (Kubernetes mode; KUBECONFIG and in-cluster config also work)",
    commands: SOURCE,
  },
  {
    name: "master",
    kind: "string",
    default: "",
    help: "Kubernetes API server URL, overriding the kubeconfig's",
    commands: SOURCE,
  },
  {
    name: "use-endpoints",
    kind: "bool",
    default: "false",
    help: "Watch legacy v1 Endpoints instead of EndpointSlices",
    commands: SOURCE,
  },
  {
    name: "cluster-domain",
    kind: "string",
    default: "cluster.local",
    help: "DNS domain of the cluster",
    commands: ["run"],
  },
  {
    name: "cluster-cidr",
    kind: "cidrs",
    default: "",
    help: "Pod CIDRs (comma separated); traffic from outside them to a VIP is masqueraded",
    commands: DATAPLANE,
  },
  {
    name: "service-cidr",
    kind: "cidrs",
    default: "10.96.0.0/12",
    help: "Service VIP CIDRs, one per family (comma separated); VIPs are allocated from them",
    commands: SOURCE,
  },
  {
    name: "hostname-override",
    kind: "string",
    default: "",
    help: "This node's name, matched against endpoints' nodeName (default: the host name)",
    commands: DATAPLANE,
  },
  {
    name: "nodeport-addresses",
    kind: "cidrs",
    default: "",
    help:
      'CIDRs of local addresses that accept NodePorts, or "primary": the node\'s primary address of each family (default: all local addresses)',
    commands: DATAPLANE,
  },
  {
    name: "dns",
    kind: "bool",
    default: "true",
    help: "Serve cluster DNS (--dns=false runs the dataplane only)",
    commands: DAEMON,
  },
  {
    name: "dns-bind-address",
    kind: "hostport",
    default: "169.254.20.10:53",
    help: "IP:PORT the DNS server listens on (UDP and TCP); a node-local address",
    commands: DATAPLANE,
  },
  {
    name: "dns-ttl",
    kind: "int",
    default: "30",
    help: "TTL of cluster answers, seconds (0-3600)",
    commands: DAEMON,
  },
  {
    name: "dns-workers",
    kind: "int",
    default: "0",
    help:
      "DNS engines in worker threads (0: on the main thread, the least memory; N keeps answering through main-thread pauses such as relists, for ~20 MB each)",
    commands: DAEMON,
  },
  {
    name: "upstream",
    kind: "list",
    default: "",
    help: "Upstream resolvers IP[:PORT] (comma separated; default: the host's resolv.conf)",
    commands: DAEMON,
  },
  {
    name: "dns-allow-recursion",
    kind: "cidrs",
    default: "",
    help:
      "Clients allowed to resolve non-cluster names (default: loopback, --cluster-cidr and every address of this node, followed as they change)",
    commands: DAEMON,
  },
  // Issue 20: no DNS client can wedge, starve or amplify (names after knotd's tcp-* settings).
  {
    name: "dns-tcp-max-clients",
    kind: "int",
    default: "1024",
    help: "DNS TCP connections served at once; when all are taken, the client with the most " +
      "loses its oldest idle one to a newcomer",
    commands: DAEMON,
  },
  {
    name: "dns-tcp-max-clients-per-ip",
    kind: "int",
    default: "64",
    help: "DNS TCP connections from one source address; past it new ones are closed at once",
    commands: DAEMON,
  },
  {
    name: "dns-tcp-idle-timeout",
    kind: "duration",
    default: "10s",
    help: "Close a DNS TCP connection that sends and receives nothing this long",
    commands: DAEMON,
  },
  {
    name: "dns-tcp-io-timeout",
    kind: "duration",
    default: "5s",
    help: "A DNS TCP query that started arriving must arrive whole, and an answer being " +
      "written must make progress, within this long",
    commands: DAEMON,
  },
  {
    name: "dns-tcp-max-lifetime",
    kind: "duration",
    default: "2m",
    help: "A DNS TCP connection reads no more after this long, sends what it owes and " +
      "closes (0: no limit)",
    commands: DAEMON,
  },
  {
    name: "dns-tcp-max-queries",
    kind: "int",
    default: "0",
    help: "Queries one DNS TCP connection may ask before it closes after their answers " +
      "(0: no limit)",
    commands: DAEMON,
  },
  {
    name: "dns-rrl",
    kind: "int",
    default: "0",
    help: "UDP responses per second per source address; past it every 2nd is sent " +
      "truncated (the client retries over TCP), the others dropped (0: off)",
    commands: DAEMON,
  },
  // DNS answers as CoreDNS gives them, and the search path on the server (issue 16).
  {
    name: "dns-strict-spec",
    kind: "bool",
    default: "false",
    help:
      "Answer the letter of the Kubernetes DNS spec only, without what CoreDNS answers beyond it (SRV at service and endpoint names, PTR and names of ClusterIP endpoints, ns.dns.<zone>, ...)",
    commands: DAEMON,
  },
  {
    name: "pod-records",
    kind: "string",
    default: "insecure",
    help:
      "How a-b-c-d.<ns>.pod.<zone> is answered: insecure (any IP, as kubeadm's CoreDNS), verified (only the IP of a pod known in that namespace: an endpoint, or this node's pod), disabled",
    commands: DAEMON,
  },
  {
    name: "endpoint-pod-names",
    kind: "bool",
    default: "false",
    help:
      "Name endpoints without a hostname after their pod, not their IP (CoreDNS's endpoint_pod_names)",
    commands: DAEMON,
  },
  {
    name: "autopath",
    kind: "bool",
    default: "true",
    help:
      "Walk the search path on the server for clients whose namespace is known: one answer instead of a query per search domain (CoreDNS's autopath)",
    commands: DAEMON,
  },
  {
    name: "client-namespace",
    kind: "string",
    default: "",
    help:
      "CIDR=NAMESPACE[,...]: clients in the CIDR search as pods of the namespace (for hosts that are not pods svcgate knows)",
    commands: DAEMON,
  },
  // The node's resolver (issue 15): src/config/dns_flags.ts.
  ...DNS_RESOLVER_FLAGS.map((f) => ({
    ...f,
    commands: DAEMON,
    ...(f.name === "forward-zone" ? { repeatable: true } : {}),
  })),
  {
    name: "state-dir",
    kind: "string",
    default: "/var/lib/svcgate",
    help:
      "Directory for persistent state (allocated VIPs; the last committed snapshot, so DNS answers at once after a restart)",
    commands: SOURCE,
  },
  // Restarts and upgrades without a lost query (issue 15).
  {
    name: "dns-lameduck",
    kind: "duration",
    default: "5s",
    help:
      "After SIGTERM keep serving this long while /readyz says not ready, so a process started beside this one takes over (CoreDNS's health lameduck; skipped with socket activation, 0: off)",
    commands: DAEMON,
  },
  {
    name: "reuse-port",
    kind: "bool",
    default: "false",
    help:
      "SO_REUSEPORT on the DNS sockets and the healthz/metrics listeners: a new svcgate can start beside this one (rolling update with maxSurge)",
    commands: DAEMON,
  },
  {
    name: "min-sync-period",
    kind: "duration",
    default: "5ms",
    help: "Bursts of changes closer than this are applied together",
    commands: DAEMON,
  },
  {
    name: "sync-period",
    kind: "duration",
    default: "30s",
    help:
      "How often the kernel ruleset is checked for drift and repaired (every element each 120th time)",
    commands: DAEMON,
  },
  {
    name: "initial-sync-timeout",
    kind: "duration",
    default: "5s",
    help: "How long startup waits for sources before reporting not ready",
    commands: DAEMON,
  },
  {
    name: "healthz-bind-address",
    kind: "hostport",
    default: "0.0.0.0:10256",
    help: "IP:PORT for /healthz and /readyz (empty disables)",
    commands: DAEMON,
  },
  {
    name: "metrics-bind-address",
    kind: "hostport",
    default: "127.0.0.1:10249",
    help: "IP:PORT for /metrics (empty disables)",
    commands: DAEMON,
  },
  // kube-proxy cutover (issue 17): node facts, masquerading, conntrack.
  {
    name: "node-labels",
    kind: "string",
    default: "",
    help:
      "This node's labels, KEY=VALUE[,...] (standalone mode; in Kubernetes mode the Node object's): topology.kubernetes.io/zone is its zone for trafficDistribution and topology hints",
    commands: DATAPLANE,
  },
  {
    name: "masquerade-all",
    kind: "bool",
    default: "false",
    help: "Masquerade every connection to a ClusterIP (as kube-proxy's --masquerade-all)",
    commands: DATAPLANE,
  },
  {
    name: "detect-local-mode",
    kind: "string",
    default: "ClusterCIDR",
    help:
      "How traffic from this node's pods is recognised (not masqueraded): ClusterCIDR (--cluster-cidr), NodeCIDR (the Node's spec.podCIDRs), BridgeInterface (--pod-bridge-interface) or InterfaceNamePrefix (--pod-interface-name-prefix)",
    commands: DATAPLANE,
  },
  {
    name: "pod-bridge-interface",
    kind: "string",
    default: "",
    help: "The bridge pods are attached to (--detect-local-mode BridgeInterface)",
    commands: DATAPLANE,
  },
  {
    name: "pod-interface-name-prefix",
    kind: "string",
    default: "",
    help: "The name prefix of pods' host-side interfaces (--detect-local-mode InterfaceNamePrefix)",
    commands: DATAPLANE,
  },
  {
    name: "conntrack-max-per-core",
    kind: "int",
    default: "32768",
    help:
      "Maximum tracked connections per CPU (nf_conntrack_max = max(this x CPUs, --conntrack-min), only ever raised; 0 leaves it alone)",
    commands: DAEMON,
  },
  {
    name: "conntrack-min",
    kind: "int",
    default: "131072",
    help: "Minimum nf_conntrack_max, whatever the CPU count",
    commands: DAEMON,
  },
  {
    name: "conntrack-tcp-timeout-established",
    kind: "duration",
    default: "24h",
    help: "Idle timeout of established TCP connections in conntrack (0 leaves it alone)",
    commands: DAEMON,
  },
  {
    name: "conntrack-tcp-timeout-close-wait",
    kind: "duration",
    default: "1h",
    help: "Timeout of TCP connections in CLOSE_WAIT in conntrack (0 leaves it alone)",
    commands: DAEMON,
  },
  {
    name: "conntrack-tcp-be-liberal",
    kind: "bool",
    default: "false",
    help: "Set nf_conntrack_tcp_be_liberal: out-of-window TCP packets are not marked INVALID",
    commands: DAEMON,
  },
  {
    name: "conntrack-udp-timeout",
    kind: "duration",
    default: "0s",
    help: "Timeout of unreplied UDP flows in conntrack (0 leaves it alone)",
    commands: DAEMON,
  },
  {
    name: "conntrack-udp-timeout-stream",
    kind: "duration",
    default: "0s",
    help: "Timeout of UDP flows that saw replies (streams) in conntrack (0 leaves it alone)",
    commands: DAEMON,
  },
  {
    name: "manifest-max-file-size",
    kind: "size",
    default: "16MiB",
    help: "Largest manifest file read; a larger one is refused by its size, unread",
    commands: SOURCE,
  },
  {
    name: "manifest-max-documents",
    kind: "int",
    default: "50000",
    help: "Most documents in one manifest file (each item of a List counts)",
    commands: SOURCE,
  },
  {
    name: "manifest-max-depth",
    kind: "int",
    default: "100",
    help: "Deepest [ and { nesting in a manifest file",
    commands: SOURCE,
  },
  {
    name: "manifest-max-document-tokens",
    kind: "int",
    default: "150000",
    help:
      "Most YAML or JSON tokens in one manifest document (a 1,000-endpoint EndpointSlice has ~95,000)",
    commands: SOURCE,
  },
  {
    name: "max-service-ports",
    kind: "int",
    default: "1000",
    help: "Most ports of one Service; a Service with more is rejected",
    commands: SOURCE,
  },
  {
    name: "max-endpoints-per-slice",
    kind: "int",
    default: "1000",
    help:
      "Most endpoints of one EndpointSlice (the API server's limit); a slice with more is rejected",
    commands: SOURCE,
  },
  {
    name: "max-endpoints-per-subset",
    kind: "int",
    default: "1000",
    help: "Most addresses of one v1 Endpoints subset (the Endpoints controller truncates at 1,000)",
    commands: SOURCE,
  },
  {
    name: "log-format",
    kind: "string",
    default: "text",
    help: "text or json",
    commands: ["run", "render", "cleanup", "ipam-pin"],
  },
  {
    name: "log-level",
    kind: "string",
    default: "info",
    help: "debug, info, warn or error",
    commands: ["run", "render", "cleanup", "ipam-pin"],
  },
];
