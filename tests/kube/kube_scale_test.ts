/**
 * 10,000 services and 100,000 endpoints listed (paged) and synced by the real client library,
 * in a child process whose time and RSS are reported (not asserted: see tests/bench).
 */

import { CLUSTER_10K, loadScale, serviceName, sliceOf, spawnProbe } from "../bench/kube_scale.ts";
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { startHarness } from "./harness.ts";

Deno.test("10,000 services and 100,000 endpoints are listed and synced", async () => {
  const h = await startHarness();
  const probe = spawnProbe(h.kubeconfig);
  try {
    const t0 = performance.now();
    loadScale(h.api, CLUSTER_10K);
    console.log(`loaded the fake API server in ${Math.round(performance.now() - t0)} ms`);
    const synced = await probe.next("synced");
    assertEquals(
      [synced.services, synced.endpoints, synced.namespaces],
      [10_000, 100_000, 100],
      "everything synced",
    );
    // 500 per page: 20 pages of services and of slices, 1 of namespaces.
    assertEquals(h.api.counts.list.services, 20, "services listed in pages of 500");
    assertEquals(h.api.counts.list.endpointslices, 20, "slices listed in pages of 500");
    const settled = await probe.next("settled");
    console.log(
      `synced in ${synced.ms} ms; RSS ${Math.round((synced.rss as number) / 2 ** 20)} MiB ` +
        `at sync, ${Math.round((settled.rss as number) / 2 ** 20)} MiB after GC ` +
        `(heap ${Math.round((settled.heapUsed as number) / 2 ** 20)} MiB)`,
    );
    // And the watches work at this size.
    const { namespace, name } = serviceName(CLUSTER_10K, 4242);
    h.api.update("endpointslices", sliceOf(CLUSTER_10K, 4242, 1));
    const applied = await probe.applied(`${namespace}/${name}`);
    assertEquals(applied.keys, [`${namespace}/${name}`], "one service changed");
  } finally {
    await probe.kill();
    await h.close();
  }
});
