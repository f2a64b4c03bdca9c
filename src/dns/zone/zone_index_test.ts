import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { ModelStore } from "../../model/store.ts";
import type { Snapshot } from "../../model/snapshot.ts";
import { answerQuery } from "../answer/answer.ts";
import {
  type AnswerTable,
  AnswerTableBuilder,
  applyUpdate,
  buildAnswerTable,
  fastAnswer,
} from "../answer/fast.ts";
import { newQueryScan, scanQuery } from "../codec/decode.ts";
import { encodeMessage } from "../codec/encode.ts";
import { nameToWire } from "../codec/names.ts";
import { type Message, queryMessage, RRClass, RRType } from "../codec/records.ts";
import { EntryPool, slimEntry } from "./slim_entry.ts";
import {
  COREDNS_RECORDS,
  endpointLabel,
  recordOptions,
  STRICT_RECORDS,
  type Zone,
  type ZoneOptions,
} from "./zone.ts";
import { reverseName } from "../../model/ip.ts";
import { buildZone, ZoneIndex } from "./zone_index.ts";
import {
  endpointSet,
  ep,
  FIXTURE_NAMESPACES,
  FIXTURE_REVERSE_CIDRS,
  FIXTURE_SERVICES,
  fixtureSnapshot,
  makeService,
  port,
} from "../../../tests/support/dns_fixture.ts";
import { ip } from "../../../tests/support/model_values.ts";

const BASE: Omit<ZoneOptions, "serial"> = {
  clusterDomain: "cluster.local",
  ttl: 30,
  reverseCidrs: FIXTURE_REVERSE_CIDRS,
  nsAddresses: [ip("169.254.20.10")],
};
/** The letter of the spec (--dns-strict-spec). */
const STRICT_BASE: Omit<ZoneOptions, "serial"> = { ...BASE, strictSpec: true };

/** Both flavours: CoreDNS's answers (the default) and the spec's letter. */
const FLAVOURS: [string, Omit<ZoneOptions, "serial">][] = [
  ["CoreDNS's answers", BASE],
  ["--dns-strict-spec", STRICT_BASE],
];

const TYPES = [
  RRType.A,
  RRType.AAAA,
  RRType.SRV,
  RRType.PTR,
  RRType.CNAME,
  RRType.TXT,
  RRType.SOA,
  RRType.NS,
  RRType.MX,
  RRType.ANY,
];

function query(name: string, type: number): Message {
  return queryMessage([{ name, type, class: RRClass.IN }], { id: 7 });
}

/** The general path's answer as bytes (chases and forwards as text). */
function general(zone: Zone, name: string, type: number): string {
  const r = answerQuery(zone, query(name, type), { recursionAllowed: true });
  if (r.kind === "reply") return [...encodeMessage(r.message)].join(",");
  if (r.kind === "chase") return `chase ${r.target} ${[...encodeMessage(r.message)].join(",")}`;
  if (r.kind === "forward") return `forward ${r.question.name}`;
  return r.kind;
}

/** The fast path's answer as bytes, or "general" when it declines. */
function fast(table: AnswerTable, name: string, type: number): string {
  const q = encodeMessage(query(name, type));
  const scan = newQueryScan();
  if (!scanQuery(q, q.length, scan)) return "unscannable";
  const out = new Uint8Array(65536);
  const n = fastAnswer(table, q, scan, out, 0, 65535, true);
  return n < 0 ? "general" : [...out.subarray(0, n)].join(",");
}

/**
 * Every name either zone holds, their parents and children that do not exist, and pod names,
 * asked with every type through both paths: the incremental zone must answer exactly as the
 * zone built from scratch.
 */
function assertSameAnswers(
  step: string,
  got: Zone,
  table: AnswerTable | AnswerTableBuilder,
  snapshot: Snapshot,
) {
  // A builder holds the names asked so far (engine.ts fills it per first ask): ask the rest
  // now. A stale answer kept for a name would show below; a missing one is added here.
  if (table instanceof AnswerTableBuilder) {
    for (const [name, node] of got.nodes) if (!table.has(name)) table.addNode(got, name, node);
  }
  const gotTable = table instanceof AnswerTableBuilder ? table.view() : table;
  const base = got.options.strictSpec ? STRICT_BASE : BASE;
  const want = buildZone(snapshot, { ...base, serial: got.options.serial });
  const wantTable = buildAnswerTable(want);
  assertEquals([...got.nodes.keys()].sort(), [...want.nodes.keys()].sort(), `${step}: names`);
  assertEquals(got.recordCount, want.recordCount, `${step}: record count`);
  assertEquals([...got.namespaces].sort(), [...want.namespaces].sort(), `${step}: namespaces`);
  assertEquals(gotTable.count, wantTable.count, `${step}: precomputed answers`);
  const names = new Set<string>();
  for (const n of [...got.nodes.keys(), ...want.nodes.keys()]) {
    names.add(n);
    names.add(`nope.${n}`);
  }
  for (const ns of ["default", "prod", "extra", "gone"]) {
    names.add(`198-18-0-9.${ns}.pod.cluster.local`);
  }
  // What CoreDNS answers from endpoints without a record: every endpoint's name and PTR.
  const opts = recordOptions(got.options);
  for (const entry of snapshot.services.values()) {
    const svc = entry.service;
    for (const e of entry.endpoints) {
      names.add(reverseName(e.address));
      names.add(`${endpointLabel(e, opts)}.${svc.name}.${svc.namespace}.svc.cluster.local`);
    }
  }
  let compared = 0;
  for (const name of names) {
    if (!nameToWire(name)) continue;
    for (const type of TYPES) {
      assertEquals(general(got, name, type), general(want, name, type), `${step}: ${name} ${type}`);
      assertEquals(
        fast(gotTable, name, type),
        fast(wantTable, name, type),
        `${step}: fast ${name} ${type}`,
      );
      compared++;
    }
  }
  assert(compared > 100, `${step}: only ${compared} questions compared`);
}

/** A cluster with every record kind, shared PTRs and a CNAME into the zone: part of the fixture. */
function seed(store: ModelStore): void {
  const keys = ["default/web", "prod/api", "default/db", "default/alias", "default/ext"];
  for (const key of [...keys, "default/pending"]) FIXTURE_SERVICES[key](store);
  store.setNamespaces(FIXTURE_NAMESPACES);
}

interface Step {
  name: string;
  change: (store: ModelStore) => void;
}

const STEPS: Step[] = [
  {
    name: "add a ClusterIP service",
    change: (s) =>
      s.setService(makeService({
        namespace: "prod",
        name: "cache",
        clusterIPs: [ip("198.19.0.40")],
        ports: [port("redis", "TCP", 6379)],
      })),
  },
  {
    name: "change the endpoints of a headless service",
    change: (s) =>
      s.setEndpointSet(
        endpointSet("default", "db", [{ name: "pg", protocol: "TCP", port: 5433 }], [
          ep("198.18.0.101", { hostname: "db-0" }),
          ep("198.18.0.105", { hostname: "db-5" }),
        ], "db-v4"),
      ),
  },
  {
    name: "change a ClusterIP",
    change: (s) =>
      s.setService(makeService({
        namespace: "prod",
        name: "api",
        clusterIPs: [ip("198.19.0.21")],
        ports: [port("grpc", "TCP", 9000)],
      })),
  },
  {
    name: "change the target of a CNAME chain (alias -> web)",
    change: (s) =>
      s.setService(makeService({
        namespace: "default",
        name: "web",
        clusterIPs: [ip("198.19.0.11")],
        ports: [port("http", "TCP", 80, 8080)],
      })),
  },
  { name: "delete a service", change: (s) => s.deleteService("default", "pending") },
  {
    name: "namespace appears",
    change: (s) => s.setNamespaces(["default", "prod", "kube-system", "extra"]),
  },
  {
    name: "namespace disappears",
    change: (s) => s.setNamespaces(["default", "prod"]),
  },
  {
    name: "a service in a new namespace (namespace from the service)",
    change: (s) =>
      s.setService(makeService({ namespace: "gone", name: "x", clusterIPs: [ip("198.19.1.1")] })),
  },
  {
    name: "its namespace goes with it",
    change: (s) => s.deleteService("gone", "x"),
  },
  {
    name: "two headless services share an endpoint IP (two PTRs)",
    change: (s) => {
      s.setService(makeService({ namespace: "default", name: "db-alt", headless: true }));
      s.setEndpointSet(endpointSet("default", "db-alt", [], [
        ep("198.18.0.101", { hostname: "db-0" }),
      ]));
      s.setService(makeService({ namespace: "prod", name: "db-mirror", headless: true }));
      s.setEndpointSet(endpointSet("prod", "db-mirror", [], [ep("198.18.0.101")]));
    },
  },
  {
    name: "the first sharer changes while the others stay",
    change: (s) =>
      s.setEndpointSet(
        endpointSet("default", "db", [{ name: "pg", protocol: "TCP", port: 5433 }], [
          ep("198.18.0.101", { hostname: "db-zero" }),
        ], "db-v4"),
      ),
  },
  {
    name: "one sharer removed",
    change: (s) => s.deleteService("default", "db-alt"),
  },
  {
    name: "two services with one VIP, then one changes",
    change: (s) => {
      s.setService(
        makeService({ namespace: "default", name: "twin-a", clusterIPs: [ip("198.19.0.50")] }),
      );
      s.setService(
        makeService({ namespace: "default", name: "twin-b", clusterIPs: [ip("198.19.0.50")] }),
      );
    },
  },
  {
    name: "twin-a moves away",
    change: (s) =>
      s.setService(
        makeService({ namespace: "default", name: "twin-a", clusterIPs: [ip("198.19.0.51")] }),
      ),
  },
  {
    name: "ExternalName retargeted to another in-zone service",
    change: (s) =>
      s.setService(makeService({
        namespace: "default",
        name: "alias",
        type: "ExternalName",
        externalName: "cache.prod.svc.cluster.local",
      })),
  },
  {
    name: "the CNAME target is deleted",
    change: (s) => s.deleteService("prod", "cache"),
  },
  {
    name: "headless service loses every ready endpoint",
    change: (s) =>
      s.setEndpointSet(
        endpointSet("default", "db", [], [ep("198.18.0.101", { ready: false })], "db-v4"),
      ),
  },
  {
    name: "a ClusterIP service's endpoints appear (CoreDNS answers their names and PTRs)",
    change: (s) =>
      s.setEndpointSet(
        endpointSet("prod", "api", [{ name: "grpc", protocol: "TCP", port: 9001 }], [
          ep("198.18.0.30", { hostname: "api-0" }),
          ep("198.18.0.31"),
        ]),
      ),
  },
  {
    name: "a ClusterIP endpoint shares its IP with a headless endpoint (one PTR node, two sources)",
    change: (s) => {
      s.setService(makeService({ namespace: "prod", name: "hl", headless: true }));
      s.setEndpointSet(endpointSet("prod", "hl", [], [ep("198.18.0.31", { hostname: "hl-0" })]));
    },
  },
  {
    name: "the ClusterIP endpoint's hostname changes, the shared PTR with it",
    change: (s) =>
      s.setEndpointSet(
        endpointSet("prod", "api", [{ name: "grpc", protocol: "TCP", port: 9001 }], [
          ep("198.18.0.30", { hostname: "api-0" }),
          ep("198.18.0.31", { hostname: "api-1" }),
        ]),
      ),
  },
  {
    name: "the ClusterIP endpoint stops being ready",
    change: (s) =>
      s.setEndpointSet(
        endpointSet("prod", "api", [{ name: "grpc", protocol: "TCP", port: 9001 }], [
          ep("198.18.0.30", { hostname: "api-0" }),
          ep("198.18.0.31", { hostname: "api-1", ready: false }),
        ]),
      ),
  },
  {
    name: "many changes at once",
    change: (s) => {
      s.deleteService("default", "db");
      s.deleteService("prod", "db-mirror");
      for (let i = 0; i < 5; i++) {
        s.setService(makeService({
          namespace: "prod",
          name: `n${i}`,
          clusterIPs: [ip(`198.19.2.${i}`), ip(`2001:db8:ffff::2:${i}`)],
          ports: [port("http", "TCP", 80)],
        }));
      }
    },
  },
];

for (const [flavour, base] of FLAVOURS) {
  for (const batch of [1000, 1]) {
    Deno.test(`ZoneIndex: every step answers exactly like a zone built from scratch (${flavour}, batch ${batch})`, () =>
      stepThrough(base, batch));
  }
}

function stepThrough(base: Omit<ZoneOptions, "serial">, batch: number) {
  {
    const store = new ModelStore();
    seed(store);
    let snapshot = store.commit().snapshot;
    let serial = 100;
    const index = ZoneIndex.build(snapshot, { ...base, serial });
    const table = new AnswerTableBuilder();
    let zone = index.zone();
    for (const [name, node] of zone.nodes) table.addNode(zone, name, node);
    assertSameAnswers("first build", zone, table, snapshot);
    for (const step of STEPS) {
      step.change(store);
      snapshot = store.commit().snapshot;
      serial++;
      const keys = index.diff(snapshot);
      for (let i = 0; i === 0 || i < keys.length; i += batch) {
        zone = applyUpdate(index, table, snapshot, serial, keys.slice(i, i + batch), i === 0);
      }
      assertSameAnswers(step.name, zone, table, snapshot);
    }
  }
}

Deno.test("ZoneIndex: a publish that changes no service still moves the serial everywhere", () => {
  const store = new ModelStore();
  seed(store);
  const snapshot = store.commit().snapshot;
  const index = ZoneIndex.build(snapshot, { ...BASE, serial: 5 });
  const table = new AnswerTableBuilder();
  let zone = index.zone();
  for (const [name, node] of zone.nodes) table.addNode(zone, name, node);
  zone = applyUpdate(index, table, snapshot, 6, index.diff(snapshot), true);
  assertEquals(zone.options.serial, 6);
  assertSameAnswers("serial only", zone, table, snapshot);
});

Deno.test("AnswerTableBuilder: churn compacts the arenas and keeps every answer", () => {
  const store = new ModelStore();
  seed(store);
  let snapshot = store.commit().snapshot;
  const index = ZoneIndex.build(snapshot, { ...BASE, serial: 1 });
  const table = new AnswerTableBuilder();
  let zone = index.zone();
  for (const [name, node] of zone.nodes) table.addNode(zone, name, node);
  const first = table.view().answers;
  for (let round = 0; round < 400; round++) {
    store.setService(makeService({
      namespace: "default",
      name: "web",
      clusterIPs: [ip(`198.19.3.${round % 250}`), ip("2001:db8:ffff::10")],
      ports: [port("http", "TCP", 80, 8080), port("dns", "UDP", 53)],
    }));
    snapshot = store.commit().snapshot;
    zone = applyUpdate(index, table, snapshot, 2 + round, index.diff(snapshot), true);
  }
  assert(table.view().answers !== first, "the answer arena was never compacted");
  assertSameAnswers("after churn", zone, table, snapshot);
});

Deno.test("slimEntry: a zone built from what crosses to the workers answers like the full one", () => {
  const full = fixtureSnapshot();
  assert(
    [...full.services.values()].some((e) => !e.service.headless && e.endpoints.length > 0),
    "a ClusterIP service with endpoints is in the fixture",
  );
  for (const [records, base] of [[COREDNS_RECORDS, BASE], [STRICT_RECORDS, STRICT_BASE]] as const) {
    const slim: Snapshot = {
      ...full,
      services: new Map([...full.services].map(([k, e]) => [k, slimEntry(e, undefined, records)])),
    };
    const zone = buildZone(slim, { ...base, serial: 1 });
    assertSameAnswers("slim entries", zone, buildAnswerTable(zone), full);
  }
  // Strict, a ClusterIP service's endpoints do not cross: nothing reads them.
  const web = slimEntry(full.services.get("default/web")!, undefined, STRICT_RECORDS);
  assertEquals(web.endpoints.length, 0);
});

Deno.test("slimEntry with a pool: entries as a worker holds them answer alike and share repeats", () => {
  const full = fixtureSnapshot();
  const pool = new EntryPool();
  const held = new Map(
    [...full.services].map(([k, e]) => [k, slimEntry(structuredClone(slimEntry(e)), pool)]),
  );
  const zone = buildZone({ ...full, services: held }, { ...BASE, serial: 1 });
  assertSameAnswers("pooled slim entries", zone, buildAnswerTable(zone), full);
  const a = slimEntry(structuredClone(slimEntry(full.services.get("default/web")!)), pool);
  const b = held.get("default/web")!;
  assert(a !== b && a.service.ports === b.service.ports, "equal port lists are one list");
});

Deno.test("applyUpdate: names clients asked stay precomputed, with the new answer; others wait", () => {
  const store = new ModelStore();
  seed(store);
  const index = ZoneIndex.build(store.commit().snapshot, { ...BASE, serial: 1 });
  const table = new AnswerTableBuilder();
  const web = "web.default.svc.cluster.local";
  let zone = index.zone();
  table.addNode(zone, web, zone.nodes.get(web)!);
  store.setService(makeService({
    namespace: "default",
    name: "web",
    clusterIPs: [ip("198.19.0.99")],
    ports: [port("http", "TCP", 80, 8080)],
  }));
  store.setService(
    makeService({ namespace: "default", name: "new", clusterIPs: [ip("198.19.0.77")] }),
  );
  const snapshot = store.commit().snapshot;
  zone = applyUpdate(index, table, snapshot, 2, index.diff(snapshot), true);
  assert(table.has(web), "the asked name is precomputed again");
  assert(!table.has("new.default.svc.cluster.local"), "a name nobody asked is not");
  const want = buildAnswerTable(buildZone(snapshot, { ...BASE, serial: 2 }));
  assertEquals(fast(table.view(), web, RRType.A), fast(want, web, RRType.A), "the new answer");
});
