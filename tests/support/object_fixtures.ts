/**
 * Builders of raw Kubernetes objects for the parser tests in this folder: valid by default, with
 * the given fields merged in.
 * @module
 */

import type { EndpointSet, Service } from "../../src/model/types.ts";
import { testService } from "./test_service.ts";

/** A raw object as decoded from YAML or JSON. */
export type Obj = Record<string, unknown>;

/** A valid Service with the given spec fields and metadata fields merged in. */
export function svc(spec: Obj = {}, metadata: Obj = {}, extra: Obj = {}): Obj {
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: { name: "web", ...metadata },
    spec: { ports: [{ port: 80 }], ...spec },
    ...extra,
  };
}

/** A valid EndpointSlice with the given fields merged in. */
export function slice(
  fields: Obj = {},
  labels: Obj = { "kubernetes.io/service-name": "web" },
): Obj {
  return {
    apiVersion: "discovery.k8s.io/v1",
    kind: "EndpointSlice",
    metadata: { name: "web-1", labels },
    addressType: "IPv4",
    endpoints: [{ addresses: ["198.18.0.10"] }],
    ports: [{ port: 8080 }],
    ...fields,
  };
}

/** A set's fields as plain data (parsed sets keep their endpoints packed: model/endpoint_set.ts). */
export function plainSet(set: EndpointSet | undefined) {
  if (!set) return set;
  const { namespace, serviceName, id, ports, endpoints } = set;
  return { namespace, serviceName, id, ports, endpoints };
}

/** A valid v1 Endpoints named by `metadata` (default "web") with these subsets. */
export function endpoints(subsets: unknown, metadata: Obj = { name: "web" }): Obj {
  return { apiVersion: "v1", kind: "Endpoints", metadata, subsets };
}

/** What `svc()` parses into: a ClusterIP Service "default/web" with one TCP port 80 -> 80. */
export const BASE_SERVICE: Service = testService("default/web", {
  ports: [{ name: "", protocol: "TCP", port: 80, targetPort: 80 }],
});
