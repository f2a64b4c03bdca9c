import { deepStrictEqual as assertEquals, strictEqual } from "node:assert/strict";
import {
  COREDNS_METRICS,
  DNS_METRICS,
  type MetricDeclaration,
  METRICS,
} from "./metrics_catalogue.ts";
import { MetricsRegistry } from "./metrics.ts";

Deno.test("metrics catalogue: every name declared once, in svcgate's or the anchors' namespaces", () => {
  const all: MetricDeclaration[] = [
    ...Object.values(METRICS),
    ...Object.values(DNS_METRICS),
    ...Object.values(COREDNS_METRICS),
  ];
  const names = all.map((m) => m.name);
  assertEquals(names.length, new Set(names).size, "no name twice");
  for (const m of all) {
    // kubeproxy_, coredns_: kube-proxy's and CoreDNS's names, kept for their dashboards and alerts.
    strictEqual(/^(svcgate|process|kubeproxy|coredns)_[a-z_]+$/.test(m.name), true, m.name);
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

Deno.test("kube-proxy's buckets, as its /metrics prints them", () => {
  const registry = new MetricsRegistry();
  registry.of(METRICS.kubeProxySyncDuration).observe(0.003, { ip_family: "IPv4" });
  registry.of(METRICS.kubeProxyNetworkProgramming).observe(0.3, { ip_family: "IPv4" });
  const les = (name: string) =>
    registry.render().split("\n").filter((l) => l.startsWith(`${name}_bucket`)).map((l) =>
      l.match(/le="([^"]+)"/)![1]
    );
  assertEquals(les("kubeproxy_sync_proxy_rules_duration_seconds"), [
    ..."0.001 0.002 0.004 0.008 0.016 0.032 0.064 0.128 0.256 0.512 1.024 2.048 4.096 8.192 16.384"
      .split(" "),
    "+Inf",
  ]);
  const programming = les("kubeproxy_network_programming_duration_seconds");
  assertEquals(programming.slice(0, 6), ["0", "0.25", "0.5", "1", "2", "3"]);
  assertEquals(programming.slice(60, 65), ["58", "59", "60", "65", "70"]);
  assertEquals(programming.slice(-4), ["240", "270", "300", "+Inf"]);
  assertEquals(programming.length, 1 + 2 + 59 + 12 + 7 + 1);
});
