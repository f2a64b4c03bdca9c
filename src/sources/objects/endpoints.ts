/**
 * Parses a `v1 Endpoints` into one endpoint set per subset. Pure.
 * @module
 */

import { endpointSet } from "../../model/endpoint_set.ts";
import type { Endpoint, EndpointSet } from "../../model/types.ts";
import {
  checkTargetRef,
  readEndpointPorts,
  readHostname,
  readNodeName,
} from "./endpoint_fields.ts";
import { checkTypeMeta, readMeta, TYPE_META_FIELDS } from "./metadata.ts";
import { withinLimit } from "./limits.ts";
import { triggerTimeOf } from "./endpoint_slice.ts";
import {
  Ctx,
  frozenList,
  isPlainObject,
  type ParseOptions,
  type ParseResult,
  show,
} from "./validate.ts";

const ENDPOINTS_FIELDS = new Set([...TYPE_META_FIELDS, "subsets"]);
const SUBSET_FIELDS = new Set(["addresses", "notReadyAddresses", "ports"]);
const ADDRESS_FIELDS = new Set(["ip", "hostname", "nodeName", "targetRef"]);

/**
 * Parses a `v1 Endpoints` into one endpoint set per subset, with ids `endpoints/<name>#<i>`.
 * `addresses` are ready; `notReadyAddresses` are neither ready nor serving.
 *
 * @example
 * ```ts
 * const { value } = parseEndpoints({
 *   apiVersion: "v1", kind: "Endpoints", metadata: { name: "db" },
 *   subsets: [{ addresses: [{ ip: "198.18.0.20" }], ports: [{ port: 5432 }] }],
 * }, "db.yaml#2");
 * value?.[0].id; // "endpoints/db#0"
 * ```
 */
export function parseEndpoints(
  obj: unknown,
  where: string,
  options: ParseOptions = {},
): ParseResult<EndpointSet[]> {
  const ctx = new Ctx(where, options);
  if (!isPlainObject(obj)) {
    ctx.error("", `expected an Endpoints object, got ${show(obj)}`);
    return { errors: ctx.errors };
  }
  checkTypeMeta(ctx, obj, "v1", "Endpoints");
  ctx.unknownFields(obj, "", ENDPOINTS_FIELDS);
  const meta = readMeta(ctx, obj, "Endpoints", "dns1123subdomain", true);
  const sets: EndpointSet[] = [];
  (ctx.array(obj.subsets, "subsets") ?? []).forEach((item, i) => {
    const path = `subsets[${i}]`;
    const subset = ctx.object(item, path);
    if (!subset) return;
    ctx.unknownFields(subset, path, SUBSET_FIELDS);
    const endpoints: Endpoint[] = [];
    const lists = {
      addresses: ctx.array(subset.addresses, `${path}.addresses`) ?? [],
      notReadyAddresses: ctx.array(subset.notReadyAddresses, `${path}.notReadyAddresses`) ?? [],
    };
    const count = lists.addresses.length + lists.notReadyAddresses.length;
    if (!withinLimit(ctx, path, count, "subsetEndpoints", "addresses and notReadyAddresses")) {
      return;
    }
    for (const [field, ready] of [["addresses", true], ["notReadyAddresses", false]] as const) {
      lists[field].forEach((a, j) => {
        const ap = `${path}.${field}[${j}]`;
        const addr = ctx.object(a, ap);
        if (!addr) return;
        ctx.unknownFields(addr, ap, ADDRESS_FIELDS);
        const before = ctx.errors.length;
        if (addr.ip === undefined || addr.ip === null || addr.ip === "") {
          ctx.error(`${ap}.ip`, "missing; every address needs an ip");
        }
        const ip = ctx.ip(addr.ip === "" ? undefined : addr.ip, `${ap}.ip`);
        const hostname = readHostname(ctx, addr.hostname, `${ap}.hostname`);
        const nodeName = readNodeName(ctx, addr.nodeName, `${ap}.nodeName`);
        const podName = checkTargetRef(ctx, addr.targetRef, `${ap}.targetRef`);
        if (ctx.failedSince(before) || ip === undefined) return;
        endpoints.push({
          address: ip,
          ready,
          serving: ready,
          terminating: false,
          ...(nodeName !== undefined ? { nodeName } : {}),
          ...(hostname !== undefined ? { hostname } : {}),
          ...(podName !== undefined ? { podName } : {}),
        });
      });
    }
    const ports = readEndpointPorts(ctx, subset.ports, `${path}.ports`, "Endpoints");
    if (meta) {
      sets.push(endpointSet({
        namespace: meta.namespace,
        serviceName: meta.name,
        id: `endpoints/${meta.name}#${i}`,
        ...triggerTimeOf(meta.annotations),
        ports: frozenList(ports),
        endpoints,
      }));
    }
  });
  if (ctx.failed || !meta) return { errors: ctx.errors };
  return { value: sets, errors: ctx.errors };
}
