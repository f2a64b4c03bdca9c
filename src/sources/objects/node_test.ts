import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { parseNode } from "./node.ts";
import { formatError } from "./validate.ts";

Deno.test("parseNode: the facts svcgate reads of its own node", () => {
  const base = { apiVersion: "v1", kind: "Node", metadata: { name: "node-a" } };
  // [what, object, facts as text or the first error]
  const table: [string, Record<string, unknown>, string][] = [
    ["bare node", base, "node-a zone=- pods=- addrs=- deleting=false toBeDeleted=false"],
    [
      "zone label, pod CIDRs, addresses (InternalIP first)",
      {
        ...base,
        metadata: { name: "node-a", labels: { "topology.kubernetes.io/zone": "zone-a" } },
        spec: { podCIDR: "198.18.1.0/24", podCIDRs: ["198.18.1.0/24", "2001:db8:1::/64"] },
        status: {
          addresses: [
            { type: "Hostname", address: "node-a" },
            { type: "ExternalIP", address: "198.18.100.1" },
            { type: "InternalIP", address: "198.18.0.1" },
          ],
        },
      },
      "node-a zone=zone-a pods=198.18.1.0/24,2001:db8:1::/64 addrs=198.18.0.1,198.18.100.1 deleting=false toBeDeleted=false",
    ],
    [
      "only the old single podCIDR",
      { ...base, spec: { podCIDR: "198.18.1.0/24" } },
      "node-a zone=- pods=198.18.1.0/24 addrs=- deleting=false toBeDeleted=false",
    ],
    [
      "being deleted",
      { ...base, metadata: { name: "node-a", deletionTimestamp: "2025-06-01T12:00:00Z" } },
      "node-a zone=- pods=- addrs=- deleting=true toBeDeleted=false",
    ],
    [
      "tainted by the cluster autoscaler (other taints do not count)",
      {
        ...base,
        spec: {
          taints: [
            { key: "node.kubernetes.io/unschedulable", effect: "NoSchedule" },
            { key: "ToBeDeletedByClusterAutoscaler", value: "1717243200", effect: "NoSchedule" },
          ],
        },
      },
      "node-a zone=- pods=- addrs=- deleting=false toBeDeleted=true",
    ],
    [
      "a bad pod CIDR names the field and value",
      { ...base, spec: { podCIDRs: ["198.18.1.0/33"] } },
      'API Node node-a spec.podCIDRs[0]: "198.18.1.0/33" is not a CIDR: prefix is invalid',
    ],
  ];
  for (const [what, obj, expected] of table) {
    const { value, errors } = parseNode(obj, "API Node node-a");
    const got = value
      ? `${value.name} zone=${value.zone ?? "-"} pods=${
        value.podCidrs.map((c) => c.text).join(",") || "-"
      } addrs=${
        value.addresses.join(",") || "-"
      } deleting=${value.deleting} toBeDeleted=${value.toBeDeleted}`
      : formatError(errors[0]);
    assertEquals(got, expected, what);
  }
});
