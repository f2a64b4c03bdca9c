/**
 * Endpoint selection: which of a service port's endpoints traffic may go to, from this node. The
 * one place for traffic policies and the terminating fallback, as kube-proxy's
 * `CategorizeEndpoints` (pkg/proxy/topology.go). Pure.
 * @module
 */

import type { TrafficPolicy } from "./types.ts";

/** The conditions selection reads; a Backend or an Endpoint has them. */
export interface EndpointConditions {
  readonly ready: boolean;
  readonly serving: boolean;
  readonly terminating: boolean;
  readonly nodeName?: string;
  readonly zone?: string;
}

/** The node that selects: endpoints with its name are local. */
export interface NodeTopology {
  readonly nodeName: string;
}

/** The traffic policies of a service (a Service has them). */
export interface TrafficPolicies {
  readonly internalTrafficPolicy: TrafficPolicy;
  readonly externalTrafficPolicy: TrafficPolicy;
}

/** What {@link categorizeEndpoints} returns. */
export interface EndpointCategories<T> {
  /** Endpoints for Cluster-policy traffic: the ready ones, else serving-and-terminating ones. */
  readonly cluster: readonly T[];
  /** This node's endpoints for Local-policy traffic, with the same fallback among them. */
  readonly local: readonly T[];
  /** What ClusterIP traffic uses: `local` under internalTrafficPolicy Local, else `cluster`. */
  readonly internal: readonly T[];
  /**
   * True when some endpoint anywhere could serve (ready, or serving and terminating): a service
   * with none rejects connections; one whose usable endpoints are all elsewhere drops them.
   */
  readonly hasAny: boolean;
}

/** Ready endpoints; when none is ready, serving-and-terminating ones (draining pods finish). */
function usable<T extends EndpointConditions>(endpoints: readonly T[]): readonly T[] {
  const ready = endpoints.filter((e) => e.ready);
  if (ready.length > 0) return ready;
  return endpoints.filter((e) => e.serving && e.terminating);
}

/**
 * Sorts one service port's endpoints into what each kind of traffic may use, from `node`.
 * Endpoint order is kept.
 *
 * @example
 * ```ts
 * const { internal, hasAny } = categorizeEndpoints(port.backends, service, { nodeName: "n1" });
 * ```
 */
export function categorizeEndpoints<T extends EndpointConditions>(
  endpoints: readonly T[],
  policies: TrafficPolicies,
  node: NodeTopology,
): EndpointCategories<T> {
  const cluster = usable(endpoints);
  const local = usable(endpoints.filter((e) => e.nodeName === node.nodeName));
  return {
    cluster,
    local,
    internal: policies.internalTrafficPolicy === "Local" ? local : cluster,
    hasAny: cluster.length > 0,
  };
}
