import {
  endpointSet,
  ep,
  LAB_OPTIONS,
  port,
  service,
  snapshotOf,
} from "../../tests/support/nft_fixtures.ts";
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { planScoped } from "./diff.ts";
import { staleFlows } from "./flow_cleanup.ts";
import type { Family, TableSpec } from "./ruleset.ts";
import { renderServiceFragment } from "./service_fragment.ts";
import { TableBuilder } from "./table_builder.ts";
import type { Service } from "../model/types.ts";

/** The ops of changing one service from `before` to `after` endpoints, and the tables after. */
function change(svc: Service, before: string[] | null, after: string[]) {
  const builder = new TableBuilder("ip", LAB_OPTIONS);
  const fragment = (addrs: string[]) =>
    renderServiceFragment(
      snapshotOf([svc], addrs.length ? [endpointSet(svc, addrs.map((a) => ep(a)))] : [])
        .services.get(`default/${svc.name}`)!,
      "ip",
      LAB_OPTIONS,
    );
  if (before) builder.setService(`default/${svc.name}`, fragment(before));
  builder.clearJournal();
  builder.setService(`default/${svc.name}`, fragment(after));
  const ops = planScoped(builder.journal(), builder.table);
  return { ops, tables: new Map<Family, TableSpec>([["ip", builder.table]]) };
}

const dns = service("dns", ["198.19.0.53"], [
  port(53, 5353, "UDP", "dns"),
  port(53, 5353, "TCP", "tcp"),
]);
const EXISTED = new Map<Family, boolean>([["ip", true]]);

Deno.test("flow cleanup: a removed UDP endpoint's flows are stale; TCP and still-serving ones are not", () => {
  const { ops, tables } = change(dns, ["198.18.0.20", "198.18.0.21", "198.18.0.22"], [
    "198.18.0.22",
    "198.18.0.20",
  ]);
  assertEquals(staleFlows(ops, tables, EXISTED), {
    flows: [{ family: "ip", origDst: "198.19.0.53", origPortDst: 53, replySrc: "198.18.0.21" }],
    affinity: [],
  }, "stale");
});

Deno.test("flow cleanup: a UDP service that starts routing clears flows to its port, only on a table that existed", () => {
  const { ops, tables } = change(dns, [], ["198.18.0.20"]);
  assertEquals(staleFlows(ops, tables, EXISTED).flows, [
    { family: "ip", origDst: "198.19.0.53", origPortDst: 53 },
  ], "existed");
  assertEquals(staleFlows(ops, tables, new Map([["ip", false]])).flows, [], "new table");
  const first = change(dns, null, ["198.18.0.20"]);
  assertEquals(staleFlows(first.ops, first.tables, EXISTED).flows, [
    { family: "ip", origDst: "198.19.0.53", origPortDst: 53 },
  ], "a new service");
});

Deno.test("flow cleanup: affinity entries of a removed endpoint are stale, for VIPs and NodePorts", () => {
  const aff = service("aff", ["198.19.0.60"], [port(80, 8080, "TCP", "", 30060)], {
    type: "NodePort",
    sessionAffinity: "ClientIP",
  });
  const { ops, tables } = change(aff, ["198.18.0.10", "198.18.0.11"], ["198.18.0.10"]);
  const stale = (vip: string | undefined, port: number) => ({
    family: "ip",
    map: "affinity-tcp",
    vip,
    port,
    value: "198.18.0.11 . 8080",
    endpoint: "198.18.0.11",
  });
  assertEquals(staleFlows(ops, tables, EXISTED), {
    flows: [],
    affinity: [stale("198.19.0.60", 80), stale(undefined, 30060)],
  }, "stale");
});
