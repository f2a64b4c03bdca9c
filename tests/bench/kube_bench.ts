/**
 * Kubernetes source benchmark: initial sync of 10,000 services and 100,000 endpoints from the
 * fake API server (over TLS, bearer token, paged lists) and event-to-model latency over 1,000
 * changes with the 10,000 services present.
 *
 * The client runs in its own process (tests/bench/kube_probe.ts) so that its RSS is its own; the
 * fake API server runs here. "Applied" means: the watch event was received, converted, written
 * to the model store and committed into a new snapshot. The daemon's stages (nft apply, DNS
 * publish) plug into the probe's ApplyStage to extend the measurement to "rule live" and
 * "DNS answer changed".
 *
 * Run: `deno run -A tests/bench/kube_bench.ts [--changes=1000] [--typed]`
 * @module
 */

import { startHarness } from "../kube/harness.ts";
import { makeService } from "../fake_apiserver/fixtures.ts";
import { epochMs } from "./kube_probe.ts";
import {
  CLUSTER_10K,
  loadScale,
  type Probe,
  serviceIp,
  serviceName,
  sliceOf,
  spawnProbe,
} from "./kube_scale.ts";

const MiB = 2 ** 20;

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

/** One change, applied through the fake API server; returns the service key it affects. */
type Change = (i: number) => string;

async function measureSync(kubeconfig: string, lists: "raw" | "typed") {
  const probe = spawnProbe(kubeconfig, { lists });
  try {
    const synced = await probe.next("synced");
    const settled = await probe.next("settled");
    return { probe, synced, settled };
  } catch (e) {
    await probe.kill();
    throw e;
  }
}

async function measureLatency(
  probe: Probe,
  changes: number,
  change: Change,
): Promise<{ latencies: number[]; commits: number[] }> {
  const latencies: number[] = [], commits: number[] = [];
  for (let i = 0; i < changes; i++) {
    const t0 = epochMs();
    const key = change(i);
    const applied = await probe.applied(key);
    latencies.push(applied.at - t0);
    commits.push(applied.commitMs);
  }
  return { latencies, commits };
}

if (import.meta.main) {
  const changes = Number(
    Deno.args.find((a) => a.startsWith("--changes="))?.slice("--changes=".length) ?? 1000,
  );
  const compareTyped = Deno.args.includes("--typed");
  const h = await startHarness();
  try {
    const t0 = performance.now();
    loadScale(h.api, CLUSTER_10K);
    console.log(
      `fake API server loaded: ${h.api.size("services")} services, ` +
        `${
          h.api.size("endpointslices")
        } slices (${CLUSTER_10K.endpointsPerService} endpoints each) ` +
        `in ${Math.round(performance.now() - t0)} ms`,
    );
    const modes: ("raw" | "typed")[] = compareTyped ? ["typed", "raw"] : ["raw"];
    let probe: Probe | null = null;
    for (const lists of modes) {
      const r = await measureSync(h.kubeconfig, lists);
      console.log(
        `initial sync (${lists} lists, pages of 500): ${r.synced.ms} ms to a committed snapshot of ` +
          `${r.synced.services} services / ${r.synced.endpoints} endpoints; ` +
          `RSS ${Math.round((r.synced.rss as number) / MiB)} MiB at sync, ` +
          `${Math.round((r.settled.rss as number) / MiB)} MiB after GC ` +
          `(heap used ${Math.round((r.settled.heapUsed as number) / MiB)} MiB)`,
      );
      if (lists === "raw") probe = r.probe;
      else await r.probe.kill();
    }
    // Event -> model latency, alternating an endpoint readiness flip and a service port change.
    const version = new Map<number, number>();
    const change: Change = (i) => {
      const n = (i * 7919) % CLUSTER_10K.services; // spread over the whole set
      const v = (version.get(n) ?? 0) + 1;
      version.set(n, v);
      const { namespace, name } = serviceName(CLUSTER_10K, n);
      if (i % 2 === 0) {
        h.api.update("endpointslices", sliceOf(CLUSTER_10K, n, v));
      } else {
        h.api.update(
          "services",
          makeService(namespace, name, serviceIp(n), [{
            name: "http",
            port: 80 + (v % 2),
            targetPort: 8080,
          }]),
        );
      }
      return `${namespace}/${name}`;
    };
    const { latencies, commits } = await measureLatency(probe!, changes, change);
    const fmt = (ms: number) => `${ms.toFixed(2)} ms`;
    const summary = (xs: number[]) => {
      const s = [...xs].sort((a, b) => a - b);
      return `p50 ${fmt(percentile(s, 50))}, p90 ${fmt(percentile(s, 90))}, ` +
        `p99 ${fmt(percentile(s, 99))}, max ${fmt(s[s.length - 1])}`;
    };
    console.log(
      `event -> model latency over ${changes} changes with ${CLUSTER_10K.services} services: ` +
        summary(latencies),
    );
    console.log(`  of which ModelStore.commit(): ${summary(commits)}`);
    console.log(`  slice changes: ${summary(latencies.filter((_, i) => i % 2 === 0))}`);
    console.log(`  service changes: ${summary(latencies.filter((_, i) => i % 2 === 1))}`);
    await probe!.kill();
  } finally {
    await h.close();
  }
}
