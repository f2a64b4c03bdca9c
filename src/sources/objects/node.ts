/**
 * Parses a `v1 Node` into the facts svcgate reads of its own node: zone label, pod CIDRs,
 * addresses, and whether it is going away (deletion, the cluster autoscaler's taint). Pure.
 * @module
 */

import { type Cidr, type IpText, parseCidr } from "../../model/ip.ts";
import { type NodeFacts, ZONE_LABEL } from "../../model/types.ts";
import { checkTypeMeta, readMeta } from "./metadata.ts";
import {
  child,
  Ctx,
  isPlainObject,
  type ParseOptions,
  type ParseResult,
  show,
} from "./validate.ts";

/** The taint the cluster autoscaler puts on a node before deleting it (as kube-proxy reads it). */
export const TO_BE_DELETED_TAINT = "ToBeDeletedByClusterAutoscaler";

/**
 * Parses a `v1 Node`. Only what svcgate acts on is read; the rest of a Node (conditions, images,
 * capacity...) is not looked at, so a field svcgate does not know never rejects the object.
 *
 * @example
 * ```ts
 * const { value } = parseNode({
 *   apiVersion: "v1", kind: "Node",
 *   metadata: { name: "node-a", labels: { "topology.kubernetes.io/zone": "zone-a" } },
 * }, "API Node node-a");
 * value?.zone; // "zone-a"
 * ```
 */
export function parseNode(
  obj: unknown,
  where: string,
  options: ParseOptions = {},
): ParseResult<NodeFacts> {
  const ctx = new Ctx(where, options);
  if (!isPlainObject(obj)) {
    ctx.error("", `expected a Node object, got ${show(obj)}`);
    return { errors: ctx.errors };
  }
  checkTypeMeta(ctx, obj, "v1", "Node");
  const meta = readMeta(ctx, obj, "Node", "dns1123subdomain", false);
  const metadata = isPlainObject(obj.metadata) ? obj.metadata : {};
  const deletion = metadata.deletionTimestamp;
  const deleting = typeof deletion === "string" && deletion !== "";
  const spec = ctx.object(obj.spec, "spec");
  const podCidrs: Cidr[] = [];
  const rawCidrs = ctx.array(spec?.podCIDRs, "spec.podCIDRs") ??
    (typeof spec?.podCIDR === "string" && spec.podCIDR !== "" ? [spec.podCIDR] : []);
  rawCidrs.forEach((item, i) => {
    const path = spec?.podCIDRs !== undefined ? child("spec.podCIDRs", i) : "spec.podCIDR";
    const text = ctx.string(item, path);
    if (text === undefined) return;
    const cidr = parseCidr(text);
    if (typeof cidr === "string") ctx.error(path, cidr);
    else podCidrs.push(cidr);
  });
  let toBeDeleted = false;
  (ctx.array(spec?.taints, "spec.taints") ?? []).forEach((item, i) => {
    const taint = ctx.object(item, child("spec.taints", i));
    if (taint?.key === TO_BE_DELETED_TAINT) toBeDeleted = true;
  });
  const status = ctx.object(obj.status, "status");
  const byType: Record<string, IpText[]> = { InternalIP: [], ExternalIP: [] };
  (ctx.array(status?.addresses, "status.addresses") ?? []).forEach((item, i) => {
    const path = child("status.addresses", i);
    const address = ctx.object(item, path);
    if (!address || typeof address.type !== "string" || !(address.type in byType)) return;
    const ip = ctx.ip(address.address, `${path}.address`);
    if (ip !== undefined && !byType[address.type].includes(ip)) byType[address.type].push(ip);
  });
  if (ctx.failed || !meta) return { errors: ctx.errors };
  const zone = meta.labels[ZONE_LABEL];
  return {
    value: Object.freeze({
      name: meta.name,
      ...(zone ? { zone } : {}),
      podCidrs: Object.freeze(podCidrs),
      addresses: Object.freeze([...byType.InternalIP, ...byType.ExternalIP]),
      deleting,
      toBeDeleted,
    }),
    errors: ctx.errors,
  };
}
