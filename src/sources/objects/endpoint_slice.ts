/**
 * Parses a `discovery.k8s.io/v1 EndpointSlice` into one endpoint set. Pure.
 * @module
 */

import { endpointSet } from "../../model/endpoint_set.ts";
import type { Endpoint, EndpointSet, IpFamily } from "../../model/types.ts";
import type { IpText } from "../../model/ip.ts";
import { SERVICE_NAME_LABEL, TRIGGER_TIME_ANNOTATION } from "../../model/types.ts";
import {
  checkTargetRef,
  readEndpointPorts,
  readHostname,
  readNodeName,
} from "./endpoint_fields.ts";
import { checkTypeMeta, readMeta, TYPE_META_FIELDS } from "./metadata.ts";
import { DNS1035_LABEL_RULE, isDns1035Label } from "./names.ts";
import { withinLimit } from "./limits.ts";
import {
  child,
  Ctx,
  frozenList,
  isPlainObject,
  type ParseOptions,
  type ParseResult,
  show,
} from "./validate.ts";

const SLICE_FIELDS = new Set([...TYPE_META_FIELDS, "addressType", "endpoints", "ports"]);
const SLICE_ENDPOINT_FIELDS = new Set([
  "addresses",
  "conditions",
  "hostname",
  "targetRef",
  "nodeName",
  "zone",
  "hints",
  "deprecatedTopology",
]);

const CONDITION_FIELDS = new Set(["ready", "serving", "terminating"]);
const HINT_FIELDS = new Set(["forZones", "forNodes"]);

/** `hints.forZones` or `hints.forNodes`: a list of `{name}`; absent when the list is absent. */
function readHintNames(ctx: Ctx, v: unknown, path: string): string[] | undefined {
  const items = ctx.array(v, path);
  if (!items) return undefined;
  const names: string[] = [];
  items.forEach((item, i) => {
    const p = `${path}[${i}]`;
    const obj = ctx.object(item, p);
    if (!obj) return;
    const name = ctx.string(obj.name, `${p}.name`);
    if (name === undefined || name === "") {
      ctx.error(`${p}.name`, "missing; a hint names a zone or node");
    } else if (!names.includes(name)) names.push(name);
  });
  return names;
}

/**
 * Parses a `discovery.k8s.io/v1 EndpointSlice` into one endpoint set (id = the slice name). Only
 * the first address of each endpoint is used, as kube-proxy does (the others are equivalent by
 * definition). FQDN slices are ignored with a warning.
 *
 * @example
 * ```ts
 * const { value } = parseEndpointSlice({
 *   apiVersion: "discovery.k8s.io/v1", kind: "EndpointSlice", addressType: "IPv4",
 *   metadata: { name: "web-1", labels: { "kubernetes.io/service-name": "web" } },
 *   endpoints: [{ addresses: ["198.18.0.10"] }], ports: [{ port: 8080 }],
 * }, "slices.yaml#1");
 * value?.endpoints[0].ready; // true
 * ```
 */
export function parseEndpointSlice(
  obj: unknown,
  where: string,
  options: ParseOptions = {},
): ParseResult<EndpointSet> {
  const ctx = new Ctx(where, options);
  if (!isPlainObject(obj)) {
    ctx.error("", `expected an EndpointSlice object, got ${show(obj)}`);
    return { errors: ctx.errors };
  }
  checkTypeMeta(ctx, obj, "discovery.k8s.io/v1", "EndpointSlice");
  ctx.unknownFields(obj, "", SLICE_FIELDS);
  const meta = readMeta(ctx, obj, "EndpointSlice", "dns1123subdomain", true);
  const labelPath = child("metadata.labels", SERVICE_NAME_LABEL);
  const serviceName = meta?.labels[SERVICE_NAME_LABEL];
  if (meta && serviceName === undefined) {
    const raw = isPlainObject(obj.metadata) && isPlainObject(obj.metadata.labels)
      ? obj.metadata.labels[SERVICE_NAME_LABEL]
      : undefined;
    // A present but invalid value has been reported by the label check already.
    if (raw === undefined || raw === null) {
      ctx.error(labelPath, "missing; an EndpointSlice names its Service in this label");
    }
  } else if (serviceName !== undefined && !isDns1035Label(serviceName)) {
    ctx.error(
      labelPath,
      `${show(serviceName)} is not a valid Service name (${DNS1035_LABEL_RULE})`,
    );
  }
  const addressType = obj.addressType;
  if (addressType === "FQDN") {
    // Kubernetes itself ignores FQDN slices for proxying; so do we, visibly.
    return {
      errors: [...ctx.errors, {
        where,
        path: "addressType",
        message: '"FQDN" slices are not used by svcgate; slice ignored',
        severity: "warning",
      }],
    };
  }
  let family: IpFamily | undefined;
  if (addressType === undefined || addressType === null) {
    ctx.error("addressType", "missing; expected IPv4 or IPv6");
  } else if (addressType === "IPv4") family = 4;
  else if (addressType === "IPv6") family = 6;
  else ctx.error("addressType", `${show(addressType)} is not an address type (IPv4, IPv6, FQDN)`);

  const endpoints: Endpoint[] = [];
  const items = ctx.array(obj.endpoints, "endpoints") ?? [];
  if (!withinLimit(ctx, "endpoints", items.length, "sliceEndpoints", "endpoints")) {
    return { errors: ctx.errors };
  }
  items.forEach((item, i) => {
    const path = `endpoints[${i}]`;
    const ep = ctx.object(item, path);
    if (!ep) return;
    ctx.unknownFields(ep, path, SLICE_ENDPOINT_FIELDS);
    const before = ctx.errors.length;
    const addresses = ctx.array(ep.addresses, `${path}.addresses`);
    let address: IpText | undefined;
    if (!addresses || addresses.length === 0) {
      if (addresses || ep.addresses === undefined || ep.addresses === null) {
        ctx.error(`${path}.addresses`, "missing; every endpoint needs an address");
      }
    } else {
      addresses.forEach((a, j) => {
        const ip = ctx.ip(a, `${path}.addresses[${j}]`, family);
        if (j === 0) address = ip;
      });
    }
    const conditions = ctx.object(ep.conditions, `${path}.conditions`);
    if (conditions) ctx.unknownFields(conditions, `${path}.conditions`, CONDITION_FIELDS);
    const ready = ctx.boolean(conditions?.ready, `${path}.conditions.ready`) ?? true;
    const serving = ctx.boolean(conditions?.serving, `${path}.conditions.serving`) ?? ready;
    const terminating = ctx.boolean(conditions?.terminating, `${path}.conditions.terminating`) ??
      false;
    const hostname = readHostname(ctx, ep.hostname, `${path}.hostname`);
    const nodeName = readNodeName(ctx, ep.nodeName, `${path}.nodeName`);
    const zone = ctx.string(ep.zone, `${path}.zone`);
    const hints = ctx.object(ep.hints, `${path}.hints`);
    if (hints) ctx.unknownFields(hints, `${path}.hints`, HINT_FIELDS);
    const zoneHints = readHintNames(ctx, hints?.forZones, `${path}.hints.forZones`);
    const nodeHints = readHintNames(ctx, hints?.forNodes, `${path}.hints.forNodes`);
    const podName = checkTargetRef(ctx, ep.targetRef, `${path}.targetRef`);
    if (ctx.failedSince(before) || address === undefined) return;
    endpoints.push({
      address,
      ready,
      serving,
      terminating,
      ...(nodeName !== undefined ? { nodeName } : {}),
      ...(zone !== undefined && zone !== "" ? { zone } : {}),
      ...(hostname !== undefined ? { hostname } : {}),
      ...(zoneHints !== undefined ? { zoneHints } : {}),
      ...(nodeHints !== undefined ? { nodeHints } : {}),
      ...(podName !== undefined ? { podName } : {}),
    });
  });
  const ports = readEndpointPorts(ctx, obj.ports, "ports", "EndpointSlice");
  if (ctx.failed || !meta || serviceName === undefined) return { errors: ctx.errors };
  return {
    value: endpointSet({
      namespace: meta.namespace,
      serviceName,
      id: meta.name,
      ports: frozenList(ports),
      endpoints,
      ...triggerTimeOf(meta.annotations),
      ...(family !== undefined ? { addressFamily: family } : {}),
    }),
    errors: ctx.errors,
  };
}

/**
 * The `endpoints.kubernetes.io/last-change-trigger-time` annotation (RFC 3339) as epoch
 * milliseconds; nothing when absent or unreadable (it only feeds a latency metric).
 */
export function triggerTimeOf(annotations: Readonly<Record<string, string>>): {
  triggerTime?: number;
} {
  const text = annotations[TRIGGER_TIME_ANNOTATION];
  if (text === undefined) return {};
  const ms = Date.parse(text);
  return Number.isFinite(ms) ? { triggerTime: ms } : {};
}
