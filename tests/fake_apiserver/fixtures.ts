/**
 * Builders of raw Kubernetes JSON (as the API server stores it) and a kubeconfig writer, for
 * tests that feed the fake API server.
 * @module
 */

import type { KubeObject } from "./fake_apiserver.ts";

/** A port of {@link makeService}. */
export interface PortSpec {
  name?: string;
  port: number;
  targetPort?: number | string;
  protocol?: "TCP" | "UDP" | "SCTP";
}

/**
 * A v1 Service.
 *
 * @example
 * ```ts
 * makeService("default", "web", "198.19.0.10", [{ name: "http", port: 80, targetPort: 8080 }]);
 * ```
 */
export function makeService(
  namespace: string,
  name: string,
  clusterIP: string,
  ports: PortSpec[] = [{ name: "http", port: 80, targetPort: 8080 }],
  extra: { labels?: Record<string, string>; spec?: KubeObject } = {},
): KubeObject {
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: { namespace, name, labels: extra.labels ?? { app: name } },
    spec: {
      type: "ClusterIP",
      clusterIP,
      clusterIPs: clusterIP === "None" ? ["None"] : [clusterIP],
      ipFamilies: clusterIP.includes(":") ? ["IPv6"] : ["IPv4"],
      ipFamilyPolicy: "SingleStack",
      selector: { app: name },
      sessionAffinity: "None",
      internalTrafficPolicy: "Cluster",
      ports: ports.map((p) => ({
        name: p.name,
        protocol: p.protocol ?? "TCP",
        port: p.port,
        targetPort: p.targetPort ?? p.port,
      })),
      ...extra.spec,
    },
  };
}

/** An endpoint of {@link makeEndpointSlice}. */
export interface EndpointSpec {
  ip: string;
  ready?: boolean;
  serving?: boolean;
  terminating?: boolean;
  nodeName?: string;
  podName?: string;
  zone?: string;
  /** EndpointSlice hints, as the controller writes them for trafficDistribution. */
  hints?: { forZones?: string[]; forNodes?: string[] };
}

/**
 * A discovery.k8s.io/v1 EndpointSlice of a service.
 *
 * @example
 * ```ts
 * makeEndpointSlice("default", "web", "web-abc", [{ ip: "198.18.0.10" }], [{ name: "http", port: 8080 }]);
 * ```
 */
export function makeEndpointSlice(
  namespace: string,
  serviceName: string,
  sliceName: string,
  endpoints: EndpointSpec[],
  ports: PortSpec[] = [{ name: "http", port: 8080 }],
): KubeObject {
  const v6 = endpoints.length > 0 && endpoints[0].ip.includes(":");
  return {
    apiVersion: "discovery.k8s.io/v1",
    kind: "EndpointSlice",
    metadata: {
      namespace,
      name: sliceName,
      labels: {
        "kubernetes.io/service-name": serviceName,
        "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
      },
      ownerReferences: [{ apiVersion: "v1", kind: "Service", name: serviceName, uid: "x" }],
    },
    addressType: v6 ? "IPv6" : "IPv4",
    endpoints: endpoints.map((e, i) => ({
      addresses: [e.ip],
      conditions: {
        ready: e.ready ?? true,
        serving: e.serving ?? e.ready ?? true,
        terminating: e.terminating ?? false,
      },
      nodeName: e.nodeName,
      ...(e.zone ? { zone: e.zone } : {}),
      ...(e.hints
        ? {
          hints: {
            ...(e.hints.forZones ? { forZones: e.hints.forZones.map((name) => ({ name })) } : {}),
            ...(e.hints.forNodes ? { forNodes: e.hints.forNodes.map((name) => ({ name })) } : {}),
          },
        }
        : {}),
      targetRef: {
        kind: "Pod",
        namespace,
        name: e.podName ?? `${serviceName}-pod-${i}`,
        uid: `uid-${serviceName}-${i}`,
      },
    })),
    ports: ports.map((p) => ({ name: p.name, protocol: p.protocol ?? "TCP", port: p.port })),
  };
}

/**
 * A v1 Endpoints object with one subset.
 *
 * @example
 * ```ts
 * makeEndpoints("default", "web", [{ ip: "198.18.0.10" }], [{ name: "http", port: 8080 }]);
 * ```
 */
export function makeEndpoints(
  namespace: string,
  name: string,
  endpoints: EndpointSpec[],
  ports: PortSpec[] = [{ name: "http", port: 8080 }],
): KubeObject {
  const addr = (e: EndpointSpec, i: number) => ({
    ip: e.ip,
    nodeName: e.nodeName,
    targetRef: { kind: "Pod", namespace, name: e.podName ?? `${name}-pod-${i}` },
  });
  const ready = endpoints.filter((e) => e.ready ?? true);
  const notReady = endpoints.filter((e) => !(e.ready ?? true));
  return {
    apiVersion: "v1",
    kind: "Endpoints",
    metadata: { namespace, name },
    subsets: endpoints.length === 0 ? [] : [{
      addresses: ready.length ? ready.map(addr) : undefined,
      notReadyAddresses: notReady.length ? notReady.map(addr) : undefined,
      ports: ports.map((p) => ({ name: p.name, protocol: p.protocol ?? "TCP", port: p.port })),
    }],
  };
}

/** A v1 Namespace. */
/** What {@link makeNode} sets on a v1 Node. */
export interface NodeSpec {
  zone?: string;
  podCIDRs?: string[];
  /** InternalIP addresses. */
  addresses?: string[];
  taints?: { key: string; value?: string; effect: string }[];
  deletionTimestamp?: string;
}

/**
 * A v1 Node.
 *
 * @example
 * ```ts
 * makeNode("node-a", { zone: "zone-a", podCIDRs: ["198.18.0.0/24"] });
 * ```
 */
export function makeNode(name: string, spec: NodeSpec = {}): KubeObject {
  return {
    apiVersion: "v1",
    kind: "Node",
    metadata: {
      name,
      labels: {
        "kubernetes.io/hostname": name,
        ...(spec.zone ? { "topology.kubernetes.io/zone": spec.zone } : {}),
      },
      ...(spec.deletionTimestamp ? { deletionTimestamp: spec.deletionTimestamp } : {}),
    },
    spec: {
      ...(spec.podCIDRs ? { podCIDR: spec.podCIDRs[0], podCIDRs: spec.podCIDRs } : {}),
      ...(spec.taints ? { taints: spec.taints } : {}),
    },
    status: {
      addresses: [
        ...(spec.addresses ?? []).map((address) => ({ type: "InternalIP", address })),
        { type: "Hostname", address: name },
      ],
      conditions: [{ type: "Ready", status: "True" }],
    },
  };
}

export function makeNamespace(name: string): KubeObject {
  return { apiVersion: "v1", kind: "Namespace", metadata: { name }, status: { phase: "Active" } };
}

/** What {@link makePod} varies. */
export interface PodSpec {
  nodeName?: string;
  /** Pod IPs; none for a pod not started yet. */
  ips?: string[];
  phase?: "Pending" | "Running" | "Succeeded" | "Failed";
  hostNetwork?: boolean;
}

/**
 * A v1 Pod, with the fields svcgate reads (node, phase, IPs) and a few it does not.
 *
 * @example
 * ```ts
 * makePod("default", "web-1", { nodeName: "node-a", ips: ["198.18.0.11"] });
 * ```
 */
export function makePod(namespace: string, name: string, spec: PodSpec = {}): KubeObject {
  const ips = spec.ips ?? [];
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { namespace, name, labels: { app: name.replace(/-[^-]+$/, "") } },
    spec: {
      nodeName: spec.nodeName,
      ...(spec.hostNetwork ? { hostNetwork: true } : {}),
      containers: [{ name: "main", image: "registry.example/app:1" }],
      dnsPolicy: "ClusterFirst",
    },
    status: {
      phase: spec.phase ?? (ips.length > 0 ? "Running" : "Pending"),
      ...(ips.length > 0 ? { podIP: ips[0], podIPs: ips.map((ip) => ({ ip })) } : {}),
      hostIP: "198.18.0.1",
    },
  };
}

/** How {@link writeKubeconfig} authenticates and verifies. */
export interface KubeconfigSpec {
  server: string;
  /** PEM file of the CA; omitted with insecureSkipTlsVerify. */
  caFile?: string;
  token?: string;
  clientCertFile?: string;
  clientKeyFile?: string;
  insecureSkipTlsVerify?: boolean;
}

/**
 * Writes a kubeconfig YAML (JSON is valid YAML) and returns its path.
 *
 * @example
 * ```ts
 * const path = await writeKubeconfig(dir, { server: api.url, caFile: tls.caCertFile, token: "t" });
 * ```
 */
export async function writeKubeconfig(dir: string, spec: KubeconfigSpec): Promise<string> {
  const cluster: Record<string, unknown> = { server: spec.server };
  if (spec.caFile) cluster["certificate-authority"] = spec.caFile;
  if (spec.insecureSkipTlsVerify) cluster["insecure-skip-tls-verify"] = true;
  const user: Record<string, unknown> = {};
  if (spec.token) user.token = spec.token;
  if (spec.clientCertFile) user["client-certificate"] = spec.clientCertFile;
  if (spec.clientKeyFile) user["client-key"] = spec.clientKeyFile;
  const config = {
    apiVersion: "v1",
    kind: "Config",
    clusters: [{ name: "fake", cluster }],
    users: [{ name: "svcgate", user }],
    contexts: [{ name: "fake", context: { cluster: "fake", user: "svcgate" } }],
    "current-context": "fake",
  };
  const path = `${dir}/kubeconfig-${crypto.randomUUID().slice(0, 8)}.yaml`;
  await Deno.writeTextFile(path, JSON.stringify(config, null, 2));
  return path;
}
