/**
 * Parses a `networking.k8s.io/v1 ServiceCIDR` into its ranges: the ClusterIP ranges the cluster
 * allocates from, which kube-proxy watches to drop traffic to addresses no Service holds. Pure.
 * @module
 */

import { type Cidr, parseCidr } from "../../model/ip.ts";
import { checkTypeMeta, readMeta } from "./metadata.ts";
import {
  child,
  Ctx,
  isPlainObject,
  type ParseOptions,
  type ParseResult,
  show,
} from "./validate.ts";

/**
 * Parses a `networking.k8s.io/v1 ServiceCIDR` (`spec.cidrs`: one or two CIDRs, one per family).
 *
 * @example
 * ```ts
 * const { value } = parseServiceCidr({
 *   apiVersion: "networking.k8s.io/v1", kind: "ServiceCIDR",
 *   metadata: { name: "kubernetes" }, spec: { cidrs: ["198.19.0.0/16"] },
 * }, "API ServiceCIDR kubernetes");
 * value?.map((c) => c.text); // ["198.19.0.0/16"]
 * ```
 */
export function parseServiceCidr(
  obj: unknown,
  where: string,
  options: ParseOptions = {},
): ParseResult<readonly Cidr[]> {
  const ctx = new Ctx(where, options);
  if (!isPlainObject(obj)) {
    ctx.error("", `expected a ServiceCIDR object, got ${show(obj)}`);
    return { errors: ctx.errors };
  }
  checkTypeMeta(ctx, obj, "networking.k8s.io/v1", "ServiceCIDR");
  const meta = readMeta(ctx, obj, "ServiceCIDR", "dns1123subdomain", false);
  const spec = ctx.object(obj.spec, "spec");
  const cidrs: Cidr[] = [];
  const items = ctx.array(spec?.cidrs, "spec.cidrs") ?? [];
  if (items.length === 0) {
    ctx.error("spec.cidrs", "missing; a ServiceCIDR holds one CIDR per family");
  }
  items.forEach((item, i) => {
    const path = child("spec.cidrs", i);
    const text = ctx.string(item, path);
    if (text === undefined) return;
    const cidr = parseCidr(text);
    if (typeof cidr === "string") ctx.error(path, cidr);
    else cidrs.push(cidr);
  });
  if (ctx.failed || !meta) return { errors: ctx.errors };
  return { value: Object.freeze(cidrs), errors: ctx.errors };
}
