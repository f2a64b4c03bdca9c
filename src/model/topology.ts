/**
 * Endpoint selection: which of a service port's endpoints traffic may go to, from this node. The
 * one place for traffic policies, the terminating fallback and topology (trafficDistribution and
 * EndpointSlice hints), as kube-proxy's `CategorizeEndpoints` (pkg/proxy/topology.go). Pure.
 *
 * Topology follows kube-proxy, which reads only hints: when every ready endpoint has a node hint
 * and one is hinted for this node, only endpoints hinted for this node serve ("PreferSameNode");
 * else when every ready endpoint has a zone hint and one is hinted for this node's zone, only
 * those serve ("PreferSameZone"); else every ready endpoint does. In Kubernetes the EndpointSlice
 * controller writes the hints from the Service's `trafficDistribution`; where nobody wrote any
 * (manifest files: no controller), they are derived from `trafficDistribution` exactly as the
 * controller would, so the same Service behaves the same in both modes.
 * @module
 */

import type { TrafficDistribution, TrafficPolicy } from "./types.ts";

/** The conditions and topology selection reads; a Backend or an Endpoint has them. */
export interface EndpointConditions {
  readonly ready: boolean;
  readonly serving: boolean;
  readonly terminating: boolean;
  readonly nodeName?: string;
  readonly zone?: string;
  /** EndpointSlice `hints.forZones` names. */
  readonly zoneHints?: readonly string[];
  /** EndpointSlice `hints.forNodes` names. */
  readonly nodeHints?: readonly string[];
}

/** The node that selects: endpoints with its name are local; its zone (if known) for hints. */
export interface NodeTopology {
  readonly nodeName: string;
  /** The node's `topology.kubernetes.io/zone` label. */
  readonly zone?: string;
}

/** The traffic policies of a service, and its traffic distribution (a Service has them). */
export interface TrafficPolicies {
  readonly internalTrafficPolicy: TrafficPolicy;
  readonly externalTrafficPolicy: TrafficPolicy;
  readonly trafficDistribution?: TrafficDistribution;
}

/** Which topology rule applies to a service port's endpoints, as kube-proxy names them. */
export type TopologyMode = "" | "PreferSameZone" | "PreferSameNode";

/** What {@link categorizeEndpoints} returns. */
export interface EndpointCategories<T> {
  /**
   * Endpoints for Cluster-policy traffic: the ready ones (narrowed by topology), else
   * serving-and-terminating ones.
   */
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
  /** The topology rule that narrowed `cluster` ("" when none did). */
  readonly topology: TopologyMode;
}

/** The hints of one endpoint: its own, or derived from trafficDistribution (see the module doc). */
interface Hints {
  zones(e: EndpointConditions): readonly string[] | undefined;
  nodes(e: EndpointConditions): readonly string[] | undefined;
}

const OWN_HINTS: Hints = { zones: (e) => e.zoneHints, nodes: (e) => e.nodeHints };

/** As the EndpointSlice controller writes them (trafficdist.go): ready endpoints only. */
function derivedHints(distribution: TrafficDistribution): Hints {
  const sameNode = distribution === "PreferSameNode";
  return {
    zones: (e) => e.ready && e.zone !== undefined ? [e.zone] : undefined,
    nodes: (e) => sameNode && e.ready && e.nodeName !== undefined ? [e.nodeName] : undefined,
  };
}

function hintsOf<T extends EndpointConditions>(
  endpoints: readonly T[],
  distribution: TrafficDistribution | undefined,
): Hints {
  if (distribution === undefined) return OWN_HINTS;
  for (const e of endpoints) if (e.zoneHints || e.nodeHints) return OWN_HINTS;
  return derivedHints(distribution);
}

/** kube-proxy's topologyModeFromHints, with PreferSameTrafficDistribution enabled. */
function topologyMode<T extends EndpointConditions>(
  endpoints: readonly T[],
  hints: Hints,
  node: NodeTopology,
): TopologyMode {
  let anyReady = false, forNode = false, allNodeHints = true, forZone = false, allZoneHints = true;
  for (const e of endpoints) {
    if (!e.ready) continue;
    anyReady = true;
    const nodes = hints.nodes(e);
    if (!nodes || nodes.length === 0) allNodeHints = false;
    else if (nodes.includes(node.nodeName)) forNode = true;
    const zones = hints.zones(e);
    if (!zones || zones.length === 0) allZoneHints = false;
    else if (node.zone !== undefined && zones.includes(node.zone)) forZone = true;
  }
  if (!anyReady) return "";
  if (allNodeHints && forNode) return "PreferSameNode";
  if (allZoneHints && forZone) return "PreferSameZone";
  return "";
}

/** Ready endpoints; when none is ready, serving-and-terminating ones (draining pods finish). */
function usable<T extends EndpointConditions>(
  endpoints: readonly T[],
  available: (e: T) => boolean = () => true,
): readonly T[] {
  const ready = endpoints.filter((e) => e.ready && available(e));
  if (ready.length > 0) return ready;
  // A topology mode is chosen only when some ready endpoint is available under it, so an empty
  // list here means none is ready anywhere.
  return endpoints.filter((e) => e.serving && e.terminating);
}

/**
 * Sorts one service port's endpoints into what each kind of traffic may use, from `node`.
 * Endpoint order is kept.
 *
 * @example
 * ```ts
 * const { internal, hasAny } = categorizeEndpoints(port.backends, service, {
 *   nodeName: "n1",
 *   zone: "zone-a",
 * });
 * ```
 */
export function categorizeEndpoints<T extends EndpointConditions>(
  endpoints: readonly T[],
  policies: TrafficPolicies,
  node: NodeTopology,
): EndpointCategories<T> {
  const hints = hintsOf(endpoints, policies.trafficDistribution);
  const mode = topologyMode(endpoints, hints, node);
  const cluster = mode === ""
    ? usable(endpoints)
    : mode === "PreferSameNode"
    ? usable(endpoints, (e) => hints.nodes(e)?.includes(node.nodeName) === true)
    : usable(endpoints, (e) => hints.zones(e)?.includes(node.zone!) === true);
  const local = usable(endpoints.filter((e) => e.nodeName === node.nodeName));
  return {
    cluster,
    local,
    internal: policies.internalTrafficPolicy === "Local" ? local : cluster,
    hasAny: cluster.length > 0,
    topology: mode,
  };
}
