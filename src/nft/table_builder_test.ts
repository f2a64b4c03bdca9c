import { endpointSet, ep, port, service, snapshotOf } from "../../tests/support/nft_fixtures.ts";
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { renderRuleset } from "./render.ts";
import type { RenderOptions } from "./render_options.ts";
import { renderServiceFragment } from "./service_fragment.ts";
import { TableBuilder } from "./table_builder.ts";
import type { Service } from "../model/types.ts";

/** Options without CIDRs, so the golden lines show only what services contribute. */
const BARE: RenderOptions = { clusterCidrs: [], nodeName: "node-a", nodePortAddresses: [] };

Deno.test("render: two services claiming one NodePort: the first by key wins, with a warning", () => {
  const a = service("a", ["198.19.0.1"], [port(80, 8080, "TCP", "", 30080)], { type: "NodePort" });
  const b = service("b", ["198.19.0.2"], [port(80, 9090, "TCP", "", 30080)], { type: "NodePort" });
  const sets = [endpointSet(a, [ep("198.18.0.10")]), endpointSet(b, [ep("198.18.0.11")])];
  const rs = renderRuleset(snapshotOf([b, a], sets), BARE);
  assertEquals(
    rs.tables[0].elements.get("nodeport-backends-tcp")!.get("30080 . 0"),
    "198.18.0.10 . 8080",
    "a wins",
  );
  assertEquals(rs.warnings, [
    'services "default/a", "default/b" all claim nodeport-backends-tcp element "30080 . 0"; "default/a" wins',
  ], "conflict warning");
});

Deno.test("render: a shared or contested element passes to the remaining owner when one goes", () => {
  const a = service("a", ["198.19.0.1"], [port(80, 8080, "TCP", "", 30080)], { type: "NodePort" });
  const b = service("b", ["198.19.0.2"], [port(80, 9090, "TCP", "", 30080)], { type: "NodePort" });
  const snap = snapshotOf([a, b], [
    endpointSet(a, [ep("198.18.0.10")]),
    endpointSet(b, [ep("198.18.0.10")]),
  ]);
  const fragment = (s: Service) =>
    renderServiceFragment(snap.services.get(`default/${s.name}`)!, "ip", BARE);
  const builder = new TableBuilder("ip", BARE);
  builder.setService("default/b", fragment(b));
  builder.setService("default/a", fragment(a));
  const backends = builder.table.elements.get("nodeport-backends-tcp")!;
  const hairpin = builder.table.elements.get("hairpin")!;
  assertEquals(backends.get("30080 . 0"), "198.18.0.10 . 8080", "a wins");
  assertEquals(builder.warnings().length, 1, "the conflict is warned");
  builder.clearJournal();
  builder.setService("default/a", null);
  assertEquals(backends.get("30080 . 0"), "198.18.0.10 . 9090", "b takes over");
  assert(hairpin.has("198.18.0.10 . 198.18.0.10"), "b still claims the shared pair");
  assertEquals(builder.journal().elements.get("hairpin"), undefined, "the pair never left");
  assertEquals(builder.warnings(), [], "no conflict left");
  builder.setService("default/b", null);
  assertEquals([...hairpin.keys()], [], "the pair goes with its last owner");
  assertEquals(backends.size, 0, "no backend left");
});

/** Every element and chain of a table, as sorted text. */
function contentOf(builder: TableBuilder): string[] {
  const out: string[] = [];
  for (const [set, els] of builder.table.elements) {
    for (const [k, v] of els) out.push(`${set}: ${k} : ${v}`);
  }
  for (const name of builder.table.chains.keys()) out.push(`chain ${name}`);
  return out.sort();
}

Deno.test("table builder: a change takes only the new fragment; what the old one claimed goes", () => {
  const options = BARE;
  const web = service("web", ["198.19.0.10", "2001:db8:ffff::10"], [
    port(80, 8080, "TCP", "http", 30080),
    port(53, 5353, "UDP", "dns"),
  ], { type: "NodePort", sessionAffinity: "ClientIP" });
  const versions = [
    [ep("198.18.0.10"), ep("198.18.0.11"), ep("2001:db8::a")],
    [ep("198.18.0.12")],
    [],
    [ep("198.18.0.10"), ep("198.18.0.13", { nodeName: "node-b" }), ep("2001:db8::b")],
  ];
  for (const family of ["ip", "ip6"] as const) {
    const builder = new TableBuilder(family, options);
    const empty = contentOf(builder);
    for (const [i, endpoints] of versions.entries()) {
      const snap = snapshotOf([web], endpoints.length ? [endpointSet(web, endpoints)] : []);
      const fragment = renderServiceFragment(snap.services.get("default/web")!, family, options);
      builder.setService("default/web", fragment);
      const fresh = new TableBuilder(family, options);
      fresh.setService("default/web", fragment);
      assertEquals(contentOf(builder), contentOf(fresh), `${family} version ${i}`);
    }
    builder.setService("default/web", null);
    assertEquals(contentOf(builder), empty, `${family}: removed`);
    assertEquals(builder.warnings(), [], `${family}: no warnings left`);
  }
});
