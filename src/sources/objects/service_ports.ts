/**
 * A Service's ports: names, protocols, port numbers, target ports (number or IANA name) and node
 * ports, each unique as the API requires. Pure.
 * @module
 */

import type { ServicePort, ServiceType } from "../../model/types.ts";
import { DNS1123_LABEL_RULE, IANA_SVC_NAME_RULE, isDns1123Label, isIanaSvcName } from "./names.ts";
import { type Ctx, isPort, show } from "./validate.ts";
import { withinLimit } from "./limits.ts";

const SERVICE_PORT_FIELDS = new Set([
  "name",
  "protocol",
  "port",
  "targetPort",
  "nodePort",
  "appProtocol",
]);

/** Reads `spec.ports`; at least one is needed unless the Service is headless or ExternalName. */
export function readServicePorts(
  ctx: Ctx,
  spec: Record<string, unknown>,
  type: ServiceType,
  headless: boolean,
): ServicePort[] {
  const raw = ctx.array(spec.ports, "spec.ports");
  if ((raw === undefined || raw.length === 0) && !headless && type !== "ExternalName") {
    if (spec.ports === undefined || spec.ports === null || Array.isArray(spec.ports)) {
      ctx.error(
        "spec.ports",
        "no ports; a Service needs at least one port unless it is headless or ExternalName",
      );
    }
    return [];
  }
  const items = raw ?? [];
  if (!withinLimit(ctx, "spec.ports", items.length, "servicePorts", "ports")) return [];
  const ports: ServicePort[] = [];
  const names = new Map<string, number>();
  const portProto = new Map<string, number>();
  const nodePorts = new Map<string, number>();
  const allowNodePort = type === "NodePort" || type === "LoadBalancer";
  items.forEach((item, i) => {
    const path = `spec.ports[${i}]`;
    const obj = ctx.object(item, path);
    if (!obj) {
      if (item === null || item === undefined) ctx.error(path, "expected an object, got null");
      return;
    }
    const before = ctx.errors.length;
    ctx.unknownFields(obj, path, SERVICE_PORT_FIELDS);
    const name = ctx.string(obj.name, `${path}.name`) ?? "";
    if (name === "") {
      if (items.length > 1 && (obj.name === undefined || obj.name === null || obj.name === "")) {
        ctx.error(
          `${path}.name`,
          "missing; every port needs a name when a Service has more than one port",
        );
      }
    } else if (!isDns1123Label(name)) {
      ctx.error(`${path}.name`, `${show(name)} is not a valid port name (${DNS1123_LABEL_RULE})`);
    } else if (names.has(name)) {
      ctx.error(`${path}.name`, `${show(name)} is already used by spec.ports[${names.get(name)}]`);
    } else {
      names.set(name, i);
    }
    const protocol = ctx.protocol(obj.protocol, `${path}.protocol`);
    const port = ctx.port(obj.port, `${path}.port`);
    if (obj.port === undefined || obj.port === null) {
      ctx.error(`${path}.port`, "missing; a port number (1-65535) is required");
    } else if (port !== undefined) {
      const key = `${port}/${protocol}`;
      if (portProto.has(key)) {
        ctx.error(path, `port ${key} is already used by spec.ports[${portProto.get(key)}]`);
      } else portProto.set(key, i);
    }
    let targetPort: number | string | undefined;
    const tp = obj.targetPort;
    if (tp === undefined || tp === null || tp === 0 || tp === "") {
      targetPort = port;
    } else if (typeof tp === "number") {
      if (isPort(tp)) targetPort = tp;
      else ctx.error(`${path}.targetPort`, `${show(tp)} is not a port (1-65535)`);
    } else if (typeof tp === "string") {
      if (isIanaSvcName(tp)) {
        targetPort = tp;
      } else {
        const message = `${show(tp)} is not a port number or ${IANA_SVC_NAME_RULE}`;
        ctx.error(`${path}.targetPort`, message);
      }
    } else {
      ctx.error(`${path}.targetPort`, `${show(tp)} is not a port number or a port name`);
    }
    let nodePort: number | undefined;
    const np = obj.nodePort;
    if (np !== undefined && np !== null && np !== 0) {
      if (!allowNodePort) {
        ctx.error(
          `${path}.nodePort`,
          `${show(np)} is not allowed for type ${type} (only NodePort and LoadBalancer)`,
        );
      } else {
        // Any port is accepted: the node port range is a cluster setting (default 30000-32767).
        nodePort = ctx.port(np, `${path}.nodePort`);
        if (nodePort !== undefined) {
          const key = `${nodePort}/${protocol}`;
          if (nodePorts.has(key)) {
            ctx.error(
              `${path}.nodePort`,
              `${key} is already used by spec.ports[${nodePorts.get(key)}]`,
            );
          } else nodePorts.set(key, i);
        }
      }
    }
    if (
      ctx.failedSince(before) || port === undefined ||
      targetPort === undefined
    ) {
      return;
    }
    ports.push(Object.freeze({
      name,
      protocol,
      port,
      targetPort,
      ...(nodePort !== undefined ? { nodePort } : {}),
    }));
  });
  return ports;
}
