import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import {
  decodeSnapshot,
  encodeSnapshot,
  routedOnly,
  SNAPSHOT_FORMAT,
  SNAPSHOT_MAGIC,
} from "./snapshot_codec.ts";
import { hash53 } from "./hash.ts";
import { ModelStore } from "./store.ts";
import type { ServiceEntry, Snapshot } from "./snapshot.ts";
import { cidr, ip } from "../../tests/support/model_values.ts";
import { testService } from "../../tests/support/test_service.ts";
import { endpointSet } from "./endpoint_set.ts";
import { fixtureSnapshot } from "../../tests/support/dns_fixture.ts";

const VERSION = "9.9.9";

/** Every kind of service and endpoint field the model holds, in a store's snapshot. */
function richSnapshot(): Snapshot {
  const store = new ModelStore();
  store.setService(testService("default/lb", {
    type: "LoadBalancer",
    clusterIPs: [ip("198.19.0.30"), ip("2001:db8:ffff::30")],
    ports: [{ name: "http", protocol: "TCP", port: 80, targetPort: "web", nodePort: 30080 }],
    externalIPs: [ip("198.18.5.5")],
    loadBalancerIPs: [ip("198.18.6.6")],
    loadBalancerSourceRanges: [cidr("198.18.0.0/16"), cidr("2001:db8::/32")],
    externalTrafficPolicy: "Local",
    healthCheckNodePort: 32000,
    sessionAffinity: "ClientIP",
    sessionAffinityTimeoutSeconds: 600,
    trafficDistribution: "PreferClose",
    labels: { "service.kubernetes.io/topology-mode": "Auto" },
    annotations: { "svcgate.io/health-check": "http:/" },
  }));
  store.setEndpointSet(endpointSet({
    namespace: "default",
    serviceName: "lb",
    id: "lb-abc",
    ports: [{ name: "web", protocol: "TCP", port: 8080 }],
    addressFamily: 4,
    triggerTime: 1234,
    endpoints: [
      {
        address: ip("198.18.0.10"),
        ready: true,
        serving: true,
        terminating: false,
        nodeName: "node-a",
        zone: "z1",
        hostname: "web-0",
        zoneHints: ["z1", "z2"],
        nodeHints: ["node-a"],
        podName: "web-0",
      },
      { address: ip("198.18.0.11"), ready: false, serving: true, terminating: true },
    ],
  }));
  store.setEndpointSet(endpointSet({
    namespace: "default",
    serviceName: "lb",
    id: "lb-v6",
    ports: [{ name: "web", protocol: "TCP", port: 8080 }],
    addressFamily: 6,
    endpoints: [{ address: ip("2001:db8::10"), ready: true, serving: true, terminating: false }],
  }));
  store.setService(testService("prod/ext", { type: "ExternalName", externalName: "example.org" }));
  store.setNamespaces(["default", "prod", "empty"]);
  return store.commit().snapshot;
}

/** Keys and fingerprints: equal fingerprints mean the same model content (snapshot.ts). */
function prints(s: Snapshot): [string, number][] {
  return [...s.services.entries()].map(([k, e]) => [k, e.fingerprint] as [string, number]).sort();
}

Deno.test("snapshot codec: a snapshot comes back with the same services, fingerprints and namespaces", () => {
  for (
    const [what, snapshot] of [["rich", richSnapshot()], [
      "dns fixture",
      fixtureSnapshot(),
    ]] as const
  ) {
    const text = encodeSnapshot(snapshot, VERSION, 1700000000000);
    const r = decodeSnapshot(text, VERSION);
    assert(r.ok, `${what}: ${!r.ok && r.error}`);
    assertEquals(prints(r.snapshot), prints(snapshot), what);
    assertEquals([...r.snapshot.namespaces].sort(), [...snapshot.namespaces].sort(), what);
    assertEquals(r.snapshot.version, 0, `${what}: committed by another process`);
    assertEquals(r.savedAt, 1700000000000);
    // What readers read: resolved ports and endpoints, equal too.
    for (const [key, entry] of snapshot.services) {
      const back: ServiceEntry = r.snapshot.services.get(key)!;
      assertEquals(JSON.stringify(back.ports), JSON.stringify(entry.ports), `${what} ${key} ports`);
      assertEquals(back.endpoints, entry.endpoints, `${what} ${key} endpoints`);
    }
  }
});

Deno.test("snapshot codec: damaged, foreign and malformed texts are refused with a reason", () => {
  const good = encodeSnapshot(richSnapshot(), VERSION, 1);
  const nl = good.indexOf("\n");
  const header = good.slice(0, nl);
  const body = good.slice(nl + 1);
  /** A text with a body of our choice and its true hash (what a bug, not damage, would write). */
  const hashed = (b: string, count = 0) => ({
    text: `${SNAPSHOT_MAGIC} ${SNAPSHOT_FORMAT} ${VERSION} 1 ${
      hash53(b).toString(16)
    } ${count}\n${b}`,
  });
  const cases: { what: string; text: string; kind: "corrupt" | "foreign"; says: string }[] = [
    { what: "empty", text: "", kind: "corrupt", says: "header" },
    { what: "not ours", text: "hello\nworld", kind: "corrupt", says: "header" },
    { what: "header only", text: header, kind: "corrupt", says: "ends after its header" },
    {
      what: "truncated",
      text: good.slice(0, good.length - 10),
      kind: "corrupt",
      says: "does not match the hash",
    },
    {
      what: "one byte changed",
      text: `${header}\n${body.replace("198.19.0.30", "198.19.0.31")}`,
      kind: "corrupt",
      says: "does not match the hash",
    },
    {
      what: "another svcgate version",
      text: good.replace(` ${VERSION} `, " 0.0.1 "),
      kind: "foreign",
      says: 'written by svcgate "0.0.1"',
    },
    {
      what: "another format",
      text: good.replace(` ${SNAPSHOT_FORMAT} `, " 7 "),
      kind: "foreign",
      says: 'in format "7"',
    },
    { what: "not JSON", ...hashed("{"), kind: "corrupt", says: "not JSON" },
    {
      what: "no services list",
      ...hashed('{"namespaces":[]}'),
      kind: "corrupt",
      says: "services must be a list",
    },
    {
      what: "count differs",
      ...hashed('{"namespaces":[],"services":[]}', 3),
      kind: "corrupt",
      says: "header says 3",
    },
    {
      what: "bad address",
      ...hashed(body.replace('"198.19.0.30"', '"198.19.0.300"'), 2),
      kind: "corrupt",
      says: '"198.19.0.300" is not a canonical IP address',
    },
    {
      what: "bad endpoint",
      ...hashed(body.replace('["198.18.0.11",6]', '["198.18.0.11","x"]'), 2),
      kind: "corrupt",
      says: "endpoint flags must be an integer",
    },
  ];
  for (const c of cases) {
    const r = decodeSnapshot(c.text, VERSION);
    assert(!r.ok, c.what);
    assertEquals(r.kind, c.kind, `${c.what}: ${r.error}`);
    assert(r.error.includes(c.says), `${c.what}: "${r.error}" should say "${c.says}"`);
  }
});

Deno.test("snapshot codec: only services whose every VIP the kernel routes are kept", () => {
  const snapshot = richSnapshot();
  const fixture = fixtureSnapshot();
  const cases: { what: string; snapshot: Snapshot; routed: string[]; dropped: string[] }[] = [
    {
      what: "both VIPs routed",
      snapshot,
      routed: ["198.19.0.30", "2001:db8:ffff::30"],
      dropped: [],
    },
    { what: "one family missing", snapshot, routed: ["198.19.0.30"], dropped: ["default/lb"] },
    {
      what: "nothing routed: headless, ExternalName and unallocated services stay",
      snapshot: fixture,
      routed: [],
      dropped: ["default/named", "default/plain", "default/web", "prod/api"],
    },
  ];
  for (const c of cases) {
    const r = routedOnly(c.snapshot, new Set(c.routed));
    assertEquals([...r.dropped].sort(), c.dropped, c.what);
    assertEquals(
      [...r.snapshot.services.keys()].sort(),
      [...c.snapshot.services.keys()].filter((k) => !c.dropped.includes(k)).sort(),
      c.what,
    );
  }
});
