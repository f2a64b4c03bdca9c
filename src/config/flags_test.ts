import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { helpText, parseArgs, parseDuration, UsageError } from "./flags.ts";

const HOST = { hostname: "node-a" };

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
    let got = "(no error)";
    try {
      parseArgs(argv, HOST);
    } catch (e) {
      if (!(e instanceof UsageError)) throw e;
      got = e.message;
    }
    assertEquals(got, message, argv.join(" "));
  }
});

Deno.test("flags: durations", () => {
  assertEquals(
    ["5ms", "1s", "1.5s", "2m", "1h", "", "s", "5 s"].map(parseDuration),
    [5, 1000, 1500, 120000, 3600000, null, null, null],
  );
});

Deno.test("flags: every command has help listing only its flags", () => {
  const run = helpText("run");
  const version = helpText("version");
  assertEquals(run.includes("--dns-bind-address IP:PORT"), true, "run help");
  assertEquals(version.includes("--manifests"), false, "version help");
  assertEquals(helpText("help").includes("ipam pin"), true, "overview");
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
