/**
 * Snapshot -> the whole desired nftables ruleset, tables `ip svcgate` and `ip6 svcgate`. Pure.
 *
 * The parts: render_options.ts (what the renderer knows about the node), skeleton.ts (the sets,
 * maps and chains of every table), service_fragment.ts (what one service contributes) and
 * table_builder.ts (the incremental table the dataplane keeps). The shape and why: README.md.
 * @module
 */

import type { Snapshot } from "../model/snapshot.ts";
import { FAMILIES, type Ruleset } from "./ruleset.ts";
import { effectiveRenderOptions, type RenderOptions } from "./render_options.ts";
import { renderServiceFragment } from "./service_fragment.ts";
import { TableBuilder } from "./table_builder.ts";

export type { RenderOptions } from "./render_options.ts";

/**
 * Renders the whole desired ruleset of a snapshot: tables `ip svcgate` and `ip6 svcgate`.
 *
 * @example
 * ```ts
 * const ruleset = renderRuleset(store.snapshot, {
 *   clusterCidrs: [parseCidr("198.18.0.0/16") as Cidr],
 *   nodeName: "node-1",
 *   nodePortAddresses: [],
 * });
 * console.log(formatRuleset(ruleset));
 * ```
 */
export function renderRuleset(snapshot: Snapshot, base: RenderOptions): Ruleset {
  const options = effectiveRenderOptions(base, snapshot.node, snapshot.serviceCidrs);
  const warnings = new Set<string>();
  const tables = FAMILIES.map((family) => {
    const builder = new TableBuilder(family, options);
    const keys = [...snapshot.services.keys()].sort();
    for (const key of keys) {
      builder.setService(key, renderServiceFragment(snapshot.services.get(key)!, family, options));
    }
    for (const w of builder.warnings()) warnings.add(w);
    return builder.table;
  });
  return { tables, warnings: [...warnings].sort() };
}
