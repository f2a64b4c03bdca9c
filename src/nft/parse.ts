/**
 * Reads `nft -j list table <family> svcgate` output back into an {@link ObservedTable}: set tags,
 * chain hooks and rule tags, and the elements of every non-dynamic set as the same canonical text
 * the renderer writes. Pure.
 *
 * Rules are compared by their `comment "sg:<hash>"` tags, not by nft's JSON expressions (nft 1.0.6
 * cannot even print some of them as JSON), so only elements need real parsing. The set
 * declarations of the desired table say how to read each element part.
 * @module
 */

import { canonicalIp, parseCidr } from "../model/ip.ts";
import type { ObservedTable } from "./diff.ts";
import {
  type AtomType,
  type BaseChain,
  cidrAtom,
  type Family,
  type SetSpec,
  TABLE_NAME,
  type TableSpec,
} from "./ruleset.ts";

const PROTO_NUMBERS: Record<number, string> = { 6: "tcp", 17: "udp", 132: "sctp" };

type Json = unknown;

function isObject(x: Json): x is Record<string, Json> {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}

/** Text of one element part of the given type; throws with the value quoted when unreadable. */
export function atomText(value: Json, type: AtomType): string {
  if (isObject(value) && "prefix" in value && isObject(value.prefix)) {
    const addr = canonicalIp(String(value.prefix.addr));
    const c = parseCidr(`${addr}/${value.prefix.len}`);
    if (typeof c === "string") throw new Error(c);
    return cidrAtom(c);
  }
  if (isObject(value) && "range" in value && Array.isArray(value.range)) {
    const [a, b] = value.range.map((x) => canonicalIp(String(x)) ?? String(x));
    return `${a}-${b}`;
  }
  switch (type) {
    case "addr":
    case "cidr": {
      const ip = canonicalIp(String(value));
      if (!ip) throw new Error(`expected an address, got ${JSON.stringify(value)}`);
      return ip;
    }
    case "proto":
      if (typeof value === "number") return PROTO_NUMBERS[value] ?? String(value);
      return String(value);
    case "port":
    case "int":
      if (typeof value === "number") return String(value);
      if (typeof value === "string" && /^\d+$/.test(value)) return value;
      throw new Error(`expected a number, got ${JSON.stringify(value)}`);
  }
}

function concatParts(value: Json): Json[] {
  if (isObject(value) && Array.isArray(value.concat)) return value.concat;
  return [value];
}

function partsText(value: Json, types: readonly AtomType[], what: string): string {
  const parts = concatParts(value);
  if (parts.length !== types.length) {
    throw new Error(
      `${what} has ${parts.length} parts, expected ${types.length}: ${JSON.stringify(value)}`,
    );
  }
  return parts.map((p, i) => atomText(p, types[i])).join(" . ");
}

/** Text of a verdict value: `goto lb-vip-3`, `drop`. */
export function verdictText(value: Json): string {
  if (isObject(value)) {
    for (const kind of ["goto", "jump"]) {
      const v = value[kind];
      if (isObject(v) && typeof v.target === "string") return `${kind} ${v.target}`;
    }
    for (const kind of ["drop", "accept", "continue", "return"]) {
      if (kind in value) return kind;
    }
  }
  throw new Error(`unreadable verdict ${JSON.stringify(value)}`);
}

/** One element of a set or map as `[key text, value text]`. */
export function elementFromJson(item: Json, spec: SetSpec): [string, string] {
  let key: Json = item, value: Json = undefined;
  if (spec.kind === "map") {
    if (!Array.isArray(item) || item.length !== 2) {
      throw new Error(`map element is not [key, value]: ${JSON.stringify(item)}`);
    }
    [key, value] = item;
  }
  // Elements with a timeout or comment come wrapped: {"elem": {"val": …, "comment": …}}.
  let comment = "";
  if (isObject(key) && isObject(key.elem)) {
    if (typeof key.elem.comment === "string") comment = key.elem.comment;
    key = key.elem.val;
  }
  const keyText = partsText(key, spec.keyTypes, `element of ${spec.name}`);
  if (spec.kind === "set") return [keyText, spec.commentValue ? comment : ""];
  const valueText = spec.valueTypes === "verdict"
    ? verdictText(value)
    : partsText(value, spec.valueTypes ?? [], `value of ${spec.name}`);
  return [keyText, valueText];
}

const HOOKS = new Set(["prerouting", "input", "forward", "output", "postrouting"]);

/**
 * Parses `nft -j list table` output. `desired` gives the set declarations used to read elements;
 * a set it does not know is recorded (it forces a replace) but its elements are not read.
 * Anything unreadable becomes a `problem` rather than an exception, so a damaged table is
 * replaced instead of blocking every sync.
 *
 * @example
 * ```ts
 * const observed = parseTable(await executor.listTable("ip"), builder.table);
 * ```
 */
export function parseTable(jsonText: string, desired: TableSpec): ObservedTable {
  const family: Family = desired.family;
  const sets = new Map<string, { kind: "set" | "map"; tag: string | null }>();
  const chains = new Map<string, { base?: BaseChain; ruleTags: (string | null)[] }>();
  const elements = new Map<string, Map<string, string>>();
  const problems: string[] = [];
  let doc: Json;
  try {
    doc = JSON.parse(jsonText);
  } catch (e) {
    return {
      family,
      sets,
      chains,
      elements,
      problems: [`nft JSON output is not JSON: ${(e as Error).message}`],
    };
  }
  const items = isObject(doc) && Array.isArray(doc.nftables) ? doc.nftables : [];
  const mine = (o: Record<string, Json>) =>
    (o.family === undefined || o.family === family) &&
    (o.table === undefined || o.table === TABLE_NAME);
  for (const item of items) {
    if (!isObject(item)) continue;
    const setObj = isObject(item.set) ? item.set : isObject(item.map) ? item.map : null;
    if (setObj && mine(setObj)) {
      const name = String(setObj.name);
      const kind = isObject(item.set) ? "set" : "map";
      sets.set(name, { kind, tag: typeof setObj.comment === "string" ? setObj.comment : null });
      const spec = desired.sets.get(name);
      if (!spec || spec.dynamic || spec.kind !== kind) continue;
      const els = new Map<string, string>();
      for (const e of Array.isArray(setObj.elem) ? setObj.elem : []) {
        try {
          const [k, v] = elementFromJson(e, spec);
          els.set(k, v);
        } catch (err) {
          problems.push(`cannot read an element of ${kind} "${name}": ${(err as Error).message}`);
        }
      }
      elements.set(name, els);
      continue;
    }
    if (isObject(item.chain) && mine(item.chain)) {
      const c = item.chain;
      const name = String(c.name);
      const existing = chains.get(name);
      const entry = existing ?? { ruleTags: [] };
      if (typeof c.hook === "string") {
        if (!HOOKS.has(c.hook) || (c.type !== "filter" && c.type !== "nat")) {
          problems.push(`chain "${name}" has an unexpected hook ${JSON.stringify(c.hook)}`);
        } else {
          (entry as { base?: BaseChain }).base = {
            type: c.type,
            hook: c.hook as BaseChain["hook"],
            priority: Number(c.prio),
          };
        }
      }
      chains.set(name, entry);
      continue;
    }
    if (isObject(item.rule) && mine(item.rule)) {
      const r = item.rule;
      const name = String(r.chain);
      let entry = chains.get(name);
      if (!entry) chains.set(name, entry = { ruleTags: [] });
      entry.ruleTags.push(typeof r.comment === "string" ? r.comment : null);
    }
  }
  return { family, sets, chains, elements, problems };
}

/**
 * Reads the elements of one dynamic map (the affinity map) from `nft -j list map` output:
 * `[key text, value text]` pairs; unreadable elements are skipped.
 */
export function parseDynamicMap(jsonText: string, spec: SetSpec): [string, string][] {
  let doc: Json;
  try {
    doc = JSON.parse(jsonText);
  } catch {
    return [];
  }
  const out: [string, string][] = [];
  const items = isObject(doc) && Array.isArray(doc.nftables) ? doc.nftables : [];
  for (const item of items) {
    if (!isObject(item)) continue;
    const m = isObject(item.map) ? item.map : null;
    if (!m || m.name !== spec.name) continue;
    for (const e of Array.isArray(m.elem) ? m.elem : []) {
      try {
        out.push(elementFromJson(e, spec));
      } catch { /* an element that expired mid-read or an unknown shape: skip */ }
    }
  }
  return out;
}
