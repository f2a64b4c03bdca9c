import {
  endpointSet,
  ep,
  LAB_OPTIONS,
  port,
  service,
  snapshotOf,
} from "../../tests/support/nft_fixtures.ts";
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { formatOps, opText, planCreate } from "./diff.ts";
import { type DriftCheckOptions, repairDrift, sameOutline } from "./drift.ts";
import type { NftExecutor } from "./executor.ts";
import { FakeNftExecutor } from "../../tests/support/nft_fake_executor.ts";
import { parseTable } from "./parse.ts";
import { renderRuleset } from "./render.ts";
import type { Family, TableSpec } from "./ruleset.ts";
import { silentLogger } from "../observe/log.ts";
import { MetricsRegistry } from "../observe/metrics.ts";
import { METRICS } from "../observe/metrics_catalogue.ts";

const web = service("web", ["198.19.0.10"], [port(80, 8080)]);
const TABLES = renderRuleset(
  snapshotOf([web], [endpointSet(web, [ep("198.18.0.10"), ep("198.18.0.11")])]),
  LAB_OPTIONS,
).tables;

/** A fake kernel holding the tables, and the options of a check against them. */
async function setup(tables: readonly TableSpec[] = TABLES) {
  const nft = new FakeNftExecutor();
  await nft.apply(formatOps(tables.flatMap((t) => planCreate(t))));
  const metrics = new MetricsRegistry();
  const desired = new Map<Family, TableSpec>(TABLES.map((t) => [t.family, t]));
  const options: DriftCheckOptions = {
    executor: nft,
    desired,
    read: async (f) => {
      const json = await nft.listTable(f);
      return json === null ? null : parseTable(json, desired.get(f)!);
    },
    keepUnknown: false,
    log: silentLogger,
    metrics,
    now: () => 0,
  };
  return { nft, metrics, options };
}

Deno.test("drift: a kernel that agrees is read in full and left alone", async () => {
  const { nft, metrics, options } = await setup();
  const applied = nft.applyCalls;
  assertEquals(await repairDrift(options), { read: "full", ops: [], scriptBytes: 0 }, "check");
  assertEquals(nft.applyCalls, applied, "nothing written");
  assertEquals(metrics.of(METRICS.nftDriftRepairs).get(), 0, "no repair");
});

Deno.test("drift: a deleted element is written back, and the repair is counted", async () => {
  const { nft, metrics, options } = await setup();
  nft.dropElement("ip", "vip-backends-tcp", "198.19.0.10 . 80 . 1");
  const check = await repairDrift(options);
  assertEquals(check.ops.map(opText), [
    "add element ip svcgate vip-backends-tcp { 198.19.0.10 . 80 . 1 : 198.18.0.11 . 8080 }",
  ], "repair");
  assertEquals(check.scriptBytes, nft.applied.at(-1)!.length, "script bytes");
  assertEquals(metrics.of(METRICS.nftDriftRepairs).get(), 1, "counted");
  assertEquals((await repairDrift(options)).ops, [], "clean again");
});

Deno.test("drift: the outline check skips elements, and reads in full when the outline differs", async () => {
  const { nft, options } = await setup();
  nft.dropElement("ip", "vip-backends-tcp", "198.19.0.10 . 80 . 1");
  const lists = nft.listCalls;
  assertEquals(
    await repairDrift({ ...options, elements: false }),
    { read: "outline", ops: [], scriptBytes: 0 },
    "outline agrees",
  );
  assertEquals(nft.listCalls, lists, "no table read");
  nft.dropTable("ip6");
  const check = await repairDrift({ ...options, elements: false });
  assertEquals(check.read, "full", "read in full");
  assert(check.ops.some((o) => o.op === "add-table" && o.family === "ip6"), "table re-created");
  assert(
    check.ops.some((o) => o.op === "add-elements" && o.set === "vip-backends-tcp"),
    "and the element written back",
  );
});

Deno.test("drift: an outline that cannot be read means a full check", async () => {
  const { nft, options } = await setup();
  const failing: NftExecutor = {
    apply: (script) => nft.apply(script),
    listTable: (f) => nft.listTable(f),
    listSet: (f, kind, name) => nft.listSet(f, kind, name),
    listOutline: () => Promise.reject(new Error("nft: cannot list")),
  };
  const check = await repairDrift({ ...options, executor: failing, elements: false });
  assertEquals(check.read, "full", "full check");
});

Deno.test("drift: sameOutline compares chains and declarations", async () => {
  const { nft } = await setup();
  const ip = TABLES[0];
  assert(sameOutline(parseTable(await nft.listOutline("ip"), ip), ip), "same");
  const fewer = { ...ip, chains: new Map([...ip.chains].slice(1)) };
  assert(!sameOutline(parseTable(await nft.listOutline("ip"), ip), fewer), "a chain more");
});
