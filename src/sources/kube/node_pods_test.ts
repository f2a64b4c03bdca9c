import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { NodePodIndex, nodePodsSelector } from "./node_pods.ts";

function pod(
  namespace: string,
  name: string,
  ips: string[],
  over: { rv?: string; hostNetwork?: boolean; phase?: string; legacyOnly?: boolean } = {},
) {
  return {
    metadata: { namespace, name, resourceVersion: over.rv ?? "1" },
    spec: { nodeName: "node-a", ...(over.hostNetwork ? { hostNetwork: true } : {}) },
    status: {
      phase: over.phase ?? "Running",
      ...(ips.length > 0 ? { podIP: ips[0] } : {}),
      ...(over.legacyOnly ? {} : { podIPs: ips.map((ip) => ({ ip })) }),
    },
  };
}

Deno.test("nodePodsSelector: the node's pods that have not finished", () => {
  assertEquals(
    nodePodsSelector("node-a"),
    "spec.nodeName=node-a,status.phase!=Succeeded,status.phase!=Failed",
  );
});

Deno.test("NodePodIndex: pods appear, change IP and leave; the map follows", () => {
  const seen: Record<string, string>[] = [];
  const index = new NodePodIndex((m) => seen.push(Object.fromEntries(m)));
  const list = index.beginList();
  list.add(pod("default", "web-1", ["198.18.0.11", "2001:DB8::b"]));
  list.add(pod("prod", "api-1", ["198.18.0.12"], { legacyOnly: true }));
  list.add(pod("kube-system", "proxy", ["198.18.0.1"], { hostNetwork: true }));
  list.add(pod("default", "job-1", ["198.18.0.13"], { phase: "Succeeded" }));
  list.add(pod("default", "pending", []));
  list.commit();
  assertEquals(seen.at(-1), {
    "198.18.0.11": "default",
    "2001:db8::b": "default",
    "198.18.0.12": "prod",
  });
  // A new pod.
  index.upsert(pod("prod", "api-2", ["198.18.0.14"], { rv: "2" }));
  assertEquals(seen.at(-1)?.["198.18.0.14"], "prod");
  // The same version again changes nothing; a status change without new IPs publishes nothing.
  const before = seen.length;
  index.upsert(pod("prod", "api-2", ["198.18.0.14"], { rv: "2" }));
  index.upsert(pod("prod", "api-2", ["198.18.0.14"], { rv: "3" }));
  assertEquals(seen.length, before);
  // A pod changes IP (recreated with the same name).
  index.upsert(pod("prod", "api-2", ["198.18.0.15"], { rv: "4" }));
  assertEquals(seen.at(-1)?.["198.18.0.14"], undefined);
  assertEquals(seen.at(-1)?.["198.18.0.15"], "prod");
  // A pod leaves.
  index.remove(pod("default", "web-1", []));
  assertEquals(seen.at(-1)?.["198.18.0.11"], undefined);
  assertEquals(index.size, 2, "pods without an IP of their own are not kept");
});

Deno.test("NodePodIndex: an IP held by pods of two namespaces is nobody's until one goes", () => {
  const index = new NodePodIndex();
  index.upsert(pod("a", "old", ["198.18.0.20"]));
  index.upsert(pod("b", "new", ["198.18.0.20"]));
  assertEquals(index.map.get("198.18.0.20"), undefined);
  index.remove(pod("a", "old", []));
  assertEquals(index.map.get("198.18.0.20"), "b");
});

Deno.test("NodePodIndex: a relist replaces what is gone", () => {
  const index = new NodePodIndex();
  index.upsert(pod("a", "x", ["198.18.0.30"]));
  const list = index.beginList();
  list.add(pod("a", "y", ["198.18.0.31"]));
  list.commit();
  assertEquals([...index.map], [["198.18.0.31", "a"]]);
});
