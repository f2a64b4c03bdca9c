/**
 * Command line: subcommands, flags (kube-proxy and CoreDNS names where one exists), defaults,
 * validation and help text. Pure: the caller passes argv and the host facts it needs.
 * @module
 */

import { type Cidr, parseCidr, parseIp } from "../model/ip.ts";

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
  readonly minSyncPeriodMs: number;
  readonly syncPeriodMs: number;
  readonly initialSyncTimeoutMs: number;
  /** null disables the listener (an empty flag value). */
  readonly healthzBind: HostPort | null;
  readonly metricsBind: HostPort | null;
  readonly logFormat: "text" | "json";
  readonly logLevel: "debug" | "info" | "warn" | "error";
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

type Kind = "string" | "bool" | "cidrs" | "hostport" | "duration" | "int" | "list";

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
    help: "CIDRs of local addresses that accept NodePorts (default: all local addresses)",
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
    help: "Directory for persistent state (allocated VIPs)",
    commands: SOURCE,
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
  "pod-records": "insecure|verified|disabled",
  "client-namespace": "CIDR=NAMESPACE[,...]",
  string: "VALUE",
  cidrs: "CIDR[,CIDR]",
  hostport: "IP:PORT",
  duration: "DURATION",
  int: "N",
  list: "IP[:PORT][,...]",
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

/** Parses a duration such as `5ms`, `1.5s`, `2m` or `1h` into milliseconds. */
export function parseDuration(text: string): number | null {
  const m = text.match(/^(\d+(?:\.\d+)?)(ms|s|m|h)$/);
  if (!m) return null;
  const scale = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as "ms" | "s" | "m" | "h"];
  return Number(m[1]) * scale;
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
  const clientNamespaces = parseClientNamespaces(value("client-namespace"));
  if (typeof clientNamespaces === "string") fail("client-namespace", clientNamespaces);
  if (value("manifests") !== "" && (value("kubeconfig") !== "" || value("master") !== "")) {
    throw new UsageError(
      "--manifests cannot be combined with --kubeconfig or --master: choose one source",
      command,
    );
  }
  return {
    ...(value("manifests") !== "" ? { manifests: value("manifests") } : {}),
    ...(value("kubeconfig") !== "" ? { kubeconfig: value("kubeconfig") } : {}),
    ...(value("master") !== "" ? { master: value("master") } : {}),
    useEndpoints: bool("use-endpoints"),
    clusterDomain,
    clusterCidrs,
    serviceCidrs,
    hostname: value("hostname-override") || host.hostname,
    nodePortAddresses: cidrs("nodeport-addresses"),
    dnsBind,
    dnsTtl,
    dnsWorkers,
    upstreams,
    dnsAllowRecursion,
    dnsStrictSpec: bool("dns-strict-spec"),
    podRecords: oneOf("pod-records", ["insecure", "verified", "disabled"] as const),
    endpointPodNames: bool("endpoint-pod-names"),
    autopath: bool("autopath"),
    clientNamespaces: clientNamespaces as readonly ClientNamespace[],
    stateDir: value("state-dir"),
    minSyncPeriodMs: duration("min-sync-period"),
    syncPeriodMs: duration("sync-period"),
    initialSyncTimeoutMs: duration("initial-sync-timeout"),
    healthzBind: hostPort("healthz-bind-address"),
    metricsBind: hostPort("metrics-bind-address"),
    logFormat: oneOf("log-format", ["text", "json"] as const),
    logLevel: oneOf("log-level", ["debug", "info", "warn", "error"] as const),
  };
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
