/**
 * A Service for tests: `testService("default/web", { clusterIPs: ["198.19.0.10"] })` gives a
 * ClusterIP service with one TCP port 80 -> 8080 and every other field at Kubernetes' default.
 * @module
 */

import type { Service } from "../../src/model/types.ts";

/** Builds a test Service from its `namespace/name` key and overrides. */
export function testService(key: string, extra: Partial<Service> = {}): Service {
  const [namespace, name] = key.split("/");
  return {
    namespace,
    name,
    type: "ClusterIP",
    clusterIPs: [],
    headless: false,
    ports: [{ name: "", protocol: "TCP", port: 80, targetPort: 8080 }],
    externalIPs: [],
    loadBalancerIPs: [],
    loadBalancerSourceRanges: [],
    sessionAffinity: "None",
    sessionAffinityTimeoutSeconds: 10800,
    internalTrafficPolicy: "Cluster",
    externalTrafficPolicy: "Cluster",
    publishNotReadyAddresses: false,
    ipFamilies: [],
    labels: {},
    annotations: {},
    ...extra,
  };
}
