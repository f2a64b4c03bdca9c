/**
 * The watch of this node's pods (KubeSource `nodePods`) with the real @kubernetes/client-node
 * against the fake API server over TLS: only this node's pods are listed and watched
 * (fieldSelector spec.nodeName), and their IP -> namespace map follows pods appearing, changing
 * IP, finishing and leaving; a pod watch that fails (no RBAC for pods) does not hold up the sync.
 */

import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { KubeSource } from "../../src/sources/kube/kube_source.ts";
import { makeNamespace, makePod, makeService } from "../fake_apiserver/fixtures.ts";
import { type Harness, startHarness, waitFor } from "./harness.ts";

const FAST_BACKOFF = { initialMs: 100, maxMs: 500 };

function seed(h: Harness): void {
  for (const ns of ["default", "prod"]) h.api.create("namespaces", makeNamespace(ns));
  h.api.create("services", makeService("default", "web", "198.19.0.10"));
  h.api.create("pods", makePod("default", "web-1", { nodeName: "node-a", ips: ["198.18.0.11"] }));
  h.api.create("pods", makePod("prod", "api-1", { nodeName: "node-b", ips: ["198.18.1.11"] }));
  h.api.create(
    "pods",
    makePod("kube-system", "proxy", { nodeName: "node-a", ips: ["198.18.0.1"], hostNetwork: true }),
  );
}

function start(h: Harness) {
  const maps: Record<string, string>[] = [];
  const source = new KubeSource({
    kubeconfigPath: h.kubeconfig,
    useEndpoints: false,
    syncTimeoutMs: 5000,
    log: h.log,
    backoff: FAST_BACKOFF,
    nodePods: { nodeName: "node-a", onChange: (m) => maps.push(Object.fromEntries(m)) },
  });
  const last = () => maps.at(-1) ?? {};
  return { source, maps, last };
}

Deno.test("node pods: this node's pods appear, change IP, finish and leave", async () => {
  const h = await startHarness();
  const { source, last } = start(h);
  try {
    seed(h);
    const podRequests: string[] = [];
    h.api.onRequest = (r) => {
      if (r.resource === "pods") podRequests.push(`${r.verb} ${r.params.get("fieldSelector")}`);
    };
    await source.start(h.sink);
    await waitFor("the first list of pods", () => last()["198.18.0.11"] === "default");
    assertEquals(last(), { "198.18.0.11": "default" }, "node-b's and host-network pods left out");
    // Every list and watch of pods asks for this node only.
    await waitFor("the pods watch", () => podRequests.some((r) => r.startsWith("watch")));
    const selector = "spec.nodeName=node-a,status.phase!=Succeeded,status.phase!=Failed";
    assertEquals([...new Set(podRequests)].sort(), [`list ${selector}`, `watch ${selector}`]);
    // A pod is scheduled here, then gets its IP.
    h.api.create("pods", makePod("prod", "api-2", { nodeName: "node-a" }));
    h.api.update("pods", makePod("prod", "api-2", { nodeName: "node-a", ips: ["198.18.0.12"] }));
    await waitFor("a new pod's IP", () => last()["198.18.0.12"] === "prod");
    // A pod is recreated with another IP (same name).
    h.api.update("pods", makePod("prod", "api-2", { nodeName: "node-a", ips: ["198.18.0.13"] }));
    await waitFor("the changed IP", () => last()["198.18.0.13"] === "prod");
    assertEquals(last()["198.18.0.12"], undefined, "the old IP is forgotten");
    // A pod finishes: it leaves the field selector (status.phase), and its IP with it.
    h.api.update("pods", makePod("prod", "api-2", { nodeName: "node-a", phase: "Succeeded" }));
    await waitFor("a finished pod to leave", () => last()["198.18.0.13"] === undefined);
    // A pod is deleted.
    h.api.delete("pods", "default", "web-1");
    await waitFor("a deleted pod to leave", () => Object.keys(last()).length === 0);
    // A pod on another node never shows.
    h.api.create("pods", makePod("prod", "api-3", { nodeName: "node-b", ips: ["198.18.1.12"] }));
    h.api.create("pods", makePod("default", "web-2", { nodeName: "node-a", ips: ["198.18.0.14"] }));
    await waitFor("web-2", () => last()["198.18.0.14"] === "default");
    assertEquals(last(), { "198.18.0.14": "default" });
  } finally {
    await source.stop();
    await h.close();
  }
});

Deno.test("node pods: a failing pod list (no RBAC for pods) does not hold up the sync", async () => {
  const h = await startHarness();
  const { source, last } = start(h);
  try {
    seed(h);
    h.api.failNextLists("pods", 3, 403);
    await source.start(h.sink);
    assertEquals(source.status().synced, true, "services synced without the pods");
    assertEquals(source.status().degraded, false, "the source is not degraded by the pods");
    // Retried with backoff; once the list succeeds the map arrives.
    await waitFor("the pods after the failures", () => last()["198.18.0.11"] === "default");
  } finally {
    await source.stop();
    await h.close();
  }
});
