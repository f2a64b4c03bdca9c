/**
 * Memory of what DNS keeps to know pods and endpoints (V8 heap plus external buffers, after full
 * GCs):
 * - this node's pod index (Kubernetes mode, kube/node_pods.ts) for 200 pods, as the pods watch
 *   fills it from a list (the raw objects dropped); the in-process DNS engine shares its map,
 *   a DNS worker holds a copy (measured too);
 * - the endpoint IP index (zone/endpoint_index.ts) CoreDNS's answers need (PTR and names of
 *   ClusterIP endpoints, verified pods), at 10,000 services x 10 endpoints.
 *
 *   deno run -A --v8-flags=--expose-gc tests/bench/dns_index_memory_bench.ts [--pods 200]
 *
 * @module
 */

import { NodePodIndex } from "../../src/sources/kube/node_pods.ts";
import { EndpointIndex } from "../../src/dns/zone/endpoint_index.ts";
import { makePod } from "../fake_apiserver/fixtures.ts";

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

console.log("\nDNS indexes: V8 heap and external buffers after full GCs\n");
console.log(["what", "bytes", "bytes each"].join("\t"));
for (const [what, bytes] of rows) {
  const each = what.includes("10,000 services") ? bytes / 100_000 : bytes / PODS;
  console.log([what, bytes, each.toFixed(0)].join("\t"));
}
