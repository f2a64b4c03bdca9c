/**
 * Parses a `v1 Namespace` into its name. Pure.
 * @module
 */

import { checkTypeMeta, readMeta } from "./metadata.ts";
import { Ctx, isPlainObject, type ParseOptions, type ParseResult, show } from "./validate.ts";

/** Parses a `v1 Namespace` into its name. */
export function parseNamespace(
  obj: unknown,
  where: string,
  options: ParseOptions = {},
): ParseResult<string> {
  const ctx = new Ctx(where, options);
  if (!isPlainObject(obj)) {
    ctx.error("", `expected a Namespace object, got ${show(obj)}`);
    return { errors: ctx.errors };
  }
  checkTypeMeta(ctx, obj, "v1", "Namespace");
  const meta = readMeta(ctx, obj, "Namespace", "dns1123label", false);
  if (ctx.failed || !meta) return { errors: ctx.errors };
  return { value: meta.name, errors: ctx.errors };
}
