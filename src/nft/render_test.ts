import {
  endpointSet,
  ep,
  LAB_OPTIONS,
  port,
  service,
  snapshotOf,
} from "../../tests/support/nft_fixtures.ts";
import { strictEqual } from "node:assert/strict";
import { renderRuleset } from "./render.ts";
import { formatRuleset } from "./ruleset.ts";

// The exact text of a small dual-stack ruleset, including the fixed chains. Regenerate with
// UPDATE_GOLDEN=1 after an intended change, and review the diff.
Deno.test("render: golden text of a small dual-stack ruleset", async () => {
  const dual = service("web", ["198.19.0.10", "2001:db8:ffff::10"], [
    port(80, 8080, "TCP", "http", 30080),
    port(53, 9090, "UDP", "dns"),
  ], { type: "NodePort" });
  const rs = renderRuleset(
    snapshotOf([dual], [endpointSet(dual, [ep("198.18.0.10"), ep("2001:db8::a")])]),
    LAB_OPTIONS,
  );
  const text = formatRuleset(rs);
  const path = new URL("../../tests/fixtures/nft/golden_small.nft", import.meta.url);
  if (Deno.env.get("UPDATE_GOLDEN") === "1") await Deno.writeTextFile(path, text);
  strictEqual(text, await Deno.readTextFile(path), "golden ruleset");
});
