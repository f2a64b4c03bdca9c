/** Freezes the public API of mod.ts: a change to this list is a deliberate API change. */
import * as mod from "../mod.ts";

Deno.test("mod.ts exports exactly the public API", () => {
  const expected = [
    "ConntrackCommand",
    "Daemon",
    "DnsServer",
    "EMPTY_SNAPSHOT",
    "HealthChecker",
    "KubeSource",
    "ManifestSource",
    "MetricsRegistry",
    "ModelStore",
    "NftCommandExecutor",
    "NftDataplane",
    "NftError",
    "SERVICE_NAME_LABEL",
    "SERVICE_PROXY_NAME_LABEL",
    "StandaloneSource",
    "SyncLoop",
    "UsageError",
    "VERSION",
    "VipAllocator",
    "buildDaemon",
    "buildServiceEntry",
    "canonicalIp",
    "categorizeEndpoints",
    "cidrContains",
    "createLogger",
    "formatError",
    "formatIp",
    "formatRuleset",
    "loadManifestTexts",
    "parseArgs",
    "parseCidr",
    "parseEndpointSlice",
    "parseEndpoints",
    "parseIp",
    "parseReverseName",
    "parseService",
    "pinVips",
    "publishedEndpoints",
    "readManifests",
    "renderRuleset",
    "reverseName",
    "serviceKey",
    "silentLogger",
  ];
  const actual = Object.keys(mod).sort();
  if (JSON.stringify(actual) !== JSON.stringify(expected)) {
    throw new Error(`mod.ts exports changed:\n${JSON.stringify(actual, null, 2)}`);
  }
});
