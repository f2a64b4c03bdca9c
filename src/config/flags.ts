/**
 * Command line: subcommands, the configuration they parse into, validation and help text; the
 * flags themselves are in flag_list.ts, their value parsers in flag_values.ts. Pure: the caller
 * passes argv and the host facts it needs.
 * @module
 */

import type { Cidr } from "../model/ip.ts";
import type { ConntrackSettings } from "../daemon/conntrack_sysctls.ts";
import type { LocalDetect } from "../nft/render_options.ts";
import { FLAGS } from "./flag_list.ts";
import { parseDuration } from "../model/text.ts";
import {
  parseCidrList,
  parseClientNamespaces,
  parseHostPort,
  parseLabels,
  parseSize,
  parseUpstream,
} from "./flag_values.ts";
import {
  DNS_RESOLVER_METAVARS,
  type DnsResolverConfig,
  parseDnsResolverFlags,
} from "./dns_flags.ts";

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
  /** The node's resolver (issue 15): `--resolv-conf`, `--forward-zone`, the cache's flags. */
  readonly dnsResolver: DnsResolverConfig;
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
  ...DNS_RESOLVER_METAVARS,
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
    const before = raw.get(name);
    raw.set(name, spec.repeatable && before !== undefined ? `${before}\n${value}` : value);
  }
  return { command, help, config: buildConfig(raw, host, command) };
}

function buildConfig(raw: Map<string, string>, host: HostFacts, command: Command): Config {
  const value = (name: string) => raw.get(name) ?? FLAGS.find((f) => f.name === name)!.default;
  const fail = (name: string, why: string, quoted = value(name)): never => {
    throw new UsageError(`invalid --${name} ${JSON.stringify(quoted)}: ${why}`, command);
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
  const dnsResolver = parseDnsResolverFlags(
    { value, given: (name) => raw.has(name), fail, duration },
    clusterDomain,
  );
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
    dnsResolver,
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
