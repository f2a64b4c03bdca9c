/**
 * Type and object metadata shared by every kind: apiVersion/kind checks, and metadata's name,
 * namespace, labels and annotations. Pure.
 * @module
 */

import {
  DNS1035_LABEL_RULE,
  DNS1123_LABEL_RULE,
  DNS1123_SUBDOMAIN_RULE,
  isDns1035Label,
  isDns1123Label,
  isDns1123Subdomain,
  labelValueProblem,
  qualifiedNameProblem,
} from "./names.ts";
import { child, type Ctx, show } from "./validate.ts";

/** Top-level fields every kind has. */
export const TYPE_META_FIELDS = ["apiVersion", "kind", "metadata"];
const METADATA_FIELDS = new Set([
  "name",
  "namespace",
  "labels",
  "annotations",
  "uid",
  "resourceVersion",
  "generation",
  "generateName",
  "creationTimestamp",
  "deletionTimestamp",
  "deletionGracePeriodSeconds",
  "ownerReferences",
  "finalizers",
  "managedFields",
  "selfLink",
]);

/** The metadata svcgate reads. */
export interface Meta {
  readonly name: string;
  readonly namespace: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, string>>;
}

/** Checks apiVersion and kind when present (API list items omit them). */
export function checkTypeMeta(
  ctx: Ctx,
  obj: Record<string, unknown>,
  apiVersion: string,
  kind: string,
): void {
  if (obj.kind !== undefined && obj.kind !== kind) {
    ctx.error("kind", `${show(obj.kind)} is not ${show(kind)}`);
  }
  if (obj.apiVersion !== undefined && obj.apiVersion !== apiVersion) {
    ctx.error(
      "apiVersion",
      `${show(obj.apiVersion)} is not supported for kind ${kind} (expected ${show(apiVersion)})`,
    );
  }
}

function readStringMap(
  ctx: Ctx,
  v: unknown,
  path: string,
  checkValue: (value: string) => string | null,
): Record<string, string> {
  const obj = ctx.object(v, path);
  const out: Record<string, string> = {};
  if (!obj) return out;
  // Sorted, so equal maps written in another order give equal objects and fingerprints.
  for (const key of Object.keys(obj).sort()) {
    const p = child(path, key);
    const problem = qualifiedNameProblem(key);
    if (problem) {
      ctx.error(p, problem);
      continue;
    }
    const value = obj[key];
    if (typeof value !== "string") {
      ctx.error(p, `${show(value)} is not a string (quote it)`);
      continue;
    }
    const valueProblem = checkValue(value);
    if (valueProblem) {
      ctx.error(p, valueProblem);
      continue;
    }
    out[key] = value;
  }
  return out;
}

/**
 * Reads metadata: the name (checked by `nameRule`), the namespace (default "default"), labels
 * and annotations.
 */
export function readMeta(
  ctx: Ctx,
  obj: Record<string, unknown>,
  kind: string,
  nameRule: "dns1035" | "dns1123label" | "dns1123subdomain",
  namespaced: boolean,
): Meta | undefined {
  const meta = ctx.object(obj.metadata, "metadata");
  if (!meta) {
    if (obj.metadata === undefined || obj.metadata === null) {
      ctx.error("metadata", `missing; every ${kind} needs metadata.name`);
    }
    return undefined;
  }
  ctx.unknownFields(meta, "metadata", METADATA_FIELDS);
  const name = ctx.string(meta.name, "metadata.name");
  if (meta.name === undefined || meta.name === null || name === "") {
    ctx.error("metadata.name", `missing; every ${kind} needs a name`);
  } else if (name !== undefined) {
    const [ok, rule] = nameRule === "dns1035"
      ? [isDns1035Label(name), DNS1035_LABEL_RULE]
      : nameRule === "dns1123label"
      ? [isDns1123Label(name), DNS1123_LABEL_RULE]
      : [isDns1123Subdomain(name), DNS1123_SUBDOMAIN_RULE];
    if (!ok) ctx.error("metadata.name", `${show(name)} is not a valid ${kind} name (${rule})`);
  }
  let namespace = "default";
  if (namespaced) {
    const ns = ctx.string(meta.namespace, "metadata.namespace");
    if (ns !== undefined && ns !== "") {
      if (isDns1123Label(ns)) {
        namespace = ns;
      } else {
        ctx.error(
          "metadata.namespace",
          `${show(ns)} is not a valid namespace (${DNS1123_LABEL_RULE})`,
        );
      }
    }
  }
  const labels = readStringMap(ctx, meta.labels, "metadata.labels", labelValueProblem);
  const annotations = readStringMap(ctx, meta.annotations, "metadata.annotations", () => null);
  if (name === undefined || name === "") return undefined;
  return { name, namespace, labels, annotations };
}
