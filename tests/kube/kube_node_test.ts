/**
 * The Kubernetes source reads this node's Node object alone (get and watch by name: RBAC grants
 * no list of nodes): its zone, pod CIDRs and addresses reach the snapshot, its deletion and the
 * cluster autoscaler's taint reach `store.node` (for /healthz).
 */

import { KubeSource } from "../../src/sources/kube/kube_source.ts";
import { makeNamespace, makeNode } from "../fake_apiserver/fixtures.ts";
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { type Harness, sleep, startHarness, waitFor } from "./harness.ts";

function newSource(h: Harness, nodeName?: string): KubeSource {
  return new KubeSource({
    kubeconfigPath: h.kubeconfig,
    useEndpoints: false,
    ...(nodeName ? { nodeName } : {}),
    syncTimeoutMs: 5000,
    log: h.log,
    backoff: { initialMs: 100, maxMs: 1000 },
  });
}

Deno.test("kube source: this node's Node alone, by get and a watch by name; no list of nodes", async () => {
  const h = await startHarness();
  const source = newSource(h, "node-a");
  try {
    h.api.create("namespaces", makeNamespace("default"));
    h.api.create("nodes", makeNode("node-b", { zone: "zone-b" }));
    h.api.create(
      "nodes",
      makeNode("node-a", {
        zone: "zone-a",
        podCIDRs: ["198.18.0.0/24"],
        addresses: ["198.18.0.1"],
      }),
    );
    await source.start(h.sink);
    const node = () => h.store.node;
    assertEquals(node()?.name, "node-a", "this node, not node-b");
    assertEquals(h.store.snapshot.node?.zone, "zone-a", "the zone reaches the snapshot");
    assertEquals(h.store.snapshot.node?.podCidrs.map((c) => c.text), ["198.18.0.0/24"]);
    assertEquals(h.store.snapshot.node?.addresses, ["198.18.0.1"]);
    const counts = h.api.counts;
    assertEquals(counts.list.nodes, 0, "nodes are never listed (RBAC: get and watch)");
    assert(counts.get.nodes >= 1, "this node is read with a get");
    await waitFor("one watch, on this node", () => h.api.openWatches("nodes") === 1);

    const versionBefore = h.store.snapshot.version;
    h.api.update(
      "nodes",
      makeNode("node-a", {
        zone: "zone-a",
        podCIDRs: ["198.18.0.0/24"],
        addresses: ["198.18.0.1"],
        taints: [{ key: "ToBeDeletedByClusterAutoscaler", value: "1", effect: "NoSchedule" }],
      }),
    );
    await waitFor("the autoscaler's taint", () => node()?.toBeDeleted === true);
    assertEquals(h.store.snapshot.version, versionBefore, "a taint alone changes no rule");
    h.api.update("nodes", makeNode("node-b", { zone: "zone-c" }));
    await sleep(300);
    assertEquals(
      [node()?.name, node()?.zone],
      ["node-a", "zone-a"],
      "another node's change is not seen",
    );
    h.api.update(
      "nodes",
      makeNode("node-a", { zone: "zone-z", deletionTimestamp: "2025-06-01T12:00:00Z" }),
    );
    await waitFor("deletion and the new zone", () => node()?.deleting === true);
    assertEquals(node()?.toBeDeleted, false, "taint removed");
    await waitFor("the new zone in a snapshot", () => h.store.snapshot.node?.zone === "zone-z");
    h.api.delete("nodes", undefined, "node-a");
    await waitFor("the Node gone", () => node() === null);
  } finally {
    await source.stop();
    await h.close();
  }
});

Deno.test("kube source: a missing Node does not hold up the initial sync; it is picked up when created", async () => {
  const h = await startHarness();
  const source = newSource(h, "node-a");
  try {
    await source.start(h.sink);
    assertEquals(h.store.node, null, "no Node yet");
    h.api.create("nodes", makeNode("node-a", { zone: "zone-a" }));
    await waitFor("the Node created later", () => h.store.node?.zone === "zone-a");
  } finally {
    await source.stop();
    await h.close();
  }
});

Deno.test("kube source: ServiceCIDR objects are the service ranges; none, or the API absent, leave --service-cidr", async (t) => {
  for (const absent of [false, true]) {
    await t.step(absent ? "an API server without ServiceCIDR" : "ServiceCIDR objects", async () => {
      const h = await startHarness(absent ? { absent: ["servicecidrs"] } : {});
      const source = newSource(h);
      const cidrs = () => h.store.snapshot.serviceCidrs?.map((c) => c.text).join(",");
      try {
        const make = (name: string, list: string[]) => ({
          apiVersion: "networking.k8s.io/v1",
          kind: "ServiceCIDR",
          metadata: { name },
          spec: { cidrs: list },
        });
        if (!absent) h.api.create("servicecidrs", make("kubernetes", ["198.19.0.0/24"]));
        await source.start(h.sink);
        if (absent) {
          assertEquals(cidrs(), undefined, "unknown: --service-cidr applies");
          assertEquals(source.status(), { synced: true, degraded: false }, "not an error");
          return;
        }
        assertEquals(cidrs(), "198.19.0.0/24");
        h.api.create("servicecidrs", make("extra", ["198.19.9.0/24", "2001:db8:19::/112"]));
        await waitFor(
          "the second range",
          () => cidrs() === "198.19.0.0/24,198.19.9.0/24,2001:db8:19::/112",
        );
        h.api.delete("servicecidrs", undefined, "extra");
        h.api.delete("servicecidrs", undefined, "kubernetes");
        await waitFor("none: unknown again", () => cidrs() === undefined);
      } finally {
        await source.stop();
        await h.close();
      }
    });
  }
});
