/**
 * deploy/kubernetes/rbac.yaml grants exactly what the Kubernetes source asks the API server for:
 * every request the source makes (recorded by the fake API server, in both endpoint modes) is
 * allowed by a rule, and every verb a rule grants is used.
 */

import { parse } from "yaml";
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { KubeSource } from "../../src/sources/kube/kube_source.ts";
import type { ResourceName } from "../fake_apiserver/fake_apiserver.ts";
import { makeNamespace, makeNode } from "../fake_apiserver/fixtures.ts";
import { startHarness, waitFor } from "./harness.ts";

const GROUP: Record<ResourceName, string> = {
  services: "",
  endpoints: "",
  namespaces: "",
  nodes: "",
  endpointslices: "discovery.k8s.io",
  servicecidrs: "networking.k8s.io",
  pods: "",
};

Deno.test("rbac.yaml grants exactly the requests the Kubernetes source makes", async () => {
  const used = new Set<string>();
  for (const useEndpoints of [false, true]) {
    const h = await startHarness();
    h.api.onRequest = (r) => used.add(`${GROUP[r.resource]}/${r.resource} ${r.verb}`);
    h.api.create("namespaces", makeNamespace("default"));
    h.api.create("nodes", makeNode("node-a"));
    const source = new KubeSource({
      kubeconfigPath: h.kubeconfig,
      useEndpoints,
      nodeName: "node-a",
      // This node's pods: the DNS search path on the server (issue 16).
      nodePods: { nodeName: "node-a", onChange: () => {} },
      syncTimeoutMs: 5000,
      log: h.log,
    });
    try {
      await source.start(h.sink);
      await waitFor("every watch open", () => h.api.openWatches() >= 6);
    } finally {
      await source.stop();
      await h.close();
    }
  }
  const text = await Deno.readTextFile(
    new URL("../../deploy/kubernetes/rbac.yaml", import.meta.url),
  );
  const role = text.split(/^---$/m).map((d) => parse(d)).find((d) => d?.kind === "ClusterRole");
  const granted = new Set<string>();
  for (
    const rule of role.rules as { apiGroups: string[]; resources: string[]; verbs: string[] }[]
  ) {
    for (const group of rule.apiGroups) {
      for (const resource of rule.resources) {
        for (const verb of rule.verbs) granted.add(`${group}/${resource} ${verb}`);
      }
    }
  }
  assertEquals([...used].sort(), [...granted].sort(), "requests made = verbs granted");
});
