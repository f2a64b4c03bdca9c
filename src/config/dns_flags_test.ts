import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { helpText, parseArgs } from "./flags.ts";
import { TEST_HOST, usageError } from "../../tests/support/usage_error.ts";

const HOST = TEST_HOST;

const resolver = (argv: string[]) => {
  const r = parseArgs(["run", ...argv], HOST).config.dnsResolver;
  return {
    ...r,
    forwardZones: r.forwardZones.map((z) =>
      `${z.zone}=${z.upstreams.map((u) => u.text).join(",")}`
    ),
  };
};

Deno.test("flags: the node's resolver, defaults and values", () => {
  assertEquals(resolver([]), {
    resolvConf: null,
    forwardZones: [],
    serveStaleMs: 3_600_000,
    prefetchHits: 5,
    cacheSize: 10_000,
    cacheMaxTtl: 3600,
    cacheMaxNegativeTtl: 1800,
    allowNodeAddresses: true,
  });
  assertEquals(
    resolver([
      "--resolv-conf",
      "/run/resolv-upstream.conf",
      "--forward-zone",
      "corp.example=198.18.5.53,198.18.5.54:5353",
      "--forward-zone=5.18.198.in-addr.arpa=[2001:db8::53]:53",
      "--dns-serve-stale=0",
      "--dns-prefetch=0",
      "--dns-cache-size=0",
      "--dns-cache-max-ttl=5m",
      "--dns-cache-max-negative-ttl=30s",
      "--dns-allow-recursion=198.18.0.0/16",
    ]),
    {
      resolvConf: "/run/resolv-upstream.conf",
      forwardZones: [
        "corp.example=198.18.5.53:53,198.18.5.54:5353",
        "5.18.198.in-addr.arpa=[2001:db8::53]:53",
      ],
      serveStaleMs: 0,
      prefetchHits: 0,
      cacheSize: 0,
      cacheMaxTtl: 300,
      cacheMaxNegativeTtl: 30,
      allowNodeAddresses: false,
    },
  );
});

Deno.test("flags: bad --forward-zone and cache values exit 2 naming the flag and quoting the value", () => {
  const cases: [string[], string][] = [
    [
      ["--forward-zone", "corp.example"],
      'invalid --forward-zone "corp.example": expected ZONE=IP[:PORT][,IP[:PORT]...]',
    ],
    [
      ["--forward-zone", "ok.example=198.18.5.53", "--forward-zone", "corp.example=dns.corp"],
      'invalid --forward-zone "corp.example=dns.corp": "dns.corp" is not IP[:PORT]',
    ],
    [
      ["--forward-zone", "bad..zone=198.18.5.53"],
      'invalid --forward-zone "bad..zone=198.18.5.53": "bad..zone" is not a DNS zone name',
    ],
    [
      ["--forward-zone", "svc.cluster.local=198.18.5.53"],
      'invalid --forward-zone "svc.cluster.local=198.18.5.53": svcgate answers for "cluster.local" itself',
    ],
    [
      ["--forward-zone", "a.example=198.18.5.53", "--forward-zone", "A.example.=198.18.5.54"],
      'invalid --forward-zone "A.example.=198.18.5.54": zone "a.example" is given twice',
    ],
    [
      ["--forward-zone", ".=198.18.5.53"],
      'invalid --forward-zone ".=198.18.5.53": the root zone is not a forward zone (use --upstream for every other name)',
    ],
    [["--dns-serve-stale", "forever"], 'invalid --dns-serve-stale "forever": not a duration'],
    [["--dns-serve-stale", "200h"], 'invalid --dns-serve-stale "200h": expected 0-168h'],
    [["--dns-prefetch", "-1"], 'invalid --dns-prefetch "-1": expected a whole number 0-1000000'],
    [
      ["--dns-cache-size", "lots"],
      'invalid --dns-cache-size "lots": expected a whole number 0-10000000',
    ],
    [["--dns-cache-max-ttl", "0"], 'invalid --dns-cache-max-ttl "0": expected 1s-168h'],
    [["--resolv-conf="], 'invalid --resolv-conf "": expected a file path'],
  ];
  for (const [argv, want] of cases) {
    assertEquals(usageError(["run", ...argv]), want, argv.join(" "));
  }
});

Deno.test("flags: the node's resolver flags are in run's help, with their defaults", () => {
  const help = helpText("run");
  for (
    const line of [
      "--resolv-conf PATH",
      "--forward-zone ZONE=IP[:PORT][,...]",
      "--dns-serve-stale DURATION",
      "(default 1h)",
      "--dns-prefetch N",
      "--dns-cache-size N",
    ]
  ) {
    assertEquals(help.includes(line), true, line);
  }
});
