import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { helpText, parseArgs, UsageError } from "./flags.ts";
import { parseSize } from "./flag_values.ts";
import { TEST_HOST, usageError } from "../../tests/support/usage_error.ts";

const HOST = TEST_HOST;

Deno.test("flags: defaults", () => {
  const { command, config } = parseArgs(["run"], HOST);
  assertEquals(command, "run");
  assertEquals(
    {
      clusterDomain: config.clusterDomain,
      serviceCidrs: config.serviceCidrs.map((c) => c.text),
      hostname: config.hostname,
      dnsBind: config.dnsBind,
      dnsTtl: config.dnsTtl,
      dnsWorkers: config.dnsWorkers,
      minSyncPeriodMs: config.minSyncPeriodMs,
      healthzBind: config.healthzBind,
      metricsBind: config.metricsBind,
      allow: config.dnsAllowRecursion.map((c) => c.text),
      upstreams: config.upstreams,
      dnsTcp: config.dnsTcp,
      dnsRrl: config.dnsRrl,
      dnsStrictSpec: config.dnsStrictSpec,
      podRecords: config.podRecords,
      endpointPodNames: config.endpointPodNames,
      autopath: config.autopath,
      clientNamespaces: config.clientNamespaces,
    },
    {
      clusterDomain: "cluster.local",
      serviceCidrs: ["10.96.0.0/12"],
      hostname: "node-a",
      dnsBind: { hostname: "169.254.20.10", port: 53 },
      dnsTtl: 30,
      dnsWorkers: 0,
      minSyncPeriodMs: 5,
      healthzBind: { hostname: "0.0.0.0", port: 10256 },
      metricsBind: { hostname: "127.0.0.1", port: 10249 },
      allow: ["127.0.0.0/8", "::1/128"],
      upstreams: null,
      dnsTcp: {
        maxConnections: 1024,
        maxConnectionsPerIp: 64,
        idleTimeoutMs: 10_000,
        ioTimeoutMs: 5_000,
        maxLifetimeMs: 120_000,
        maxQueries: 0,
      },
      dnsRrl: 0,
      // CoreDNS's answers, kubeadm's `pods insecure`, the search path on the server.
      dnsStrictSpec: false,
      podRecords: "insecure",
      endpointPodNames: false,
      autopath: true,
      clientNamespaces: [],
    },
  );
});

Deno.test("flags: values in both spellings, lists and durations", () => {
  const { config } = parseArgs([
    "run",
    "--manifests=deploy/examples",
    "--service-cidr",
    "198.19.0.0/16,2001:db8:1::/112",
    "--cluster-cidr=198.18.0.0/16",
    "--hostname-override",
    "n1",
    "--dns-bind-address",
    "[2001:db8::1]:5353",
    "--upstream",
    "198.18.0.53,198.18.0.54:5300",
    "--min-sync-period",
    "1.5s",
    "--use-endpoints",
    "--dns-ttl=0",
    "--dns-workers=2",
    "--metrics-bind-address=",
  ], HOST);
  assertEquals(config.manifests, "deploy/examples");
  assertEquals(config.serviceCidrs.map((c) => c.text), ["198.19.0.0/16", "2001:db8:1::/112"]);
  assertEquals(config.dnsAllowRecursion.map((c) => c.text), [
    "127.0.0.0/8",
    "::1/128",
    "198.18.0.0/16",
  ]);
  assertEquals(config.hostname, "n1");
  assertEquals(config.dnsBind, { hostname: "2001:db8::1", port: 5353 });
  assertEquals(config.upstreams, ["198.18.0.53:53", "198.18.0.54:5300"]);
  assertEquals(config.minSyncPeriodMs, 1500);
  assertEquals(config.useEndpoints, true);
  assertEquals(config.dnsTtl, 0);
  assertEquals(config.dnsWorkers, 2);
  assertEquals(config.metricsBind, null);
  assertEquals(parseArgs(["run", "--dns=false"], HOST).config.dnsBind, null);
  assertEquals(parseArgs(["ipam", "pin", "--manifests", "x"], HOST).command, "ipam-pin");
  assertEquals(parseArgs(["render", "--help"], HOST).help, true);
});

Deno.test("flags: the DNS limits of issue 20", () => {
  const { config } = parseArgs([
    "run",
    "--dns-tcp-max-clients=200",
    "--dns-tcp-max-clients-per-ip=200",
    "--dns-tcp-idle-timeout=3s",
    "--dns-tcp-io-timeout=500ms",
    "--dns-tcp-max-lifetime=0",
    "--dns-tcp-max-queries=1000",
    "--dns-rrl=100",
  ], HOST);
  assertEquals(config.dnsTcp, {
    maxConnections: 200,
    maxConnectionsPerIp: 200,
    idleTimeoutMs: 3000,
    ioTimeoutMs: 500,
    maxLifetimeMs: 0,
    maxQueries: 1000,
  });
  assertEquals(config.dnsRrl, 100);
});

Deno.test("flags: bad input names the flag and quotes the value", () => {
  const cases: [string[], string][] = [
    [["frobnicate"], 'unknown command "frobnicate"'],
    [["ipam", "grow"], 'unknown ipam subcommand "grow"'],
    [["run", "--no-such-flag"], "unknown flag --no-such-flag"],
    [["version", "--manifests", "x"], 'unknown flag --manifests for "version"'],
    [["run", "--manifests"], "flag --manifests needs a value"],
    [["run", "extra"], 'unexpected argument "extra"'],
    [["run", "--dns-workers", "65"], 'invalid --dns-workers "65": expected a whole number 0-64'],
    [
      ["run", "--service-cidr", "10.0.0/8"],
      'invalid --service-cidr "10.0.0/8": address is invalid',
    ],
    [
      ["run", "--service-cidr", "198.19.0.0/33"],
      'invalid --service-cidr "198.19.0.0/33": prefix is invalid',
    ],
    [
      ["run", "--service-cidr", "198.19.0.0/16,198.20.0.0/16"],
      'invalid --service-cidr "198.19.0.0/16,198.20.0.0/16": at most one CIDR per IP family',
    ],
    [
      ["run", "--cluster-cidr", "198.18.0.0"],
      'invalid --cluster-cidr "198.18.0.0": missing "/prefix"',
    ],
    [["run", "--min-sync-period", "5"], 'invalid --min-sync-period "5": not a duration'],
    [["run", "--sync-period", "1d"], 'invalid --sync-period "1d": not a duration'],
    [["run", "--dns-ttl", "3601"], 'invalid --dns-ttl "3601": expected whole seconds 0-3600'],
    [["run", "--dns-ttl", "-1"], 'invalid --dns-ttl "-1": expected whole seconds 0-3600'],
    [
      ["run", "--dns-bind-address", "169.254.20.10"],
      'invalid --dns-bind-address "169.254.20.10": expected IP:PORT or [IPv6]:PORT',
    ],
    [
      ["run", "--dns-bind-address", "node:53"],
      'invalid --dns-bind-address "node:53": "node" is not an IP address',
    ],
    [
      ["run", "--healthz-bind-address", "0.0.0.0:70000"],
      'invalid --healthz-bind-address "0.0.0.0:70000": 70000 is not a port (0-65535)',
    ],
    [["run", "--log-format", "yaml"], 'invalid --log-format "yaml": expected one of text, json'],
    [["run", "--dns=maybe"], 'invalid --dns "maybe": expected true or false'],
    [
      ["run", "--dns-tcp-max-clients", "0"],
      'invalid --dns-tcp-max-clients "0": expected a whole number 1-65536',
    ],
    [
      ["run", "--dns-tcp-max-clients-per-ip", "65", "--dns-tcp-max-clients", "64"],
      'invalid --dns-tcp-max-clients-per-ip "65": more than --dns-tcp-max-clients (64)',
    ],
    [
      ["run", "--dns-tcp-idle-timeout", "0"],
      'invalid --dns-tcp-idle-timeout "0": expected 1ms-24h',
    ],
    [
      ["run", "--dns-tcp-io-timeout", "0.5ms"],
      'invalid --dns-tcp-io-timeout "0.5ms": expected 1ms-24h',
    ],
    [
      ["run", "--dns-tcp-max-lifetime", "2d"],
      'invalid --dns-tcp-max-lifetime "2d": not a duration',
    ],
    [["run", "--dns-rrl", "-5"], 'invalid --dns-rrl "-5": expected a whole number 0-1000000'],
    [
      ["run", "--pod-records", "trusted"],
      'invalid --pod-records "trusted": expected one of insecure, verified, disabled',
    ],
    [
      ["run", "--client-namespace", "198.18.5.0/24"],
      'invalid --client-namespace "198.18.5.0/24": "198.18.5.0/24" is not CIDR=NAMESPACE',
    ],
    [
      ["run", "--client-namespace", "198.18.5.0/33=web"],
      'invalid --client-namespace "198.18.5.0/33=web": "198.18.5.0/33" is not a CIDR: prefix is invalid',
    ],
    [
      ["run", "--client-namespace", "198.18.5.0/24=Web_1"],
      'invalid --client-namespace "198.18.5.0/24=Web_1": "Web_1" is not a namespace name (lower-case letters, digits and "-", at most 63)',
    ],
    [["run", "--autopath=no"], 'invalid --autopath "no": expected true or false'],
    [
      ["run", "--upstream", "dns.google"],
      'invalid --upstream "dns.google": "dns.google" is not IP[:PORT]',
    ],
    [
      ["run", "--cluster-domain", "-bad-.local"],
      'invalid --cluster-domain "-bad-.local": not a DNS domain',
    ],
    [
      ["run", "--manifests", "a", "--kubeconfig", "b"],
      "--manifests cannot be combined with --kubeconfig or --master: choose one source",
    ],
  ];
  for (const [argv, message] of cases) {
    assertEquals(usageError(argv), message, argv.join(" "));
  }
});

Deno.test("flags: input limits, their defaults and their values", () => {
  assertEquals(parseArgs(["run"], HOST).config.limits, {
    manifestFileBytes: 16 * 2 ** 20,
    manifestDocuments: 50_000,
    manifestDepth: 100,
    manifestDocumentTokens: 150_000,
    servicePorts: 1000,
    sliceEndpoints: 1000,
    subsetEndpoints: 1000,
  });
  const { config } = parseArgs([
    "render",
    ...["--manifest-max-file-size", "512KiB", "--manifest-max-documents=5"],
    ...["--manifest-max-depth", "20", "--manifest-max-document-tokens", "9000"],
    ...["--max-service-ports", "10", "--max-endpoints-per-slice=100"],
    ...["--max-endpoints-per-subset", "50"],
  ], HOST);
  assertEquals(config.limits, {
    manifestFileBytes: 524288,
    manifestDocuments: 5,
    manifestDepth: 20,
    manifestDocumentTokens: 9000,
    servicePorts: 10,
    sliceEndpoints: 100,
    subsetEndpoints: 50,
  });
  assertEquals(
    ["1048576", "512KiB", "16MiB", "1GiB", "16M", "1.5MiB", ""].map(parseSize),
    [1048576, 524288, 16777216, 1073741824, null, null, null],
  );
  const bad: [string[], string][] = [
    [
      ["run", "--manifest-max-file-size", "16MB"],
      'invalid --manifest-max-file-size "16MB": expected a size such as 16MiB, 512KiB or 1048576',
    ],
    [
      ["run", "--max-endpoints-per-slice", "0"],
      'invalid --max-endpoints-per-slice "0": expected a whole number 1-1000000000',
    ],
  ];
  for (const [argv, message] of bad) {
    assertEquals(usageError(argv), message, argv.join(" "));
  }
});

Deno.test("flags: every command has help listing only its flags", () => {
  const run = helpText("run");
  const version = helpText("version");
  assertEquals(run.includes("--dns-bind-address IP:PORT"), true, "run help");
  assertEquals(version.includes("--manifests"), false, "version help");
  assertEquals(helpText("help").includes("ipam pin"), true, "overview");
});

Deno.test("flags: kube-proxy cutover flags, values and errors", () => {
  // [argv, what the config holds, or the error]
  const show = (c: ReturnType<typeof parseArgs>["config"]) =>
    `labels=${JSON.stringify(c.nodeLabels)} conntrack=${Object.values(c.conntrack).join(",")}`;
  const defaults = "86400,3600,false,0,0";
  const table: [string[], string][] = [
    [["run"], `labels={} conntrack=32768,131072,${defaults}`],
    [
      [
        "run",
        "--conntrack-max-per-core=0",
        "--conntrack-min=1000",
        "--conntrack-tcp-timeout-established=2h",
        "--conntrack-tcp-timeout-close-wait=90s",
        "--conntrack-tcp-be-liberal",
        "--conntrack-udp-timeout=1.5s",
        "--conntrack-udp-timeout-stream=2m",
      ],
      "labels={} conntrack=0,1000,7200,90,true,1,120",
    ],
    [
      ["run", "--conntrack-min", "-1"],
      'invalid --conntrack-min "-1": expected a whole number 0-2147483647',
    ],
    [
      ["run", "--conntrack-udp-timeout", "30"],
      'invalid --conntrack-udp-timeout "30": not a duration',
    ],
    [
      ["run", "--node-labels", "topology.kubernetes.io/zone=zone-a,rack=r1"],
      `labels={"topology.kubernetes.io/zone":"zone-a","rack":"r1"} conntrack=32768,131072,${defaults}`,
    ],
    [
      ["run", "--node-labels", "zone"],
      'invalid --node-labels "zone": "zone" is not KEY=VALUE with a label key',
    ],
    [
      ["run", "--node-labels", "a=b c"],
      'invalid --node-labels "a=b c": "b c" is not a label value (letters, digits, "-", "_", ".")',
    ],
  ];
  for (const [argv, expected] of table) {
    let got: string;
    try {
      got = show(parseArgs(argv, HOST).config);
    } catch (e) {
      if (!(e instanceof UsageError)) throw e;
      got = e.message;
    }
    assertEquals(got, expected, argv.join(" "));
  }
});

Deno.test("flags: DNS answers and the search path on the server", () => {
  const { config } = parseArgs([
    "run",
    "--dns-strict-spec",
    "--pod-records=verified",
    "--endpoint-pod-names",
    "--autopath=false",
    "--client-namespace",
    "198.18.5.0/24=web, 2001:db8:5::/64=batch",
  ], HOST);
  assertEquals(config.dnsStrictSpec, true);
  assertEquals(config.podRecords, "verified");
  assertEquals(config.endpointPodNames, true);
  assertEquals(config.autopath, false);
  assertEquals(
    config.clientNamespaces.map((c) => `${c.cidr.text}=${c.namespace}`),
    ["198.18.5.0/24=web", "2001:db8:5::/64=batch"],
  );
  assertEquals(helpText("run").includes("--pod-records insecure|verified|disabled"), true);
});

Deno.test("flags: restarts without a lost query (--dns-lameduck, --reuse-port)", () => {
  const cases: { argv: string[]; want: { dnsLameDuckMs: number; reusePort: boolean } | string }[] =
    [
      { argv: ["run"], want: { dnsLameDuckMs: 5000, reusePort: false } },
      {
        argv: ["run", "--reuse-port", "--dns-lameduck", "2s"],
        want: { dnsLameDuckMs: 2000, reusePort: true },
      },
      { argv: ["run", "--dns-lameduck", "0"], want: { dnsLameDuckMs: 0, reusePort: false } },
      { argv: ["run", "--dns-lameduck", "0s"], want: { dnsLameDuckMs: 0, reusePort: false } },
      {
        argv: ["run", "--dns-lameduck", "soon"],
        want: 'invalid --dns-lameduck "soon": not a duration',
      },
      {
        argv: ["run", "--dns-lameduck", "11m"],
        want: 'invalid --dns-lameduck "11m": expected 0-10m',
      },
    ];
  for (const c of cases) {
    if (typeof c.want === "string") {
      assertEquals(usageError(c.argv), c.want, c.argv.join(" "));
      continue;
    }
    const { config } = parseArgs(c.argv, HOST);
    assertEquals({ dnsLameDuckMs: config.dnsLameDuckMs, reusePort: config.reusePort }, c.want);
  }
});
