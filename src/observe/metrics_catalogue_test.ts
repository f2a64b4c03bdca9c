import { deepStrictEqual as assertEquals, strictEqual } from "node:assert/strict";
import { DNS_METRICS, type MetricDeclaration, METRICS } from "./metrics_catalogue.ts";
import { MetricsRegistry } from "./metrics.ts";

Deno.test("metrics catalogue: every name declared once, in svcgate's or the anchors' namespaces", () => {
  const all: MetricDeclaration[] = [...Object.values(METRICS), ...Object.values(DNS_METRICS)];
  const names = all.map((m) => m.name);
  assertEquals(names.length, new Set(names).size, "no name twice");
  for (const m of all) {
    strictEqual(/^(svcgate|process)_[a-z_]+$/.test(m.name), true, m.name);
    strictEqual(m.help.length > 0, true, `${m.name} has help`);
    if (m.type === "counter") strictEqual(m.name.endsWith("_total"), true, `${m.name} ends _total`);
    if (m.type === "histogram") strictEqual((m.buckets?.length ?? 0) > 0, true, m.name);
  }
});

Deno.test("MetricsRegistry.of: one metric per declaration, rendered with its help and type", () => {
  const registry = new MetricsRegistry();
  registry.of(METRICS.nftSyncs).inc({ mode: "full" });
  strictEqual(registry.of(METRICS.nftSyncs).get({ mode: "full" }), 1, "the same counter");
  registry.of(METRICS.syncDuration).observe(0.002);
  const text = registry.render();
  strictEqual(text.includes("# HELP svcgate_nft_syncs_total nftables syncs that succeeded"), true);
  strictEqual(text.includes('svcgate_nft_syncs_total{mode="full"} 1'), true, text);
  strictEqual(text.includes("# TYPE svcgate_sync_duration_seconds histogram"), true, text);
});
