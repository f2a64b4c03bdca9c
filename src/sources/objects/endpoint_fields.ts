/**
 * Fields shared by the two endpoint kinds (EndpointSlice and v1 Endpoints): ports, hostnames,
 * node names and targetRefs. Pure.
 * @module
 */

import type { EndpointPort } from "../../model/types.ts";
import {
  DNS1123_LABEL_RULE,
  DNS1123_SUBDOMAIN_RULE,
  isDns1123Label,
  isDns1123Subdomain,
} from "./names.ts";
import { child, type Ctx, show } from "./validate.ts";

/**
 * Checks an endpoint's targetRef (a malformed one rejects the endpoint, as the API would). It is
 * not kept (one object per endpoint), except the name of a Pod when the options ask for it
 * (`keepPodNames`: DNS names endpoints after their pods, CoreDNS's endpoint_pod_names): that
 * name, when it is a DNS-1123 label, is returned.
 */
export function checkTargetRef(ctx: Ctx, v: unknown, path: string): string | undefined {
  const obj = ctx.object(v, path);
  if (!obj) return undefined;
  const kind = ctx.string(obj.kind, child(path, "kind"));
  const name = ctx.string(obj.name, child(path, "name"));
  ctx.string(obj.namespace, child(path, "namespace"));
  if (obj.name === undefined || obj.name === null || name === "") {
    ctx.error(child(path, "name"), "missing; a targetRef names the object behind the endpoint");
    return undefined;
  }
  if (!ctx.options.keepPodNames || kind !== "Pod" || name === undefined) return undefined;
  // CoreDNS uses a pod name only when it fits a label (< 64 characters).
  return isDns1123Label(name) ? name : undefined;
}

/** An endpoint's hostname (a DNS-1123 label), or undefined when absent or bad. */
export function readHostname(ctx: Ctx, v: unknown, path: string): string | undefined {
  const hostname = ctx.string(v, path);
  if (hostname === undefined || hostname === "") return undefined;
  if (!isDns1123Label(hostname)) {
    ctx.error(path, `${show(hostname)} is not a valid hostname (${DNS1123_LABEL_RULE})`);
    return undefined;
  }
  return hostname;
}

/** An endpoint's node name (a DNS-1123 subdomain), or undefined when absent or bad. */
export function readNodeName(ctx: Ctx, v: unknown, path: string): string | undefined {
  const nodeName = ctx.string(v, path);
  if (nodeName === undefined || nodeName === "") return undefined;
  if (!isDns1123Subdomain(nodeName)) {
    ctx.error(path, `${show(nodeName)} is not a valid node name (${DNS1123_SUBDOMAIN_RULE})`);
    return undefined;
  }
  return nodeName;
}

const ENDPOINT_PORT_FIELDS = new Set(["name", "protocol", "port", "appProtocol"]);

/**
 * Reads endpoint ports with the rules of the API for each kind. An EndpointSlice port without a
 * number is legal ("all ports") and kube-proxy skips it; svcgate does the same, with a warning,
 * instead of dropping the slice. Endpoints need names when there are several ports; slices only
 * need unique names.
 */
export function readEndpointPorts(
  ctx: Ctx,
  v: unknown,
  path: string,
  kind: "EndpointSlice" | "Endpoints",
): EndpointPort[] {
  const slice = kind === "EndpointSlice";
  const items = ctx.array(v, path) ?? [];
  const out: EndpointPort[] = [];
  const names = new Map<string, number>();
  items.forEach((item, i) => {
    const p = child(path, i);
    const obj = ctx.object(item, p);
    if (!obj) return;
    ctx.unknownFields(obj, p, ENDPOINT_PORT_FIELDS);
    const before = ctx.errors.length;
    const name = ctx.string(obj.name, `${p}.name`) ?? "";
    const nameGiven = typeof obj.name === "string" && obj.name !== "";
    if (!nameGiven && items.length > 1 && !slice && typeof (obj.name ?? "") === "string") {
      ctx.error(`${p}.name`, "missing; every port needs a name when there is more than one port");
    } else if (name !== "" && !isDns1123Label(name)) {
      ctx.error(`${p}.name`, `${show(name)} is not a valid port name (${DNS1123_LABEL_RULE})`);
    } else if (names.has(name)) {
      ctx.error(`${p}.name`, `${show(name)} is already used by ${path}[${names.get(name)}]`);
    } else names.set(name, i);
    const protocol = ctx.protocol(obj.protocol, `${p}.protocol`);
    const port = ctx.port(obj.port, `${p}.port`);
    if ((obj.port === undefined || obj.port === null) && slice) {
      ctx.warn(`${p}.port`, "missing; this port is ignored (svcgate needs a port number)");
    } else if (obj.port === undefined || obj.port === null) {
      ctx.error(`${p}.port`, "missing; a port number (1-65535) is required");
    }
    if (ctx.failedSince(before) || port === undefined) return;
    out.push(Object.freeze({ name, protocol, port }));
  });
  return out;
}
