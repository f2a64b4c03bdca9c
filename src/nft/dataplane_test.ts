import { endpointSet, ep, LAB_OPTIONS, port, service } from "../../tests/support/nft_fixtures.ts";
import { deepStrictEqual as assertEquals, match, ok as assert, rejects } from "node:assert/strict";
import { APPLY_BATCH, NftDataplane, NftSyncError, readLiveVips } from "./dataplane.ts";
import { FakeConntrack, FakeNftExecutor } from "../../tests/support/nft_fake_executor.ts";
import { renderRuleset } from "./render.ts";
import { parseTable } from "./parse.ts";
import { opText, planFull } from "./diff.ts";
import { ModelStore } from "../model/store.ts";
import { MetricsRegistry } from "../observe/metrics.ts";
import type { Snapshot } from "../model/snapshot.ts";
import type { Service } from "../model/types.ts";
import { METRICS } from "../observe/metrics_catalogue.ts";

const web = service("web", ["198.19.0.10", "2001:db8:ffff::10"], [port(80, 8080)]);
const dns = service("dns", ["198.19.0.53"], [
  port(53, 5353, "UDP", "dns"),
  port(53, 5353, "TCP", "tcp"),
]);

function storeWith(entries: [Service, string[]][]): ModelStore {
  const store = new ModelStore();
  for (const [s, addrs] of entries) {
    store.setService(s);
    store.setEndpointSet(endpointSet(s, addrs.map((a) => ep(a))));
  }
  store.commit();
  return store;
}

function setEndpoints(store: ModelStore, s: Service, addrs: string[]): Snapshot {
  store.setEndpointSet(endpointSet(s, addrs.map((a) => ep(a))));
  return store.commit().snapshot;
}

/** The kernel (fake) holds exactly the ruleset of the snapshot. */
async function assertKernelHolds(nft: FakeNftExecutor, snapshot: Snapshot, what: string) {
  for (const t of renderRuleset(snapshot, LAB_OPTIONS).tables) {
    const json = await nft.listTable(t.family);
    assert(json !== null, `${what}: ${t.family} table exists`);
    assertEquals(
      planFull(parseTable(json, t), t).map(opText),
      [],
      `${what}: ${t.family} difference`,
    );
  }
}

function setup(metrics?: MetricsRegistry) {
  const nft = new FakeNftExecutor();
  const conntrack = new FakeConntrack();
  const dataplane = new NftDataplane({
    executor: nft,
    conntrack,
    renderOptions: LAB_OPTIONS,
    ...(metrics ? { metrics } : {}),
  });
  return { nft, conntrack, dataplane };
}

Deno.test("dataplane: first apply creates; later applies send only the difference, without reading the kernel", async () => {
  const { nft, dataplane } = setup();
  const store = storeWith([[web, ["198.18.0.10", "198.18.0.11"]]]);
  const first = await dataplane.apply(store.snapshot);
  assertEquals([first.mode, first.replaced], ["full", true], "created");
  assertEquals(nft.listCalls, 2, "read both families once (absent)");
  await assertKernelHolds(nft, store.snapshot, "after create");

  const snap = setEndpoints(store, web, ["198.18.0.10", "198.18.0.12"]);
  const lists = nft.listCalls;
  const second = await dataplane.apply(snap);
  assertEquals(second.mode, "incremental", "incremental");
  assertEquals(nft.listCalls, lists, "no kernel read on the steady path");
  assertEquals(
    nft.applied.at(-1),
    [
      "delete element ip svcgate hairpin { 198.18.0.11 . 198.18.0.11 }",
      "delete element ip svcgate vip-backends-tcp { 198.19.0.10 . 80 . 1 }",
      "add element ip svcgate hairpin { 198.18.0.12 . 198.18.0.12 }",
      "add element ip svcgate vip-backends-tcp { 198.19.0.10 . 80 . 1 : 198.18.0.12 . 8080 }",
      "",
    ].join("\n"),
    "the whole transaction",
  );
  await assertKernelHolds(nft, snap, "after update");
  const again = await dataplane.apply(snap);
  assertEquals(again.mode, "none", "same snapshot: nothing to do");
});

Deno.test("dataplane: a failed apply changes nothing, throws a clear error, and the retry reconciles in full", async () => {
  const metrics = new MetricsRegistry();
  const { nft, dataplane } = setup(metrics);
  const store = storeWith([[web, ["198.18.0.10"]]]);
  await dataplane.apply(store.snapshot);
  const before = nft.applied.length;
  const snap = setEndpoints(store, web, ["198.18.0.11"]);
  nft.failNextApply("Could not process rule: Cannot allocate memory");
  await rejects(() => dataplane.apply(snap), (e) => {
    match(
      (e as Error).message,
      /Cannot apply snapshot version 2 to nftables \(incremental sync; the previous ruleset keeps serving\):.*Cannot allocate memory/,
      "apply",
    );
    assert(e instanceof NftSyncError, "an NftSyncError");
    return true;
  });
  assertEquals(nft.applied.length, before, "nothing applied");
  assertEquals(
    nft.elements("ip", "vip-backends-tcp")?.get("198.19.0.10 . 80 . 0"),
    "198.18.0.10 . 8080",
    "old ruleset still there",
  );
  assertEquals(
    metrics.of(METRICS.nftSyncFailures).get({ stage: "apply" }),
    1,
    "counted",
  );

  const lists = nft.listCalls;
  const retry = await dataplane.apply(snap);
  assertEquals(retry.mode, "full", "retry is a full reconcile");
  assertEquals(nft.listCalls, lists + 2, "it read the kernel");
  assertEquals(retry.replaced, false, "without replacing the table");
  await assertKernelHolds(nft, snap, "after retry");
  const next = await dataplane.apply(setEndpoints(store, web, ["198.18.0.12"]));
  assertEquals(next.mode, "incremental", "then back to incremental");
});

Deno.test("dataplane: a restarted instance adopts the table and writes only the difference", async () => {
  const { nft, dataplane } = setup();
  const store = storeWith([[web, ["198.18.0.10"]], [dns, ["198.18.0.20"]]]);
  await dataplane.apply(store.snapshot);
  const applies = nft.applyCalls;

  const restarted = new NftDataplane({ executor: nft, renderOptions: LAB_OPTIONS });
  await restarted.adopt();
  const same = await restarted.apply(store.snapshot);
  assertEquals(same.mode, "none", "same state: no transaction at all");
  assertEquals(nft.applyCalls, applies, "nft not called");

  const again = new NftDataplane({ executor: nft, renderOptions: LAB_OPTIONS });
  await again.adopt();
  const snap = setEndpoints(store, web, ["198.18.0.10", "198.18.0.11"]);
  const report = await again.apply(snap);
  assertEquals([report.mode, report.replaced], ["full", false], "patched, not replaced");
  assert(!nft.applied.at(-1)!.includes("delete table"), "no table delete");
  assertEquals(report.elementsDeleted, 1, "one element replaced (dispatch verdict)");
  await assertKernelHolds(nft, snap, "after adoption");
});

Deno.test("dataplane: checkDrift repairs a deleted element and a deleted table, and reports a clean kernel", async () => {
  const metrics = new MetricsRegistry();
  const { nft, dataplane } = setup(metrics);
  const store = storeWith([[web, ["198.18.0.10", "198.18.0.11"]]]);
  await dataplane.apply(store.snapshot);
  assertEquals(await dataplane.checkDrift(), false, "no drift");
  nft.dropElement("ip", "vip-backends-tcp", "198.19.0.10 . 80 . 1");
  assertEquals(await dataplane.checkDrift(), true, "element drift repaired");
  assertEquals(
    nft.applied.at(-1),
    "add element ip svcgate vip-backends-tcp { 198.19.0.10 . 80 . 1 : 198.18.0.11 . 8080 }\n",
    "only the element",
  );
  nft.dropElement("ip", "vip-backends-tcp", "198.19.0.10 . 80 . 1");
  assertEquals(
    await dataplane.checkDrift({ elements: false }),
    false,
    "the cheap check does not see elements",
  );
  const lists = nft.listCalls;
  nft.dropTable("ip6");
  assertEquals(
    await dataplane.checkDrift({ elements: false }),
    true,
    "the cheap check finds a missing table",
  );
  assertEquals(nft.listCalls, lists + 2, "and then checks in full (repairing the element too)");
  await assertKernelHolds(nft, store.snapshot, "after repairs");
  assertEquals(metrics.of(METRICS.nftDriftRepairs).get(), 2, "counted");
  assertEquals(await dataplane.checkDrift({ elements: false }), false, "clean outline");
});

Deno.test("dataplane: cleanup deletes both tables, and is safe to repeat", async () => {
  const { nft, dataplane } = setup();
  await dataplane.apply(storeWith([[web, ["198.18.0.10"]]]).snapshot);
  await dataplane.cleanup();
  assertEquals([nft.hasTable("ip"), nft.hasTable("ip6")], [false, false], "gone");
  await dataplane.cleanup();
  const fresh = new NftDataplane({ executor: nft, renderOptions: LAB_OPTIONS });
  await fresh.cleanup();
  assertEquals([nft.hasTable("ip"), nft.hasTable("ip6")], [false, false], "still gone");
});

Deno.test("dataplane: UDP conntrack cleanup for removed endpoints and new UDP services, not for TCP", async () => {
  const { conntrack, dataplane } = setup();
  const store = storeWith([[dns, ["198.18.0.20", "198.18.0.21"]]]);
  await dataplane.apply(store.snapshot);
  assertEquals(conntrack.calls, [], "cold create: nothing to clean");
  await dataplane.apply(setEndpoints(store, dns, ["198.18.0.20", "198.18.0.22"]));
  assertEquals(conntrack.calls, [
    { family: "ip", origDst: "198.19.0.53", origPortDst: 53, replySrc: "198.18.0.21" },
  ], "flows pinned to the removed endpoint (UDP only)");
  conntrack.calls.length = 0;
  const udp = service("syslog", ["198.19.0.54"], [port(514, 514, "UDP")]);
  store.setService(udp);
  store.setEndpointSet(endpointSet(udp, [ep("198.18.0.30")]));
  await dataplane.apply(store.commit().snapshot);
  assertEquals(
    conntrack.calls,
    [{ family: "ip", origDst: "198.19.0.54", origPortDst: 514 }],
    "new UDP service",
  );
  conntrack.calls.length = 0;
  conntrack.failWith = "conntrack: Operation not permitted";
  const report = await dataplane.apply(setEndpoints(store, udp, ["198.18.0.31"]));
  assertEquals(report.mode, "incremental", "a conntrack failure does not fail the sync");
  assertEquals(conntrack.calls.length, 1, "it was tried");
});

Deno.test("dataplane: affinity entries pointing at a removed endpoint are deleted, others kept", async () => {
  const aff = service("aff", ["198.19.0.60", "2001:db8:ffff::60"], [port(80, 8080)], {
    sessionAffinity: "ClientIP",
    sessionAffinityTimeoutSeconds: 60,
  });
  const { nft, dataplane } = setup();
  const store = storeWith([[aff, ["198.18.0.10", "198.18.0.11", "2001:db8::a", "2001:db8::b"]]]);
  await dataplane.apply(store.snapshot);
  nft.setDynamicElements("ip", "affinity-tcp", [
    ["198.18.0.20 . 198.19.0.60 . 80", "198.18.0.11 . 8080"],
    ["198.18.0.21 . 198.19.0.60 . 80", "198.18.0.10 . 8080"],
  ]);
  nft.setDynamicElements("ip6", "affinity", [["1 . 2", "2001:db8::b"], ["3 . 4", "2001:db8::a"]]);
  await dataplane.apply(setEndpoints(store, aff, ["198.18.0.10", "2001:db8::a"]));
  assertEquals(
    [...nft.elements("ip", "affinity-tcp")!.keys()],
    ["198.18.0.21 . 198.19.0.60 . 80"],
    "ip",
  );
  assertEquals([...nft.elements("ip6", "affinity")!.keys()], ["3 . 4"], "ip6");
});

Deno.test("dataplane: concurrent calls are serialized; the last snapshot wins", async () => {
  const { nft, dataplane } = setup();
  const store = storeWith([[web, ["198.18.0.10"]]]);
  const s1 = store.snapshot;
  const s2 = setEndpoints(store, web, ["198.18.0.11"]);
  const s3 = setEndpoints(store, web, ["198.18.0.12", "198.18.0.13"]);
  await Promise.all([
    dataplane.apply(s1),
    dataplane.apply(s2),
    dataplane.checkDrift(),
    dataplane.apply(s3),
  ]);
  await assertKernelHolds(nft, s3, "after concurrent calls");
});

Deno.test("dataplane: metrics for duration, elements and rules", async () => {
  const metrics = new MetricsRegistry();
  const { dataplane } = setup(metrics);
  await dataplane.apply(storeWith([[web, ["198.18.0.10"]]]).snapshot);
  const text = metrics.render();
  for (
    const name of [
      'svcgate_nft_sync_duration_seconds_count{mode="full"} 1',
      'svcgate_nft_elements{family="ip"}',
      'svcgate_nft_rules{family="ip6"}',
      'svcgate_nft_syncs_total{mode="full"} 1',
    ]
  ) assert(text.includes(name), `metrics include ${name}:\n${text}`);
});

Deno.test("dataplane: readLiveVips reads which service owns which VIP from the kernel", async () => {
  const { nft, dataplane } = setup();
  assertEquals(await readLiveVips(nft), {}, "no table yet");
  const store = storeWith([[web, ["198.18.0.10"]], [dns, ["198.18.0.20"]]]);
  await dataplane.apply(store.snapshot);
  assertEquals(await readLiveVips(nft), {
    "default/dns": ["198.19.0.53"],
    "default/web": ["198.19.0.10", "2001:db8:ffff::10"],
  }, "owners");
});

/** `n` services `svc-<i>`, VIP 198.19.<i>, one endpoint 198.18.<i> (last octet `shift` on). */
function manyServices(store: ModelStore, n: number, shift = 0): Snapshot {
  for (let i = 0; i < n; i++) {
    const s = service(`svc-${i}`, [`198.19.${i >> 8}.${i & 255}`], [port(80, 8080)]);
    store.setService(s);
    store.setEndpointSet(endpointSet(s, [ep(`198.18.${i >> 8}.${(i + shift) & 255}`)]));
  }
  return store.commit().snapshot;
}

/** The backend element of service `i` of {@link manyServices}. */
function backendOf(i: number, shift = 0): string {
  return `198.19.${i >> 8}.${i & 255} . 80 . 0 : 198.18.${i >> 8}.${(i + shift) & 255} . 8080`;
}

/** Index of the one script holding each text (and checks there is exactly one). */
function scriptOfEach(scripts: readonly string[], texts: string[]): number[] {
  return texts.map((text) => {
    const at = scripts.flatMap((script, k) => script.includes(text) ? [k] : []);
    assertEquals(at.length, 1, `scripts holding ${text}`);
    return at[0];
  });
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

Deno.test("dataplane: a cold start past APPLY_BATCH services creates the table, then fills it a batch of services per transaction", async () => {
  const { nft, dataplane } = setup();
  const n = APPLY_BATCH * 2 + 5;
  const snap = manyServices(new ModelStore(), n);
  const report = await dataplane.apply(snap);
  assertEquals(nft.applied.length, 4, "the empty table, then three batches");
  assert(nft.applied[0].includes("add table ip svcgate"), "the first creates the table");
  assert(!nft.applied[0].includes("198.19."), "with no service in it");
  const batches = scriptOfEach(nft.applied, range(n).map((i) => backendOf(i)));
  assertEquals(new Set(batches).size, 3, "three batches hold the services");
  // Each service is whole in its transaction: its dispatch element goes with its backend.
  assertEquals(
    scriptOfEach(nft.applied, range(n).map((i) => `198.19.${i >> 8}.${i & 255} . tcp . 80 :`)),
    batches,
  );
  assertEquals([report.mode, report.replaced], ["full", true]);
  const elements = renderRuleset(snap, LAB_OPTIONS).tables
    .flatMap((t) => [...t.elements.values()]).reduce((sum, e) => sum + e.size, 0);
  assertEquals(report.elementsAdded, elements, "every element added once");
  await assertKernelHolds(nft, snap, "after the cold start");
});

Deno.test("dataplane: an incremental sync of many services goes a batch per transaction", async () => {
  const { nft, dataplane } = setup();
  const store = new ModelStore();
  const n = APPLY_BATCH * 2 + 5;
  await dataplane.apply(manyServices(store, n));
  const before = nft.applied.length;
  const snap = manyServices(store, n, 1);
  const report = await dataplane.apply(snap);
  assertEquals(report.mode, "incremental");
  assertEquals(nft.applied.length - before, 3, "three transactions");
  const changed = scriptOfEach(nft.applied.slice(before), range(n).map((i) => backendOf(i, 1)));
  assertEquals(new Set(changed).size, 3);
  await assertKernelHolds(nft, snap, "after the big change");
});

Deno.test("dataplane: a batch that fails leaves the earlier ones in; the next apply reconciles in full", async () => {
  const { nft, dataplane } = setup();
  const n = APPLY_BATCH * 2 + 5;
  const snap = manyServices(new ModelStore(), n);
  const apply = nft.apply.bind(nft);
  let calls = 0;
  nft.apply = (script) => {
    if (++calls === 3) nft.failNextApply("Could not process rule: Cannot allocate memory");
    return apply(script);
  };
  await rejects(
    () => dataplane.apply(snap),
    /\(full sync; the services of earlier batches are in\):.*Cannot allocate memory/,
    "the second batch",
  );
  assertEquals(nft.applied.length, 2, "the table and the first batch went in");
  const retry = await dataplane.apply(snap);
  assertEquals(retry.mode, "full");
  await assertKernelHolds(nft, snap, "after the retry");
});

Deno.test("dataplane: a partial snapshot keeps adopted services it does not know; the complete one removes them", async () => {
  const { nft, dataplane } = setup();
  // A previous run programmed web and dns.
  const before = storeWith([[web, ["198.18.0.10"]], [dns, ["198.18.0.53"]]]);
  await dataplane.apply(before.snapshot);

  // A restart whose manifests for dns do not parse: the state holds web (moved) and is partial.
  const restarted = {
    nft,
    dataplane: new NftDataplane({ executor: nft, renderOptions: LAB_OPTIONS }),
  };
  await restarted.dataplane.adopt();
  const store = storeWith([[web, ["198.18.0.11"]]]);
  store.setPartial(true);
  const partial = store.commit().snapshot;
  assertEquals(partial.partial, true, "partial snapshot");
  const held = await restarted.dataplane.apply(partial);
  assertEquals(held.elementsDeleted > 0, true, "web's old endpoint went");
  assertEquals(
    restarted.nft.elements("ip", "vip-backends-udp")?.get("198.19.0.53 . 53 . 0"),
    "198.18.0.53 . 5353",
    "dns, unknown, still routes",
  );
  assertEquals(
    restarted.nft.elements("ip", "vip-backends-tcp")?.get("198.19.0.10 . 80 . 0"),
    "198.18.0.11 . 8080",
    "web routes to its new endpoint",
  );
  // A drift check while partial keeps them too.
  assertEquals(await restarted.dataplane.checkDrift(), false, "nothing to repair");
  assertEquals(
    restarted.nft.elements("ip", "vip-backends-udp")?.has("198.19.0.53 . 53 . 0"),
    true,
    "dns kept by the drift check",
  );

  // The file parses again without dns: the complete snapshot reconciles and deletes it.
  store.setPartial(false);
  const complete = store.commit().snapshot;
  const report = await restarted.dataplane.apply(complete);
  assertEquals(report.mode, "full", "the first complete snapshot reconciles in full");
  await assertKernelHolds(restarted.nft, complete, "complete");
});
