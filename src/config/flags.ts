/**
 * Command line: subcommands, flags (kube-proxy and CoreDNS names where one exists), defaults,
 * validation and help text. Pure: the caller passes argv and the host facts it needs.
 * @module
 */

import { type Cidr, parseCidr, parseIp } from "../model/ip.ts";
import type { ConntrackSettings } from "../daemon/conntrack_sysctls.ts";
import type { LocalDetect } from "../nft/render_options.ts";

/** An address to bind: host and port. */
export interface HostPort {
  readonly hostname: string;
  readonly port: number;
}

/** Everything the daemon and the other commands are configured with. */
export interface Config {
  readonly manifests?: string;
  readonly kubeconfig?: string;
  readonly master?: string;
  readonly useEndpoints: boolean;
  readonly clusterDomain: string;
  readonly clusterCidrs: readonly Cidr[];
  readonly serviceCidrs: readonly Cidr[];
  readonly hostname: string;
  readonly nodePortAddresses: readonly Cidr[];
  /** null when DNS is disabled (`--dns=false`). */
  readonly dnsBind: HostPort | null;
  readonly dnsTtl: number;
  /** DNS engines in workers; 0 runs the engine on the main thread. */
  readonly dnsWorkers: number;
  /** Upstream resolvers as `ip:port`; null means the host's resolv.conf. */
  readonly upstreams: readonly string[] | null;
  readonly dnsAllowRecursion: readonly Cidr[];
  /** DNS over TCP: connection limits and timeouts (`--dns-tcp-*`); 0 lifetime/queries: no cap. */
  readonly dnsTcp: DnsTcpConfig;
  /** UDP responses per second per source address (`--dns-rrl`); 0: no limit. */
  readonly dnsRrl: number;
  // DNS answers as CoreDNS gives them, and the search path on the server (issue 16).
  /** `--dns-strict-spec`: the letter of the Kubernetes DNS spec, none of CoreDNS's extras. */
  readonly dnsStrictSpec: boolean;
  /** `--pod-records`: how `a-b-c-d.<ns>.pod.<zone>` is answered. */
  readonly podRecords: "insecure" | "verified" | "disabled";
  /** `--endpoint-pod-names`: endpoints without a hostname are named after their pod. */
  readonly endpointPodNames: boolean;
  /** `--autopath`: resolve the search path of clients whose namespace is known. */
  readonly autopath: boolean;
  /** `--client-namespace`: the namespace of clients in these CIDRs. */
  readonly clientNamespaces: readonly ClientNamespace[];
  readonly stateDir: string;
  // Restarts and upgrades without a lost query (issue 15).
  /** `--dns-lameduck`: after SIGTERM, keep answering this long while /readyz says not ready. */
  readonly dnsLameDuckMs: number;
  /** `--reuse-port`: SO_REUSEPORT on the DNS sockets and HTTP listeners (overlapping processes). */
  readonly reusePort: boolean;
  readonly minSyncPeriodMs: number;
  readonly syncPeriodMs: number;
  readonly initialSyncTimeoutMs: number;
  /** null disables the listener (an empty flag value). */
  readonly healthzBind: HostPort | null;
  readonly metricsBind: HostPort | null;
  readonly logFormat: "text" | "json";
  readonly logLevel: "debug" | "info" | "warn" | "error";
  /** Bounds on input: manifest files, and the lists inside objects from either source. */
  readonly limits: InputLimits;
  // kube-proxy cutover (issue 17)
  /** `--node-labels`: this node's labels in standalone mode (its zone, for topology). */
  readonly nodeLabels: Readonly<Record<string, string>>;
  /** kube-proxy's conntrack flags (`--conntrack-*`); 0 leaves a sysctl alone. */
  readonly conntrack: ConntrackSettings;
  /** `--masquerade-all`: masquerade every connection to a ClusterIP. */
  readonly masqueradeAll: boolean;
  /** `--detect-local-mode` with its `--pod-bridge-interface` / `--pod-interface-name-prefix`. */
  readonly localDetect: LocalDetect;
  /** `--nodeport-addresses primary`: NodePorts on the node's primary addresses only. */
  readonly nodePortPrimary: boolean;
}

/** The `--manifest-max-*` and `--max-*` flags (see src/sources/README.md). */
export interface InputLimits {
  readonly manifestFileBytes: number;
  readonly manifestDocuments: number;
  readonly manifestDepth: number;
  readonly manifestDocumentTokens: number;
  readonly servicePorts: number;
  readonly sliceEndpoints: number;
  readonly subsetEndpoints: number;
}

/** The DNS-over-TCP limits (`--dns-tcp-*`). */
export interface DnsTcpConfig {
  readonly maxConnections: number;
  readonly maxConnectionsPerIp: number;
  readonly idleTimeoutMs: number;
  readonly ioTimeoutMs: number;
  readonly maxLifetimeMs: number;
  readonly maxQueries: number;
}

/** `--client-namespace CIDR=NAMESPACE`: clients in the CIDR belong to the namespace. */
export interface ClientNamespace {
  readonly cidr: Cidr;
  readonly namespace: string;
}

/** The subcommands. */
export type Command = "run" | "render" | "cleanup" | "version" | "ipam-pin" | "help";

/** A successfully parsed command line. */
export interface Invocation {
  readonly command: Command;
  readonly config: Config;
  /** True when `--help` was given: print {@link helpText} for the command. */
  readonly help: boolean;
}

/** Facts about the host the defaults depend on. */
export interface HostFacts {
  readonly hostname: string;
}

type Kind = "string" | "bool" | "cidrs" | "hostport" | "duration" | "int" | "list" | "size";

interface FlagSpec {
  readonly name: string;
  readonly kind: Kind;
  readonly default: string;
  readonly help: string;
  readonly commands: readonly Command[];
}

const DAEMON: Command[] = ["run"];
const SOURCE: Command[] = ["run", "render", "ipam-pin"];
const DATAPLANE: Command[] = ["run", "render"];

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
    help: "Clients allowed to resolve non-cluster names (default: loopback and --cluster-cidr)",
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
    default: "10000",
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

/** How a flag's value is shown in help: by flag name first, then by kind. */
const METAVAR: Record<string, string> = {
  manifests: "PATH",
  kubeconfig: "PATH",
  "state-dir": "DIR",
  master: "URL",
  "cluster-domain": "DOMAIN",
  "hostname-override": "NAME",
  "log-format": "text|json",
  "log-level": "LEVEL",
  "node-labels": "KEY=VALUE[,...]",
  "nodeport-addresses": "CIDR[,CIDR]|primary",
  "detect-local-mode": "MODE",
  "pod-bridge-interface": "NAME",
  "pod-interface-name-prefix": "PREFIX",
  "pod-records": "insecure|verified|disabled",
  "client-namespace": "CIDR=NAMESPACE[,...]",
  string: "VALUE",
  cidrs: "CIDR[,CIDR]",
  hostport: "IP:PORT",
  duration: "DURATION",
  int: "N",
  list: "IP[:PORT][,...]",
  size: "SIZE",
};

const COMMANDS: Record<Command, string> = {
  run: "Run the daemon: watch the source, program nftables, serve DNS",
  render: "Print the nftables ruleset svcgate would program for the source (no root needed)",
  cleanup: "Remove everything svcgate added to nftables",
  "ipam-pin": "Write allocated VIPs into a lock file beside the manifests (ipam pin)",
  version: "Print the version",
  help: "Print this help",
};

/** Thrown for a bad command line; main.ts prints it and exits 2. */
export class UsageError extends Error {
  constructor(message: string, readonly command: Command | null) {
    super(message);
    this.name = "UsageError";
  }
}

const DURATION_UNITS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  "µs": 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/**
 * Parses a duration as Go does (kube-proxy's flags): `5ms`, `1.5s`, `2m`, `1h`, `24h0m0s`, or `0`,
 * into milliseconds.
 */
export function parseDuration(text: string): number | null {
  if (text === "0") return 0;
  if (!/^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/.test(text)) return null;
  let ms = 0;
  for (const [, n, unit] of text.matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g)) {
    ms += Number(n) * DURATION_UNITS[unit];
  }
  return ms;
}

/** Parses a size in bytes: `1048576`, `512KiB`, `16MiB` or `1GiB`. */
export function parseSize(text: string): number | null {
  const m = text.match(/^(\d+)(B|KiB|MiB|GiB)?$/);
  if (!m) return null;
  return Number(m[1]) * { B: 1, KiB: 1024, MiB: 2 ** 20, GiB: 2 ** 30 }[m[2] ?? "B"]!;
}

/** Parses `IP:PORT` or `[IPv6]:PORT`. */
export function parseHostPort(text: string): HostPort | string {
  const m = text.match(/^\[([^\]]+)\]:(\d+)$/) ?? text.match(/^([^:]+):(\d+)$/);
  if (!m) return "expected IP:PORT or [IPv6]:PORT";
  if (!parseIp(m[1])) return `"${m[1]}" is not an IP address`;
  const port = Number(m[2]);
  if (port < 0 || port > 65535) return `${port} is not a port (0-65535)`;
  return { hostname: m[1], port };
}

function parseCidrList(text: string): readonly Cidr[] | string {
  if (text === "") return [];
  const out: Cidr[] = [];
  for (const part of text.split(",")) {
    const cidr = parseCidr(part.trim());
    if (typeof cidr === "string") return cidr.replace(/^"[^"]*" is not a CIDR: /, "");
    out.push(cidr);
  }
  return out;
}

function parseUpstream(text: string): string | null {
  const hp = parseHostPort(text);
  if (typeof hp !== "string") return text.startsWith("[") ? text : `${hp.hostname}:${hp.port}`;
  const ip = parseIp(text);
  if (!ip) return null;
  return ip.family === 6 ? `[${text}]:53` : `${text}:53`;
}

const NAMESPACE = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/** Parses `CIDR=NAMESPACE[,...]`; returns the problem as text. */
export function parseClientNamespaces(text: string): ClientNamespace[] | string {
  if (text === "") return [];
  const out: ClientNamespace[] = [];
  for (const part of text.split(",")) {
    const item = part.trim();
    const eq = item.indexOf("=");
    if (eq < 0) return `"${item}" is not CIDR=NAMESPACE`;
    const cidr = parseCidr(item.slice(0, eq).trim());
    if (typeof cidr === "string") return cidr;
    const namespace = item.slice(eq + 1).trim();
    if (!NAMESPACE.test(namespace)) {
      return `"${namespace}" is not a namespace name (lower-case letters, digits and "-", at most 63)`;
    }
    out.push({ cidr, namespace });
  }
  return out;
}

function commandOf(word: string | undefined): Command | null {
  switch (word) {
    case "run":
    case "render":
    case "cleanup":
    case "version":
    case "help":
      return word;
    default:
      return null;
  }
}

/**
 * Parses argv (without the program name) into a command and its configuration.
 * Throws {@link UsageError} naming the bad flag or value.
 *
 * @example
 * ```ts
 * const { command, config } = parseArgs(["run", "--manifests", "deploy/examples"], {
 *   hostname: "node-1",
 * });
 * ```
 */
export function parseArgs(argv: readonly string[], host: HostFacts): Invocation {
  let rest = [...argv];
  let command: Command;
  if (rest.length === 0 || rest[0] === "--help" || rest[0] === "-h") {
    command = "help";
    rest = rest.slice(1);
  } else if (rest[0] === "ipam") {
    if (rest[1] !== "pin") {
      throw new UsageError(`unknown ipam subcommand ${JSON.stringify(rest[1] ?? "")}`, null);
    }
    command = "ipam-pin";
    rest = rest.slice(2);
  } else {
    const c = commandOf(rest[0]);
    if (!c) throw new UsageError(`unknown command ${JSON.stringify(rest[0])}`, null);
    command = c;
    rest = rest.slice(1);
  }
  const raw = new Map<string, string>();
  let help = false;
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i];
    if (arg === "--help" || arg === "-h") {
      help = true;
      continue;
    }
    if (!arg.startsWith("--")) {
      throw new UsageError(`unexpected argument ${JSON.stringify(arg)}`, command);
    }
    const eq = arg.indexOf("=");
    const name = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
    const spec = FLAGS.find((f) => f.name === name);
    if (!spec || !spec.commands.includes(command)) {
      const where = spec ? ` for "${command === "ipam-pin" ? "ipam pin" : command}"` : "";
      throw new UsageError(`unknown flag --${name}${where}`, command);
    }
    let value: string;
    if (eq >= 0) value = arg.slice(eq + 1);
    else if (spec.kind === "bool") value = "true";
    else {
      if (i + 1 >= rest.length) throw new UsageError(`flag --${name} needs a value`, command);
      value = rest[++i];
    }
    raw.set(name, value);
  }
  return { command, help, config: buildConfig(raw, host, command) };
}

function buildConfig(raw: Map<string, string>, host: HostFacts, command: Command): Config {
  const value = (name: string) => raw.get(name) ?? FLAGS.find((f) => f.name === name)!.default;
  const fail = (name: string, why: string): never => {
    throw new UsageError(`invalid --${name} ${JSON.stringify(value(name))}: ${why}`, command);
  };
  const bool = (name: string) => {
    const v = value(name);
    if (v !== "true" && v !== "false") fail(name, "expected true or false");
    return v === "true";
  };
  const cidrs = (name: string) => {
    const r = parseCidrList(value(name));
    return typeof r === "string" ? fail(name, r) : r;
  };
  const duration = (name: string) => parseDuration(value(name)) ?? fail(name, "not a duration");
  const hostPort = (name: string): HostPort | null => {
    if (value(name) === "") return null;
    const r = parseHostPort(value(name));
    return typeof r === "string" ? fail(name, r) : r;
  };
  const oneOf = <T extends string>(name: string, allowed: readonly T[]): T => {
    const v = value(name) as T;
    return allowed.includes(v) ? v : fail(name, `expected one of ${allowed.join(", ")}`);
  };
  const positive = (name: string) => {
    const v = value(name);
    return /^\d+$/.test(v) && Number(v) >= 1 && Number(v) <= 1e9
      ? Number(v)
      : fail(name, "expected a whole number 1-1000000000");
  };
  const size = (name: string) => {
    const v = parseSize(value(name));
    return v !== null && v >= 1
      ? v
      : fail(name, "expected a size such as 16MiB, 512KiB or 1048576");
  };
  const clusterDomain = value("cluster-domain").replace(/\.$/, "").toLowerCase();
  if (
    !/^([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$/.test(
      clusterDomain,
    )
  ) {
    fail("cluster-domain", "not a DNS domain");
  }
  const serviceCidrs = cidrs("service-cidr");
  const families = serviceCidrs.map((c) => c.family);
  if (new Set(families).size !== families.length) {
    fail("service-cidr", "at most one CIDR per IP family");
  }
  const ttlText = value("dns-ttl");
  const dnsTtl = /^\d+$/.test(ttlText) && Number(ttlText) <= 3600
    ? Number(ttlText)
    : fail("dns-ttl", "expected whole seconds 0-3600");
  const workersText = value("dns-workers");
  const dnsWorkers = /^\d+$/.test(workersText) && Number(workersText) <= 64
    ? Number(workersText)
    : fail("dns-workers", "expected a whole number 0-64");
  let upstreams: string[] | null = null;
  if (value("upstream") !== "") {
    upstreams = value("upstream").split(",").map((u) =>
      parseUpstream(u.trim()) ?? fail("upstream", `"${u}" is not IP[:PORT]`)
    );
  }
  const clusterCidrs = cidrs("cluster-cidr");
  const allowText = value("dns-allow-recursion");
  const dnsAllowRecursion = allowText === ""
    ? [
      ...(parseCidrList("127.0.0.0/8,::1/128") as Cidr[]),
      ...clusterCidrs,
    ]
    : cidrs("dns-allow-recursion");
  const dnsBind = bool("dns") ? hostPort("dns-bind-address") : null;
  const whole = (name: string, min: number, max: number): number => {
    const v = value(name);
    return /^\d+$/.test(v) && Number(v) >= min && Number(v) <= max
      ? Number(v)
      : fail(name, `expected a whole number ${min}-${max}`);
  };
  const timeout = (name: string, zero: boolean): number => {
    if (zero && value(name) === "0") return 0;
    const ms = duration(name);
    return ms >= 1 && ms <= 86_400_000 && Number.isInteger(ms)
      ? ms
      : fail(name, `expected 1ms-24h${zero ? " or 0" : ""}`);
  };
  const dnsTcp: DnsTcpConfig = {
    maxConnections: whole("dns-tcp-max-clients", 1, 65_536),
    maxConnectionsPerIp: whole("dns-tcp-max-clients-per-ip", 1, 65_536),
    idleTimeoutMs: timeout("dns-tcp-idle-timeout", false),
    ioTimeoutMs: timeout("dns-tcp-io-timeout", false),
    maxLifetimeMs: timeout("dns-tcp-max-lifetime", true),
    maxQueries: whole("dns-tcp-max-queries", 0, 1_000_000_000),
  };
  if (dnsTcp.maxConnectionsPerIp > dnsTcp.maxConnections) {
    fail(
      "dns-tcp-max-clients-per-ip",
      `more than --dns-tcp-max-clients (${dnsTcp.maxConnections})`,
    );
  }
  const dnsRrl = whole("dns-rrl", 0, 1_000_000);
  const clientNamespaces = parseClientNamespaces(value("client-namespace"));
  if (typeof clientNamespaces === "string") fail("client-namespace", clientNamespaces);
  if (value("manifests") !== "" && (value("kubeconfig") !== "" || value("master") !== "")) {
    throw new UsageError(
      "--manifests cannot be combined with --kubeconfig or --master: choose one source",
      command,
    );
  }
  const count = (name: string, max: number): number => {
    const text = value(name);
    return /^\d+$/.test(text) && Number(text) <= max
      ? Number(text)
      : fail(name, `expected a whole number 0-${max}`);
  };
  // kube-proxy truncates durations to whole seconds for sysctls.
  const seconds = (name: string) => Math.floor(duration(name) / 1000);
  const conntrack: ConntrackSettings = {
    maxPerCore: count("conntrack-max-per-core", 2 ** 31 - 1),
    min: count("conntrack-min", 2 ** 31 - 1),
    tcpEstablishedTimeoutSeconds: seconds("conntrack-tcp-timeout-established"),
    tcpCloseWaitTimeoutSeconds: seconds("conntrack-tcp-timeout-close-wait"),
    tcpBeLiberal: bool("conntrack-tcp-be-liberal"),
    udpTimeoutSeconds: seconds("conntrack-udp-timeout"),
    udpStreamTimeoutSeconds: seconds("conntrack-udp-timeout-stream"),
  };
  const ifname = (name: string): string => {
    const v = value(name);
    // Linux interface names: at most 15 bytes, no "/", no whitespace, no quote.
    return /^[^\s/"']{1,15}$/.test(v) ? v : fail(name, "not an interface name (1-15 characters)");
  };
  const detectMode = oneOf(
    "detect-local-mode",
    ["ClusterCIDR", "NodeCIDR", "BridgeInterface", "InterfaceNamePrefix"] as const,
  );
  const localDetect: LocalDetect = detectMode === "BridgeInterface"
    ? { mode: detectMode, bridge: ifname("pod-bridge-interface") }
    : detectMode === "InterfaceNamePrefix"
    ? { mode: detectMode, prefix: ifname("pod-interface-name-prefix") }
    : { mode: detectMode };
  const nodePortPrimary = value("nodeport-addresses") === "primary";
  const nodeLabels = parseLabels(value("node-labels"));
  if (typeof nodeLabels === "string") fail("node-labels", nodeLabels);
  return {
    ...(value("manifests") !== "" ? { manifests: value("manifests") } : {}),
    ...(value("kubeconfig") !== "" ? { kubeconfig: value("kubeconfig") } : {}),
    ...(value("master") !== "" ? { master: value("master") } : {}),
    useEndpoints: bool("use-endpoints"),
    clusterDomain,
    clusterCidrs,
    serviceCidrs,
    hostname: value("hostname-override") || host.hostname,
    nodePortAddresses: nodePortPrimary ? [] : cidrs("nodeport-addresses"),
    dnsBind,
    dnsTtl,
    dnsWorkers,
    upstreams,
    dnsAllowRecursion,
    dnsTcp,
    dnsRrl,
    dnsStrictSpec: bool("dns-strict-spec"),
    podRecords: oneOf("pod-records", ["insecure", "verified", "disabled"] as const),
    endpointPodNames: bool("endpoint-pod-names"),
    autopath: bool("autopath"),
    clientNamespaces: clientNamespaces as readonly ClientNamespace[],
    stateDir: value("state-dir"),
    dnsLameDuckMs: duration("dns-lameduck") <= 600_000
      ? duration("dns-lameduck")
      : fail("dns-lameduck", "expected 0-10m"),
    reusePort: bool("reuse-port"),
    minSyncPeriodMs: duration("min-sync-period"),
    syncPeriodMs: duration("sync-period"),
    initialSyncTimeoutMs: duration("initial-sync-timeout"),
    healthzBind: hostPort("healthz-bind-address"),
    metricsBind: hostPort("metrics-bind-address"),
    logFormat: oneOf("log-format", ["text", "json"] as const),
    logLevel: oneOf("log-level", ["debug", "info", "warn", "error"] as const),
    limits: {
      manifestFileBytes: size("manifest-max-file-size"),
      manifestDocuments: positive("manifest-max-documents"),
      manifestDepth: positive("manifest-max-depth"),
      manifestDocumentTokens: positive("manifest-max-document-tokens"),
      servicePorts: positive("max-service-ports"),
      sliceEndpoints: positive("max-endpoints-per-slice"),
      subsetEndpoints: positive("max-endpoints-per-subset"),
    },
    nodeLabels: nodeLabels as Record<string, string>,
    conntrack,
    masqueradeAll: bool("masquerade-all"),
    localDetect,
    nodePortPrimary,
  };
}

/** `KEY=VALUE[,KEY=VALUE...]` (as kubelet's --node-labels) into a record, or why not. */
function parseLabels(text: string): Record<string, string> | string {
  const out: Record<string, string> = {};
  if (text === "") return out;
  for (const part of text.split(",")) {
    const eq = part.indexOf("=");
    const key = eq < 0 ? part : part.slice(0, eq);
    if (
      eq < 0 ||
      !/^([a-z0-9]([-a-z0-9.]*[a-z0-9])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/.test(key)
    ) {
      return `"${part}" is not KEY=VALUE with a label key`;
    }
    const v = part.slice(eq + 1);
    if (!/^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$/.test(v)) {
      return `"${v}" is not a label value (letters, digits, "-", "_", ".")`;
    }
    out[key] = v;
  }
  return out;
}

/** Help text for a command, or the overview for `help`. */
export function helpText(command: Command): string {
  if (command === "help") {
    const lines = [
      "svcgate: Kubernetes-style Services (nftables NAT + cluster DNS) in one binary",
      "",
      "Usage: svcgate <command> [flags]",
      "",
      "Commands:",
      ...(Object.entries(COMMANDS) as [Command, string][]).map(([c, d]) =>
        `  ${(c === "ipam-pin" ? "ipam pin" : c).padEnd(10)} ${d}`
      ),
      "",
      "Run 'svcgate <command> --help' for its flags.",
    ];
    return lines.join("\n");
  }
  const name = command === "ipam-pin" ? "ipam pin" : command;
  const flags = FLAGS.filter((f) => f.commands.includes(command));
  const lines = [`svcgate ${name}: ${COMMANDS[command]}`, "", `Usage: svcgate ${name} [flags]`];
  if (flags.length > 0) {
    lines.push("", "Flags:");
    for (const f of flags) {
      const arg = f.kind === "bool" ? "" : ` ${METAVAR[f.name] ?? METAVAR[f.kind]}`;
      const def = f.default === "" ? "" : ` (default ${f.default})`;
      lines.push(`  --${f.name}${arg}`, `      ${f.help}${def}`);
    }
  }
  lines.push("  --help", "      Print this help");
  return lines.join("\n");
}
