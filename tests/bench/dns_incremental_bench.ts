/**
 * Cost of publishing one changed service on top of a large DNS zone: the whole-zone build the
 * engine used to do on every publish, against the in-place update (zone_index.ts) it does now.
 * Pure code, no sockets. Usage: deno run -A tests/bench/dns_incremental_bench.ts [--services N]
 * @module
 */

import { ModelStore } from "../../src/model/store.ts";
import { AnswerTableBuilder, buildAnswerTable } from "../../src/dns/answer/fast.ts";
import { type ZoneOptions } from "../../src/dns/zone/zone.ts";
import { buildZone } from "../../src/dns/zone/zone_index.ts";
import { applyUpdate } from "../../src/dns/answer/fast.ts";
import { ZoneIndex } from "../../src/dns/zone/zone_index.ts";
import {
  endpointSet,
  ep,
  FIXTURE_REVERSE_CIDRS,
  makeService,
  port,
} from "../support/dns_fixture.ts";
import { ip } from "../support/model_values.ts";

const arg = Deno.args.indexOf("--services");
const count = arg >= 0 ? Number(Deno.args[arg + 1]) : 10_000;
const options = (serial: number): ZoneOptions => ({
  clusterDomain: "cluster.local",
  ttl: 30,
  reverseCidrs: FIXTURE_REVERSE_CIDRS,
  serial,
});

// ClusterIP services plus one headless service in ten, with three endpoints each.
const store = new ModelStore();
const vip = (i: number) => ip(`198.19.${(i >> 8) & 0xff}.${i & 0xff}`);
for (let i = 0; i < count; i++) {
  const headless = i % 10 === 0;
  store.setService(makeService({
    namespace: `ns${i % 50}`,
    name: `svc${i}`,
    headless,
    clusterIPs: headless ? [] : [vip(i)],
    ports: [port("http", "TCP", 80)],
  }));
  if (headless) {
    store.setEndpointSet(
      endpointSet(`ns${i % 50}`, `svc${i}`, [{ name: "http", protocol: "TCP", port: 8080 }], [
        ep(`198.18.${(i >> 8) & 0xff}.${i & 0xff}`),
        ep(`198.18.${100 + ((i >> 8) & 0xff)}.${i & 0xff}`),
        ep(`198.18.${200 + ((i >> 8) & 0xff)}.${i & 0xff}`, { hostname: `h${i}` }),
      ]),
    );
  }
}
let snapshot = store.commit().snapshot;
let serial = 1;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const p99 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length * 0.99)];

const full: number[] = [];
for (let r = 0; r < 5; r++) {
  const t = performance.now();
  const zone = buildZone(snapshot, options(serial));
  buildAnswerTable(zone);
  full.push(performance.now() - t);
}

let t = performance.now();
const index = ZoneIndex.build(snapshot, options(serial));
const table = new AnswerTableBuilder();
const zone = index.zone();
for (const [name, node] of zone.nodes) table.addNode(zone, name, node);
table.view();
const firstIndexed = performance.now() - t;

const kinds: Record<string, number[]> = {
  "ClusterIP changed": [],
  "headless endpoints changed": [],
  "added then deleted": [],
  "diff only": [],
};
for (let r = 0; r < 300; r++) {
  const i = 1 + ((r * 37) % (count - 1));
  const kind = r % 3;
  if (kind === 0) {
    const n = i % 10 === 0 ? i + 1 : i;
    store.setService(
      makeService({
        namespace: `ns${n % 50}`,
        name: `svc${n}`,
        clusterIPs: [vip(count + r)],
        ports: [port("http", "TCP", 80)],
      }),
    );
  } else if (kind === 1) {
    const n = i - (i % 10);
    store.setEndpointSet(
      endpointSet(`ns${n % 50}`, `svc${n}`, [{ name: "http", protocol: "TCP", port: 8080 }], [
        ep(`198.18.${(n >> 8) & 0xff}.${n & 0xff}`),
        ep(`198.18.250.${r & 0xff}`, { hostname: `r${r}` }),
      ]),
    );
  } else if (r % 2 === 0) {
    store.setService(
      makeService({ namespace: "extra", name: `new${r}`, clusterIPs: [vip(count + 1000 + r)] }),
    );
  } else {
    store.deleteService("extra", `new${r - 3}`);
  }
  snapshot = store.commit().snapshot;
  serial++;
  t = performance.now();
  const keys = index.diff(snapshot);
  const d = performance.now() - t;
  applyUpdate(index, table, snapshot, serial, keys, true);
  table.view();
  const ms = performance.now() - t;
  kinds["diff only"].push(d);
  kinds[
    kind === 0
      ? "ClusterIP changed"
      : kind === 1
      ? "headless endpoints changed"
      : "added then deleted"
  ].push(ms);
}

console.log(
  `services: ${count}, records: ${index.zone().recordCount}, precomputed answers: ${table.count}`,
);
console.log(
  `whole zone + answer table (old path, every publish): median ${median(full).toFixed(1)} ms`,
);
console.log(`first build with index (ZoneIndex + table): ${firstIndexed.toFixed(1)} ms`);
for (const [k, xs] of Object.entries(kinds)) {
  console.log(
    `one service, ${k}: median ${median(xs).toFixed(3)} ms, p99 ${
      p99(xs).toFixed(3)
    } ms (n=${xs.length})`,
  );
}
