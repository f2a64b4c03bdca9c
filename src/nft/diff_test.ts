import { endpointSet, ep, LAB_OPTIONS, port, service } from "../../tests/support/nft_fixtures.ts";
import { deepStrictEqual as assertEquals, ok as assert, strictEqual } from "node:assert/strict";
import {
  formatOps,
  type Op,
  opText,
  planCreate,
  planFull,
  planReplace,
  planScoped,
} from "./diff.ts";
import { FakeNftExecutor } from "../../tests/support/nft_fake_executor.ts";
import { parseTable } from "./parse.ts";
import { renderRuleset } from "./render.ts";
import { renderServiceFragment } from "./service_fragment.ts";
import { TableBuilder } from "./table_builder.ts";
import { type Family, formatTable, type TableSpec } from "./ruleset.ts";
import { ModelStore } from "../model/store.ts";
import type { ServiceEntry } from "../model/snapshot.ts";
import type { Service } from "../model/types.ts";
import { mulberry32 } from "../../tests/support/test_random.ts";
import { cidr, ip } from "../../tests/support/model_values.ts";

function randomService(rand: () => number, i: number): Service {
  const pick = <T>(xs: T[]) => xs[Math.floor(rand() * xs.length)];
  const type = pick(["ClusterIP", "ClusterIP", "NodePort", "LoadBalancer"] as const);
  const udp = rand() < 0.3;
  return service(`s${i}`, [`198.19.0.${i + 1}`, `2001:db8:ffff::${(i + 1).toString(16)}`], [
    port(80, 8080, "TCP", "http", type === "ClusterIP" ? undefined : 30000 + i),
    ...(udp ? [port(53, 5353, "UDP", "dns")] : []),
  ], {
    type,
    externalIPs: rand() < 0.2 ? [ip(`198.19.1.${i + 1}`)] : [],
    loadBalancerIPs: type === "LoadBalancer" ? [ip(`198.19.2.${i + 1}`)] : [],
    loadBalancerSourceRanges: type === "LoadBalancer" && rand() < 0.5
      ? [cidr("198.18.100.0/24")]
      : [],
    sessionAffinity: rand() < 0.3 ? "ClientIP" : "None",
    sessionAffinityTimeoutSeconds: pick([10, 10800]),
    externalTrafficPolicy: rand() < 0.3 ? "Local" : "Cluster",
    internalTrafficPolicy: rand() < 0.1 ? "Local" : "Cluster",
  });
}

function randomEndpoints(rand: () => number) {
  const n = Math.floor(rand() * 5);
  return Array.from(
    { length: n },
    (_, j) =>
      ep(rand() < 0.5 ? `198.18.0.${10 + j}` : `2001:db8::${(10 + j).toString(16)}`, {
        nodeName: rand() < 0.5 ? "node-a" : "node-b",
        ready: rand() < 0.8,
        terminating: rand() < 0.3,
      }),
  );
}

async function observedOf(fake: FakeNftExecutor, table: TableSpec) {
  const json = await fake.listTable(table.family);
  return json === null ? null : parseTable(json, table);
}

Deno.test("diff: create, then a read-back through the fake shows no difference", async () => {
  const rand = mulberry32(1);
  const store = new ModelStore();
  for (let i = 0; i < 20; i++) {
    const s = randomService(rand, i);
    store.setService(s);
    store.setEndpointSet(endpointSet(s, randomEndpoints(rand)));
  }
  const rs = renderRuleset(store.commit().snapshot, LAB_OPTIONS);
  const fake = new FakeNftExecutor();
  await fake.apply(formatOps(rs.tables.flatMap((t) => planCreate(t))));
  for (const t of rs.tables) {
    const observed = await observedOf(fake, t);
    assertEquals(observed?.problems, [], `${t.family} read-back problems`);
    assertEquals(planFull(observed, t).map(opText), [], `${t.family} full diff after create`);
  }
});

Deno.test("diff: a random walk of changes, applied incrementally, always equals a fresh render", async () => {
  const rand = mulberry32(42);
  const store = new ModelStore();
  const families: Family[] = ["ip", "ip6"];
  const builders = new Map(families.map((f) => [f, new TableBuilder(f, LAB_OPTIONS)]));
  const fake = new FakeNftExecutor();
  await fake.apply(formatOps(families.flatMap((f) => planCreate(builders.get(f)!.table))));
  let prev = store.snapshot;
  const live = new Set<number>();
  for (let step = 0; step < 150; step++) {
    const changes = 1 + Math.floor(rand() * 4);
    for (let c = 0; c < changes; c++) {
      const i = Math.floor(rand() * 25);
      const r = rand();
      if (r < 0.15 && live.has(i)) {
        store.deleteService("default", `s${i}`);
        store.deleteEndpointSet("default", `s${i}`, `s${i}-1`);
        live.delete(i);
      } else if (r < 0.45 || !live.has(i)) {
        const s = randomService(rand, i);
        store.setService(s);
        store.setEndpointSet(endpointSet(s, randomEndpoints(rand)));
        live.add(i);
      } else {
        const s = store.snapshot.services.get(`default/s${i}`)?.service ?? randomService(rand, i);
        store.setEndpointSet(endpointSet(s, randomEndpoints(rand)));
      }
    }
    const { snapshot } = store.commit();
    const render = (e: ServiceEntry | undefined, f: Family) =>
      e ? renderServiceFragment(e, f, LAB_OPTIONS) : null;
    for (const [key, entry] of snapshot.services) {
      const before = prev.services.get(key);
      if (before === entry) continue;
      for (const f of families) {
        builders.get(f)!.setService(key, render(entry, f));
      }
    }
    for (const key of prev.services.keys()) {
      if (!snapshot.services.has(key)) {
        for (const f of families) builders.get(f)!.setService(key, null);
      }
    }
    prev = snapshot;
    const ops: Op[] = families.flatMap((f) =>
      planScoped(builders.get(f)!.journal(), builders.get(f)!.table)
    );
    await fake.apply(formatOps(ops));
    for (const b of builders.values()) b.clearJournal();
    const fresh = renderRuleset(snapshot, LAB_OPTIONS);
    for (const t of fresh.tables) {
      const b = builders.get(t.family)!;
      strictEqual(
        formatTable(b.table),
        formatTable(t),
        `step ${step}: ${t.family} builder vs fresh`,
      );
      const left = planFull(await observedOf(fake, t), t);
      assertEquals(left.map(opText), [], `step ${step}: ${t.family} kernel (fake) vs fresh`);
    }
  }
});

Deno.test("diff: repairs drift element by element, rewrites a changed chain, replaces on new declarations", async () => {
  const web = service("web", ["198.19.0.10"], [port(80, 8080)]);
  const store = new ModelStore();
  store.setService(web);
  store.setEndpointSet(endpointSet(web, [ep("198.18.0.10"), ep("198.18.0.11")]));
  const table = renderRuleset(store.commit().snapshot, LAB_OPTIONS).tables[0];
  const fake = new FakeNftExecutor();
  await fake.apply(formatOps(planCreate(table)));

  fake.dropElement("ip", "vip-backends-tcp", "198.19.0.10 . 80 . 1");
  await fake.apply(
    "add element ip svcgate vip-backends-tcp { 198.19.0.99 . 80 . 0 : 198.18.0.99 . 80 }\n" +
      "flush chain ip svcgate services\n",
  );
  const ops = planFull(await observedOf(fake, table), table).map(opText);
  assertEquals(ops.filter((o) => o.includes("element")), [
    "delete element ip svcgate vip-backends-tcp { 198.19.0.99 . 80 . 0 }",
    "add element ip svcgate vip-backends-tcp { 198.19.0.10 . 80 . 1 : 198.18.0.11 . 8080 }",
  ], "element repairs");
  assertEquals(ops[0], "flush chain ip svcgate services", "the emptied chain is rewritten first");
  assertEquals(
    ops.filter((o) => o.startsWith("add rule")).length,
    table.chains.get("services")!.rules.length,
    "its rules",
  );
  await fake.apply(formatOps(planFull(await observedOf(fake, table), table)));
  assertEquals(planFull(await observedOf(fake, table), table), [], "repaired");

  // A set declared differently (an older svcgate) cannot be patched: atomic replace.
  await fake.apply(
    "add table ip svcgate\ndelete table ip svcgate\nadd table ip svcgate\n" +
      'add set ip svcgate cluster-ips { type ipv4_addr; comment "sg:old"; }\n',
  );
  const replace = planFull(await observedOf(fake, table), table);
  assertEquals(replace.slice(0, 3).map(opText), [
    "add table ip svcgate",
    "delete table ip svcgate",
    "add table ip svcgate",
  ], "replace starts by deleting the table in the same transaction");
  assertEquals(replace.length, planReplace(table).length, "a full replace");
  await fake.apply(formatOps(replace));
  assertEquals(planFull(await observedOf(fake, table), table), [], "replaced");
});

Deno.test("diff: a new endpoint count adds its chain before the elements that use it and drops the old one last", () => {
  const web = service("web", ["198.19.0.10"], [port(80, 8080)]);
  const store = new ModelStore();
  store.setService(web);
  store.setEndpointSet(endpointSet(web, [ep("198.18.0.10"), ep("198.18.0.11")]));
  const builder = new TableBuilder("ip", LAB_OPTIONS);
  const two = renderServiceFragment(
    store.commit().snapshot.services.get("default/web")!,
    "ip",
    LAB_OPTIONS,
  );
  builder.setService("default/web", two);
  builder.clearJournal();
  store.setEndpointSet(endpointSet(web, [ep("198.18.0.10"), ep("198.18.0.11"), ep("198.18.0.12")]));
  builder.setService(
    "default/web",
    renderServiceFragment(store.commit().snapshot.services.get("default/web")!, "ip", LAB_OPTIONS),
  );
  const text = formatOps(planScoped(builder.journal(), builder.table));
  strictEqual(
    text,
    [
      "add chain ip svcgate lb-vip-tcp-3",
      'add rule ip svcgate lb-vip-tcp-3 meta l4proto tcp dnat ip to ip daddr . th dport . numgen random mod 3 map @vip-backends-tcp comment "sg:482b9ed0"',
      "delete element ip svcgate vip-dispatch { 198.19.0.10 . tcp . 80 }",
      "add element ip svcgate hairpin { 198.18.0.12 . 198.18.0.12 }",
      "add element ip svcgate vip-dispatch { 198.19.0.10 . tcp . 80 : goto lb-vip-tcp-3 }",
      "add element ip svcgate vip-backends-tcp { 198.19.0.10 . 80 . 2 : 198.18.0.12 . 8080 }",
      "flush chain ip svcgate lb-vip-tcp-2",
      "delete chain ip svcgate lb-vip-tcp-2",
      "",
    ].join("\n"),
    "transaction",
  );
});

Deno.test("diff: a change that cancels out writes nothing", () => {
  const web = service("web", ["198.19.0.10"], [port(80, 8080)]);
  const store = new ModelStore();
  store.setService(web);
  store.setEndpointSet(endpointSet(web, [ep("198.18.0.10")]));
  const first = store.commit().snapshot.services.get("default/web")!;
  const builder = new TableBuilder("ip", LAB_OPTIONS);
  const fragment = renderServiceFragment(first, "ip", LAB_OPTIONS);
  builder.setService("default/web", fragment);
  builder.clearJournal();
  builder.setService("default/web", null);
  builder.setService("default/web", fragment);
  assert(builder.dirty, "journal recorded the touches");
  assertEquals(planScoped(builder.journal(), builder.table), [], "no operation");
});
