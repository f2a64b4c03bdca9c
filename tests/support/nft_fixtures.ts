/**
 * Builders of services, endpoint sets and snapshots for the nft tests and benchmarks. Pure.
 * @module
 */

import type { Snapshot } from "../../src/model/snapshot.ts";
import { ModelStore } from "../../src/model/store.ts";
import type {
  Endpoint,
  EndpointSet,
  Protocol,
  Service,
  ServicePort,
} from "../../src/model/types.ts";
import type { RenderOptions } from "../../src/nft/render_options.ts";
import { testService } from "./test_service.ts";
import { cidr, ip, ips } from "./model_values.ts";
export { cidr } from "./model_values.ts";

/** A port: `port(80, 8080)`, `port(53, 53, "UDP", "dns")`. */
export function port(
  p: number,
  targetPort: number | string = p,
  protocol: Protocol = "TCP",
  name = "",
  nodePort?: number,
): ServicePort {
  return { name, protocol, port: p, targetPort, ...(nodePort ? { nodePort } : {}) };
}

/** A ClusterIP service with defaults; override anything. */
export function service(
  name: string,
  clusterIPs: string[],
  ports: ServicePort[],
  extra: Partial<Service> = {},
): Service {
  return testService(`default/${name}`, { clusterIPs: ips(...clusterIPs), ports, ...extra });
}

/** A ready endpoint on a node. */
export function ep(address: string, extra: Partial<Endpoint> = {}): Endpoint {
  return {
    address: ip(address),
    ready: true,
    serving: true,
    terminating: false,
    nodeName: "node-a",
    ...extra,
  };
}

/**
 * An endpoint set for a service; its ports mirror the service ports by name and protocol, with
 * the given target port numbers (default: the service's numeric targetPort).
 */
export function endpointSet(
  svc: Service,
  endpoints: Endpoint[],
  targetPorts?: number[],
  id = `${svc.name}-1`,
): EndpointSet {
  return {
    namespace: svc.namespace,
    serviceName: svc.name,
    id,
    ports: svc.ports.map((p, i) => ({
      name: p.name,
      protocol: p.protocol,
      port: targetPorts?.[i] ?? (typeof p.targetPort === "number" ? p.targetPort : p.port),
    })),
    endpoints,
  };
}

/** Commits services and endpoint sets into a snapshot. */
export function snapshotOf(services: Service[], sets: EndpointSet[]): Snapshot {
  const store = new ModelStore();
  for (const s of services) store.setService(s);
  for (const e of sets) store.setEndpointSet(e);
  return store.commit().snapshot;
}

/** Render options of the lab: pods in 198.18.0.0/24 and 2001:db8::/64, node "node-a". */
export const LAB_OPTIONS: RenderOptions = {
  clusterCidrs: [cidr("198.18.0.0/24"), cidr("2001:db8::/64")],
  nodeName: "node-a",
  nodePortAddresses: [],
};
