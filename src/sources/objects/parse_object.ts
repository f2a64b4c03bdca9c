/**
 * The entry for raw Kubernetes objects (`v1 Service`, `v1 Endpoints`, `discovery.k8s.io/v1
 * EndpointSlice`, `v1 Namespace`), as decoded from YAML, JSON or the API: {@link parseObject}
 * dispatches on apiVersion and kind to the parser of each kind (one file per kind beside this
 * one), and {@link objectId} / {@link rawObjectId} name objects for duplicate detection.
 *
 * Pure: no I/O. Every problem is reported as a ValidationError naming where the object came
 * from, the field path and the offending value; an object with any error yields no value.
 * @module
 */

import type { EndpointSet, Service } from "../../model/types.ts";
import { parseEndpoints } from "./endpoints.ts";
import { parseEndpointSlice } from "./endpoint_slice.ts";
import { parseNamespace } from "./namespace.ts";
import { parseService } from "./service.ts";
import { isPlainObject, type ParseOptions, type ParseResult, show } from "./validate.ts";

/** A successfully parsed object of one of the kinds svcgate reads. */
export type ParsedObject =
  | { readonly kind: "Service"; readonly id: string; readonly service: Service }
  | { readonly kind: "EndpointSlice"; readonly id: string; readonly endpointSet: EndpointSet }
  | {
    readonly kind: "Endpoints";
    readonly id: string;
    readonly namespace: string;
    /** The Endpoints name, which is the name of its Service. */
    readonly name: string;
    readonly endpointSets: readonly EndpointSet[];
  }
  | { readonly kind: "Namespace"; readonly id: string; readonly namespace: string };

/** The kinds {@link parseObject} understands. */
export type ObjectKind = ParsedObject["kind"];

/**
 * The identity of an object used for duplicate detection: `Service default/web`,
 * `EndpointSlice default/web-abc`, `Endpoints default/web`, `Namespace prod`.
 */
export function objectId(kind: ObjectKind, namespace: string, name: string): string {
  return kind === "Namespace" ? `Namespace ${name}` : `${kind} ${namespace}/${name}`;
}

/**
 * The identity of a raw object, when its kind and names can be read even if it is otherwise
 * invalid; lets a reload keep the last good version of an object that became invalid.
 */
export function rawObjectId(obj: unknown): string | undefined {
  if (!isPlainObject(obj)) return undefined;
  const kind = obj.kind;
  if (
    kind !== "Service" && kind !== "EndpointSlice" && kind !== "Endpoints" && kind !== "Namespace"
  ) return undefined;
  const meta = obj.metadata;
  if (!isPlainObject(meta) || typeof meta.name !== "string" || meta.name === "") return undefined;
  const ns = meta.namespace === undefined || meta.namespace === null || meta.namespace === ""
    ? "default"
    : meta.namespace;
  if (typeof ns !== "string") return undefined;
  return objectId(kind, ns, meta.name);
}

const API_VERSIONS: Record<ObjectKind, string> = {
  Service: "v1",
  Endpoints: "v1",
  Namespace: "v1",
  EndpointSlice: "discovery.k8s.io/v1",
};

/**
 * Parses any object svcgate reads, dispatching on apiVersion and kind. Objects of other kinds
 * give no value and one warning; objects without a kind are errors.
 *
 * @example
 * ```ts
 * const { value } = parseObject({ apiVersion: "v1", kind: "Namespace", metadata: { name: "prod" } }, "ns.yaml#1");
 * value?.kind === "Namespace" && value.namespace; // "prod"
 * ```
 */
export function parseObject(
  obj: unknown,
  where: string,
  options: ParseOptions = {},
): ParseResult<ParsedObject> {
  if (!isPlainObject(obj)) {
    return {
      errors: [{
        where,
        path: "",
        message: `expected a Kubernetes object (a mapping with apiVersion and kind), got ${
          show(obj)
        }`,
      }],
    };
  }
  const kind = obj.kind;
  if (kind === undefined || kind === null || kind === "") {
    return {
      errors: [{
        where,
        path: "kind",
        message: "missing; expected Service, Endpoints, EndpointSlice or Namespace",
      }],
    };
  }
  if (typeof kind !== "string") {
    return { errors: [{ where, path: "kind", message: `${show(kind)} is not a string` }] };
  }
  if (!(kind in API_VERSIONS)) {
    return {
      errors: [{
        where,
        path: "kind",
        message: `${
          show(kind)
        } is not a kind svcgate reads (Service, Endpoints, EndpointSlice, Namespace); ignored`,
        severity: "warning",
      }],
    };
  }
  const k = kind as ObjectKind;
  if (obj.apiVersion === undefined || obj.apiVersion === null || obj.apiVersion === "") {
    return {
      errors: [{
        where,
        path: "apiVersion",
        message: `missing; expected ${show(API_VERSIONS[k])} for kind ${k}`,
      }],
    };
  }
  switch (k) {
    case "Service": {
      const r = parseService(obj, where, options);
      return r.value
        ? {
          value: { kind: k, id: objectId(k, r.value.namespace, r.value.name), service: r.value },
          errors: r.errors,
        }
        : { errors: r.errors };
    }
    case "EndpointSlice": {
      const r = parseEndpointSlice(obj, where, options);
      return r.value
        ? {
          value: { kind: k, id: objectId(k, r.value.namespace, r.value.id), endpointSet: r.value },
          errors: r.errors,
        }
        : { errors: r.errors };
    }
    case "Endpoints": {
      const r = parseEndpoints(obj, where, options);
      if (!r.value) return { errors: r.errors };
      const meta = obj.metadata as Record<string, unknown>;
      const namespace = typeof meta.namespace === "string" && meta.namespace !== ""
        ? meta.namespace
        : "default";
      const name = meta.name as string;
      return {
        value: {
          kind: k,
          id: objectId(k, namespace, name),
          namespace,
          name,
          endpointSets: Object.freeze(r.value),
        },
        errors: r.errors,
      };
    }
    case "Namespace": {
      const r = parseNamespace(obj, where, options);
      return r.value !== undefined
        ? { value: { kind: k, id: objectId(k, "", r.value), namespace: r.value }, errors: r.errors }
        : { errors: r.errors };
    }
  }
}
