/**
 * The typed model every source produces and every consumer (nft, DNS) reads.
 *
 * Objects are plain, immutable data: sources build them, the snapshot indexes them.
 * @module
 */

import type { Cidr, IpText } from "./ip.ts";

/** Transport protocols a Service port may use. */
export type Protocol = "TCP" | "UDP" | "SCTP";

/** IP family of an address: 4 or 6. */
export type IpFamily = 4 | 6;

/** Kubernetes Service types. */
export type ServiceType = "ClusterIP" | "NodePort" | "LoadBalancer" | "ExternalName";

/** Traffic policy for internal or external traffic. */
export type TrafficPolicy = "Cluster" | "Local";

/** `spec.trafficDistribution`: prefer endpoints close to the client (topology-aware routing). */
export type TrafficDistribution = "PreferClose" | "PreferSameZone" | "PreferSameNode";

/** Label whose presence means another proxy owns the service (as in kube-proxy). */
export const SERVICE_PROXY_NAME_LABEL = "service.kubernetes.io/service-proxy-name";

/** Label that ties an EndpointSlice to its Service. */
export const SERVICE_NAME_LABEL = "kubernetes.io/service-name";

/** One port of a Service. */
export interface ServicePort {
  /** Port name; "" when the service has a single unnamed port. */
  readonly name: string;
  readonly protocol: Protocol;
  readonly port: number;
  /** Number, or the name of a port on the endpoints. */
  readonly targetPort: number | string;
  /** Node port, when type is NodePort or LoadBalancer. */
  readonly nodePort?: number;
}

/** A Service, as read from the API or a manifest. */
export interface Service {
  readonly namespace: string;
  readonly name: string;
  readonly type: ServiceType;
  /** Virtual IPs, at most one per family. Empty when not yet allocated. */
  readonly clusterIPs: readonly IpText[];
  /** True for `clusterIP: None`. */
  readonly headless: boolean;
  readonly ports: readonly ServicePort[];
  readonly externalIPs: readonly IpText[];
  readonly loadBalancerIPs: readonly IpText[];
  /** CIDRs allowed to reach load-balancer IPs; empty means everyone. */
  readonly loadBalancerSourceRanges: readonly Cidr[];
  readonly sessionAffinity: "None" | "ClientIP";
  /** Seconds; Kubernetes' default is 10800. */
  readonly sessionAffinityTimeoutSeconds: number;
  readonly internalTrafficPolicy: TrafficPolicy;
  readonly externalTrafficPolicy: TrafficPolicy;
  /**
   * Port of this node's health check for external load balancers: only a LoadBalancer service
   * with externalTrafficPolicy Local has one (the API allocates it; manifests set it).
   */
  readonly healthCheckNodePort?: number;
  /** Topology preference; see `src/model/topology.ts`. */
  readonly trafficDistribution?: TrafficDistribution;
  readonly publishNotReadyAddresses: boolean;
  /** Target of an ExternalName service, without trailing dot. */
  readonly externalName?: string;
  /** Families requested when no clusterIP is given (standalone allocation). */
  readonly ipFamilies: readonly IpFamily[];
  /** How strictly ipFamilies apply; PreferDualStack takes what the service CIDRs offer. */
  readonly ipFamilyPolicy?: "SingleStack" | "PreferDualStack" | "RequireDualStack";
  /** The labels svcgate acts on (`service.kubernetes.io/*`); the others are not kept. */
  readonly labels: Readonly<Record<string, string>>;
  /** The annotations svcgate acts on (`svcgate.io/*`); the others are not kept. */
  readonly annotations: Readonly<Record<string, string>>;
}

/** One backend address of a service. */
export interface Endpoint {
  readonly address: IpText;
  readonly ready: boolean;
  readonly serving: boolean;
  readonly terminating: boolean;
  readonly nodeName?: string;
  readonly zone?: string;
  readonly hostname?: string;
  /** EndpointSlice `hints.forZones`: the zones this endpoint should serve (topology). */
  readonly zoneHints?: readonly string[];
  /** EndpointSlice `hints.forNodes`: the nodes this endpoint should serve (topology). */
  readonly nodeHints?: readonly string[];
  /**
   * Name of the Pod behind the endpoint (its targetRef), kept only when DNS names endpoints
   * after their pods (`--endpoint-pod-names`).
   */
  readonly podName?: string;
}

/** A named port on a set of endpoints. */
export interface EndpointPort {
  readonly name: string;
  readonly protocol: Protocol;
  readonly port: number;
}

/**
 * A group of endpoints sharing one port list: one EndpointSlice, or one subset of a v1 Endpoints
 * object. Several sets may belong to one service; they are merged in the snapshot.
 */
export interface EndpointSet {
  readonly namespace: string;
  readonly serviceName: string;
  /** Identity within the service: the slice name, or `endpoints/<name>#<subset>`. */
  readonly id: string;
  readonly ports: readonly EndpointPort[];
  readonly endpoints: readonly Endpoint[];
  /**
   * When the change this version carries was triggered (epoch milliseconds), from the
   * `endpoints.kubernetes.io/last-change-trigger-time` annotation the EndpointSlice controller
   * writes: network programming latency is measured from it, as kube-proxy and the Kubernetes
   * SLO do. Not part of what the set serves.
   */
  readonly triggerTime?: number;
  /** The slice's addressType; absent for v1 Endpoints subsets. */
  readonly addressFamily?: IpFamily;
}

/** The annotation that carries an endpoint change's trigger time. */
export const TRIGGER_TIME_ANNOTATION = "endpoints.kubernetes.io/last-change-trigger-time";

/**
 * What svcgate knows of its own node: in Kubernetes mode, read from this node's Node object.
 * Zone, pod CIDRs and addresses shape the rules; deletion and the autoscaler's taint only /healthz.
 */
export interface NodeFacts {
  readonly name: string;
  /** The `topology.kubernetes.io/zone` label, for topology-aware routing. */
  readonly zone?: string;
  /** `spec.podCIDRs`: the pods of this node (`--detect-local-mode NodeCIDR`). */
  readonly podCidrs: readonly Cidr[];
  /** `status.addresses` of type InternalIP then ExternalIP, in that order. */
  readonly addresses: readonly IpText[];
  /** `metadata.deletionTimestamp` is set. */
  readonly deleting: boolean;
  /** Tainted `ToBeDeletedByClusterAutoscaler`. */
  readonly toBeDeleted: boolean;
}

/** The label that names a node's zone. */
export const ZONE_LABEL = "topology.kubernetes.io/zone";

/**
 * Shared by every model object without such entries (most services have no external IPs, no
 * labels...): at 10,000 services an empty list per field adds up.
 */
export const EMPTY_LIST: readonly never[] = Object.freeze([]);
export const EMPTY_RECORD: Readonly<Record<string, string>> = Object.freeze({});

/** `namespace/name`, the key of a service everywhere in the model. */
export type ServiceKey = string;

/** Builds the key of a service. */
export function serviceKey(namespace: string, name: string): ServiceKey {
  return `${namespace}/${name}`;
}
