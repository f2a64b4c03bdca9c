/**
 * Parses a `v1 Service` into the model: metadata, type, addresses (service_addresses.ts), ports
 * (service_ports.ts), session affinity, traffic policies and the labels and annotations svcgate
 * acts on. Pure.
 * @module
 */

import { type Cidr, type IpText, parseCidr } from "../../model/ip.ts";
import type {
  Service,
  ServiceType,
  TrafficDistribution,
  TrafficPolicy,
} from "../../model/types.ts";
import { EMPTY_RECORD } from "../../model/types.ts";
import { checkTypeMeta, readMeta, TYPE_META_FIELDS } from "./metadata.ts";
import { DNS1123_SUBDOMAIN_RULE, isDns1123Subdomain } from "./names.ts";
import { isIpFamilyPolicy, readClusterIps, readIpFamilies } from "./service_addresses.ts";
import { readServicePorts } from "./service_ports.ts";
import {
  Ctx,
  frozenList,
  isPlainObject,
  type ParseOptions,
  type ParseResult,
  show,
} from "./validate.ts";

const SERVICE_TYPES: readonly ServiceType[] = [
  "ClusterIP",
  "NodePort",
  "LoadBalancer",
  "ExternalName",
];

const TRAFFIC_POLICIES: readonly TrafficPolicy[] = ["Cluster", "Local"];
const TRAFFIC_DISTRIBUTIONS: readonly TrafficDistribution[] = [
  "PreferClose",
  "PreferSameZone",
  "PreferSameNode",
];
const DEFAULT_AFFINITY_TIMEOUT = 10800;
const MAX_AFFINITY_TIMEOUT = 86400;

/** Labels a Service keeps: kube-proxy's own (`service.kubernetes.io/service-proxy-name`...). */
const KEPT_LABEL_PREFIX = "service.kubernetes.io/";
/** Annotations a Service keeps: svcgate's own (health checks). */
const KEPT_ANNOTATION_PREFIX = "svcgate.io/";

/**
 * The entries whose key starts with `prefix`. All are validated, but only those svcgate acts on
 * are kept: at 10,000 services the rest (app labels, kubectl's last-applied-configuration, which
 * is the whole object again) would be most of the model's memory, and their changes would
 * rebuild services for nothing.
 */
function withPrefix(
  map: Record<string, string>,
  prefix: string,
): Readonly<Record<string, string>> {
  let out: Record<string, string> | undefined;
  for (const key in map) if (key.startsWith(prefix)) (out ??= {})[key] = map[key];
  return out ? Object.freeze(out) : EMPTY_RECORD;
}

const SERVICE_FIELDS = new Set([...TYPE_META_FIELDS, "spec", "status"]);
const SERVICE_SPEC_FIELDS = new Set([
  "type",
  "selector",
  "ports",
  "clusterIP",
  "clusterIPs",
  "ipFamilies",
  "ipFamilyPolicy",
  "externalIPs",
  "externalName",
  "sessionAffinity",
  "sessionAffinityConfig",
  "loadBalancerIP",
  "loadBalancerSourceRanges",
  "loadBalancerClass",
  "allocateLoadBalancerNodePorts",
  "externalTrafficPolicy",
  "internalTrafficPolicy",
  "healthCheckNodePort",
  "publishNotReadyAddresses",
  "trafficDistribution",
]);

/**
 * Parses a `v1 Service` into the model.
 *
 * @example
 * ```ts
 * const { value, errors } = parseService(
 *   { apiVersion: "v1", kind: "Service", metadata: { name: "web" }, spec: { ports: [{ port: 80 }] } },
 *   "services.yaml#1",
 * );
 * value?.ports[0].targetPort; // 80
 * errors.map(formatError);    // []
 * ```
 */
export function parseService(
  obj: unknown,
  where: string,
  options: ParseOptions = {},
): ParseResult<Service> {
  const ctx = new Ctx(where, options);
  if (!isPlainObject(obj)) {
    ctx.error("", `expected a Service object, got ${show(obj)}`);
    return { errors: ctx.errors };
  }
  checkTypeMeta(ctx, obj, "v1", "Service");
  ctx.unknownFields(obj, "", SERVICE_FIELDS);
  const meta = readMeta(ctx, obj, "Service", "dns1035", true);
  const spec = ctx.object(obj.spec, "spec");
  if (!spec) {
    if (obj.spec === undefined || obj.spec === null) {
      ctx.error("spec", "missing; a Service needs a spec with its ports");
    }
    return { errors: ctx.errors };
  }
  ctx.unknownFields(spec, "spec", SERVICE_SPEC_FIELDS);
  const type = ctx.oneOf(spec.type, "spec.type", SERVICE_TYPES, "a service type") ?? "ClusterIP";
  const ips = readClusterIps(ctx, spec, type);
  const ipFamilies = readIpFamilies(ctx, spec, type, ips);
  const ports = readServicePorts(ctx, spec, type, ips.headless);
  const externalIPs = ctx.ipList(spec.externalIPs, "spec.externalIPs");

  const loadBalancerIPs: IpText[] = [];
  const status = ctx.object(obj.status, "status");
  const lb = status ? ctx.object(status.loadBalancer, "status.loadBalancer") : undefined;
  const ingress = lb ? ctx.array(lb.ingress, "status.loadBalancer.ingress") ?? [] : [];
  ingress.forEach((item, i) => {
    const path = `status.loadBalancer.ingress[${i}]`;
    const ing = ctx.object(item, path);
    if (!ing) return;
    const ip = ctx.ip(ing.ip, `${path}.ip`);
    const ipMode = ctx.string(ing.ipMode, `${path}.ipMode`);
    // Only a VIP (the default) is delivered to the node and DNATed here. With ipMode Proxy the
    // load balancer proxies, so the node's own traffic must go out to it (as kube-proxy, which
    // programs only ingress IPs of mode VIP; a mode it does not know is skipped, and said so).
    if (ipMode !== undefined && ipMode !== "VIP") {
      if (ipMode !== "Proxy") {
        ctx.warn(
          `${path}.ipMode`,
          `${show(ipMode)} is not known (VIP, Proxy); this IP is not programmed`,
        );
      }
      return;
    }
    if (ip !== undefined && !loadBalancerIPs.includes(ip)) loadBalancerIPs.push(ip);
  });

  const ranges: Cidr[] = [];
  (ctx.array(spec.loadBalancerSourceRanges, "spec.loadBalancerSourceRanges") ?? []).forEach(
    (item, i) => {
      const path = `spec.loadBalancerSourceRanges[${i}]`;
      const text = ctx.string(item, path);
      if (text === undefined) return;
      const cidr = parseCidr(text.trim());
      if (typeof cidr === "string") ctx.error(path, cidr);
      else if (!ranges.some((r) => r.text === cidr.text)) ranges.push(cidr);
    },
  );

  const sessionAffinity = ctx.oneOf(
    spec.sessionAffinity,
    "spec.sessionAffinity",
    ["None", "ClientIP"] as const,
    "a session affinity",
  ) ??
    "None";
  let sessionAffinityTimeoutSeconds = DEFAULT_AFFINITY_TIMEOUT;
  const affinityConfig = ctx.object(spec.sessionAffinityConfig, "spec.sessionAffinityConfig");
  if (affinityConfig) {
    if (sessionAffinity !== "ClientIP") {
      ctx.error(
        "spec.sessionAffinityConfig",
        `only allowed when sessionAffinity is "ClientIP", got ${show(sessionAffinity)}`,
      );
    }
    const clientIP = ctx.object(affinityConfig.clientIP, "spec.sessionAffinityConfig.clientIP");
    const t = clientIP?.timeoutSeconds;
    if (t !== undefined && t !== null) {
      if (typeof t === "number" && Number.isInteger(t) && t >= 1 && t <= MAX_AFFINITY_TIMEOUT) {
        sessionAffinityTimeoutSeconds = t;
      } else {
        ctx.error(
          "spec.sessionAffinityConfig.clientIP.timeoutSeconds",
          `${show(t)} is not a timeout (1-${MAX_AFFINITY_TIMEOUT} seconds)`,
        );
      }
    }
  }

  const internalTrafficPolicy = ctx.oneOf(
    spec.internalTrafficPolicy,
    "spec.internalTrafficPolicy",
    TRAFFIC_POLICIES,
    "a traffic policy",
  ) ??
    "Cluster";
  const etp = ctx.oneOf(
    spec.externalTrafficPolicy,
    "spec.externalTrafficPolicy",
    TRAFFIC_POLICIES,
    "a traffic policy",
  );
  // As in Kubernetes, only externally reachable services have external traffic. A warning, not a
  // rejection: clusters before 1.24 could leave the field behind when a type changed.
  const external = type === "NodePort" || type === "LoadBalancer" ||
    (type === "ClusterIP" && externalIPs.length > 0);
  if (etp !== undefined && !external) {
    ctx.warn(
      "spec.externalTrafficPolicy",
      `${show(etp)} is ignored: only externally reachable services ` +
        "(type NodePort or LoadBalancer, or with externalIPs) have external traffic",
    );
  }
  const externalTrafficPolicy = external ? etp ?? "Cluster" : "Cluster";
  // As the API: only a LoadBalancer with externalTrafficPolicy Local has a health check port.
  // Elsewhere it is ignored with a warning, like a stale externalTrafficPolicy.
  let healthCheckNodePort = ctx.port(spec.healthCheckNodePort, "spec.healthCheckNodePort");
  if (
    healthCheckNodePort !== undefined &&
    !(type === "LoadBalancer" && externalTrafficPolicy === "Local")
  ) {
    ctx.warn(
      "spec.healthCheckNodePort",
      `${healthCheckNodePort} is ignored: only a LoadBalancer service with ` +
        'externalTrafficPolicy "Local" has a health check node port',
    );
    healthCheckNodePort = undefined;
  }
  // A value a newer API server may know is ignored with a warning: the service still routes,
  // to every ready endpoint, as kube-proxy does with a distribution it does not know.
  const distribution = ctx.string(spec.trafficDistribution, "spec.trafficDistribution");
  let trafficDistribution: TrafficDistribution | undefined;
  if (distribution !== undefined && distribution !== "") {
    if ((TRAFFIC_DISTRIBUTIONS as readonly string[]).includes(distribution)) {
      trafficDistribution = distribution as TrafficDistribution;
    } else {
      ctx.warn(
        "spec.trafficDistribution",
        `${show(distribution)} is not known (${TRAFFIC_DISTRIBUTIONS.join(", ")}); ignored`,
      );
    }
  }
  const publishNotReadyAddresses =
    ctx.boolean(spec.publishNotReadyAddresses, "spec.publishNotReadyAddresses") ??
      false;

  let externalName: string | undefined;
  if (type === "ExternalName") {
    const raw = ctx.string(spec.externalName, "spec.externalName");
    if (raw === undefined || raw === "") {
      if (raw === "" || spec.externalName === undefined || spec.externalName === null) {
        ctx.error("spec.externalName", "missing; type ExternalName needs a DNS name to point at");
      }
    } else {
      const name = raw.endsWith(".") ? raw.slice(0, -1) : raw;
      if (isDns1123Subdomain(name)) {
        externalName = name;
      } else {
        const message = `${show(raw)} is not a DNS name (${DNS1123_SUBDOMAIN_RULE})`;
        ctx.error("spec.externalName", message);
      }
    }
  }

  if (ctx.failed || !meta) return { errors: ctx.errors };
  const service: Service = {
    namespace: meta.namespace,
    name: meta.name,
    type,
    clusterIPs: frozenList(ips.clusterIPs),
    headless: ips.headless,
    ports: frozenList(ports),
    externalIPs: frozenList(externalIPs),
    loadBalancerIPs: frozenList(type === "LoadBalancer" ? loadBalancerIPs : []),
    loadBalancerSourceRanges: frozenList(ranges),
    sessionAffinity,
    sessionAffinityTimeoutSeconds,
    internalTrafficPolicy,
    externalTrafficPolicy,
    ...(healthCheckNodePort !== undefined ? { healthCheckNodePort } : {}),
    ...(trafficDistribution !== undefined ? { trafficDistribution } : {}),
    publishNotReadyAddresses,
    ...(externalName !== undefined ? { externalName } : {}),
    ipFamilies: frozenList(ipFamilies),
    ...(isIpFamilyPolicy(spec.ipFamilyPolicy) ? { ipFamilyPolicy: spec.ipFamilyPolicy } : {}),
    labels: withPrefix(meta.labels, KEPT_LABEL_PREFIX),
    annotations: withPrefix(meta.annotations, KEPT_ANNOTATION_PREFIX),
  };
  return { value: Object.freeze(service), errors: ctx.errors };
}
