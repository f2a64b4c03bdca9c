/**
 * Memory of what DNS keeps to know pods and endpoints (V8 heap plus external buffers, after full
 * GCs):
 * - this node's pod index (Kubernetes mode, kube/node_pods.ts) for 200 pods, as the pods watch
 *   fills it from a list (the raw objects dropped); the in-process DNS engine shares its map,
 *   a DNS worker holds a copy (measured too);
 * - the endpoint IP index (zone/endpoint_index.ts) CoreDNS's answers need (PTR and names of
 *   ClusterIP endpoints, verified pods), at 10,000 services x 10 endpoints;
 * - the whole zone of 1,000 services x 10 endpoints (ClusterIP, then headless) with CoreDNS's
 *   answers and with --dns-strict-spec.
 *
 *   deno run -A --v8-flags=--expose-gc tests/bench/dns_index_memory_bench.ts [--pods 200]
 *
 * @module
 */

import { NodePodIndex } from "../../src/sources/kube/node_pods.ts";
import { EndpointIndex } from "../../src/dns/zone/endpoint_index.ts";
import { makePod } from "../fake_apiserver/fixtures.ts";
import { buildZone } from "../../src/dns/zone/zone_index.ts";
import { ModelStore } from "../../src/model/store.ts";
import type { Snapshot } from "../../src/model/snapshot.ts";
import { endpointSet, ep, makeService, port } from "../support/dns_fixture.ts";
import { ip } from "../support/model_values.ts";

function arg(name: string, fallback: string): string {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 && i + 1 < Deno.args.length ? Deno.args[i + 1] : fallback;
}

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error("Run with --v8-flags=--expose-gc");

/** V8 heap in use plus memory outside it (typed arrays' buffers), after full GCs. */
function heap(): number {
  for (let i = 0; i < 3; i++) gc!();
  const m = Deno.memoryUsage();
  return m.heapUsed + m.external;
}

const PODS = Number(arg("pods", "200"));
const NAMESPACES = 20;

/** A list body as the API server sends it, parsed: every pod with its usual fields. */
function podList(n: number): unknown[] {
  const items = Array.from({ length: n }, (_, i) => {
    const p = makePod(`team-${i % NAMESPACES}`, `app-${i}-7d4f9c6b8-x${i}`, {
      nodeName: "node-a",
      ips: [`198.18.${i >> 8}.${i & 0xff}`, `2001:db8::${i.toString(16)}`],
    });
    p.metadata.resourceVersion = String(1000 + i);
    p.metadata.uid = crypto.randomUUID();
    return p;
  });
  return JSON.parse(JSON.stringify(items));
}

const rows: [string, number][] = [];

const zoneArg = arg("zone", "");
if (zoneArg) {
  // A child: one zone, its bytes on stdout.
  const [kind, flavour] = zoneArg.split(",");
  const snapshot = services(kind === "headless");
  const base = heap();
  const zone = buildZone(snapshot, {
    clusterDomain: "cluster.local",
    ttl: 30,
    reverseCidrs: [],
    serial: 1,
    strictSpec: flavour === "strict",
  });
  const bytes = heap() - base;
  if (zone.nodes.size === 0) throw new Error("an empty zone");
  console.log(bytes);
  Deno.exit(0);
}

{
  let items: unknown[] | null = podList(PODS);
  const base = heap();
  let map: ReadonlyMap<string, string> = new Map();
  const index = new NodePodIndex((m) => map = m);
  const list = index.beginList();
  for (const item of items) list.add(item);
  list.commit();
  items = null;
  const held = heap() - base;
  rows.push([`node pod index, ${PODS} pods (2 IPs each), in-process DNS shares it`, held]);
  // What a DNS worker holds: the map rebuilt from the pairs posted to it.
  const pairs: [string, string][] = structuredClone([...map]);
  const before = heap();
  const workerCopy = new Map(pairs);
  rows.push([`its copy in one DNS worker (--dns-workers)`, heap() - before]);
  if (pairs.length !== workerCopy.size) throw new Error("the copy lost pairs");
  if (index.size !== PODS || workerCopy.size !== 2 * PODS) throw new Error("not every pod kept");
}

{
  const base = heap();
  const index = new EndpointIndex();
  for (let s = 0; s < 10_000; s++) {
    const key = `ns-${s % 50}/svc-${s}`;
    for (let e = 0; e < 10; e++) {
      const n = s * 10 + e;
      index.add(`198.${18 + (n >> 16)}.${(n >> 8) & 0xff}.${n & 0xff}`, key);
    }
  }
  rows.push(["endpoint IP index, 10,000 services x 10 endpoints (IPv4)", heap() - base]);
  if (index.size !== 100_000) throw new Error("not every endpoint indexed");
}

/** 1,000 services of 10 endpoints each, ClusterIP or headless. */
function services(headless: boolean): Snapshot {
  const store = new ModelStore();
  for (let s = 0; s < 1000; s++) {
    store.setService(makeService({
      namespace: "bench",
      name: `svc${s}`,
      headless,
      clusterIPs: headless ? [] : [ip(`198.19.${s >> 8}.${s & 0xff}`)],
      ports: [port("http", "TCP", 80)],
    }));
    const eps = Array.from({ length: 10 }, (_, e) => {
      const k = s * 10 + e;
      return ep(`198.${18 + (k >> 16)}.${(k >> 8) & 0xff}.${k & 0xff}`);
    });
    store.setEndpointSet(
      endpointSet("bench", `svc${s}`, [{ name: "http", protocol: "TCP", port: 80 }], eps),
    );
  }
  store.setNamespaces(["bench"]);
  return store.commit().snapshot;
}

/** The zone's bytes for one kind and flavour, measured in a fresh process (median of 3). */
async function zoneBytes(headless: boolean, strictSpec: boolean): Promise<number> {
  const runs: number[] = [];
  for (let i = 0; i < 3; i++) {
    const r = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "--v8-flags=--expose-gc",
        new URL(import.meta.url).pathname,
        "--zone",
        `${headless ? "headless" : "clusterip"},${strictSpec ? "strict" : "coredns"}`,
      ],
      stderr: "inherit",
    }).output();
    runs.push(Number(new TextDecoder().decode(r.stdout).trim()));
  }
  return runs.sort((a, b) => a - b)[1];
}

for (const headless of [false, true]) {
  for (const strictSpec of [true, false]) {
    rows.push([
      `zone, 1,000 ${headless ? "headless" : "ClusterIP"} services x 10 endpoints, ${
        strictSpec ? "--dns-strict-spec" : "CoreDNS's answers"
      } (median of 3 processes)`,
      await zoneBytes(headless, strictSpec),
    ]);
  }
}

console.log("\nDNS indexes: V8 heap and external buffers after full GCs\n");
console.log(["what", "bytes", "bytes each"].join("\t"));
for (const [what, bytes] of rows) {
  const each = what.includes("10,000 services")
    ? bytes / 100_000
    : what.startsWith("zone")
    ? bytes / 10_000
    : bytes / PODS;
  console.log([what, bytes, each.toFixed(0)].join("\t"));
}
