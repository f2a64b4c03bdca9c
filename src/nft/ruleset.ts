/**
 * The nftables ruleset as plain data, and its text forms.
 *
 * Rules are a small typed AST (matches and statements) rather than strings, so the packet-flow
 * evaluator interprets exactly what is rendered and the text is derived in one place. Set and map
 * elements are kept as canonical text (`198.19.0.1 . tcp . 80`) because that is what the diff,
 * the kernel read-back and the transaction all compare; each set declares the types of its key
 * and value parts so the text can be interpreted again. Pure.
 * @module
 */

import { fnv1a32 } from "../model/hash.ts";

/** nftables address family of a svcgate table. */
export type Family = "ip" | "ip6";

/** Both families, in the order svcgate renders and applies them. */
export const FAMILIES: readonly Family[] = ["ip", "ip6"];

/** The name of svcgate's table in each family. */
export const TABLE_NAME = "svcgate";

/** Transport protocols as nft names them. */
export type L4Proto = "tcp" | "udp" | "sctp";

/** Every transport protocol a service may use. */
export const L4_PROTOS: readonly L4Proto[] = ["tcp", "udp", "sctp"];

/** A value computed from the packet or its conntrack entry. */
export type Expr =
  | { readonly e: "saddr" }
  | { readonly e: "daddr" }
  | { readonly e: "l4proto" }
  | { readonly e: "dport" }
  | { readonly e: "sport" }
  /** `ct original ip daddr`: the destination before DNAT. */
  | { readonly e: "ct-orig-daddr" }
  /** `ct original proto-dst`: the destination port before DNAT. */
  | { readonly e: "ct-orig-dport" }
  /** `numgen random mod N`: a uniformly random number in [0, N). */
  | { readonly e: "numgen"; readonly mod: number }
  /** `jhash <input> mod 4294967295 seed S`: a 32-bit hash of the concatenated input. */
  | { readonly e: "jhash"; readonly input: readonly Expr[]; readonly seed: number };

/** A concatenation of expressions (one part or more), the key of a lookup. */
export type Key = readonly Expr[];

/** A condition a packet must meet for a rule to continue. */
export type Match =
  | { readonly m: "ct-state-new" }
  | { readonly m: "ct-status-dnat" }
  | { readonly m: "l4proto"; readonly protos: readonly L4Proto[] }
  /** `fib daddr type local` / `fib saddr type local`: the address is one of this host's. */
  | { readonly m: "fib-local"; readonly addr: "daddr" | "saddr" }
  /** The destination is not loopback (NodePorts are not served on 127.0.0.1 / ::1). */
  | { readonly m: "not-loopback" }
  /** `<key> @set` or `<key> != @set`. */
  | { readonly m: "in"; readonly key: Key; readonly set: string; readonly negate?: boolean }
  /** `meta mark & BIT != 0`. */
  | { readonly m: "mark-bit"; readonly bit: number }
  /**
   * `iifname "NAME"` or `iifname != "NAME"`; a name ending in `*` matches by prefix. Locally
   * generated packets have no input interface.
   */
  | { readonly m: "iifname"; readonly name: string; readonly negate?: boolean };

/** What a rule does once it matches. */
export type Stmt =
  | { readonly s: "mark-or"; readonly bit: number }
  | { readonly s: "mark-xor"; readonly bit: number }
  /** `<key> vmap @map`: jump or goto the chain the map names for the key; no element, no-op. */
  | { readonly s: "vmap"; readonly key: Key; readonly map: string }
  /**
   * `dnat <family> to <key> map @map [: <portKey> map @portMap]`: the destination (address and
   * port, or the address only when a port map is given) is looked up; no element, no-op.
   */
  | {
    readonly s: "dnat";
    readonly key: Key;
    readonly map: string;
    readonly portKey?: Key;
    readonly portMap?: string;
  }
  /** `update @map { <key> timeout Ns : <value> }`: records a dynamic element. */
  | {
    readonly s: "update";
    readonly map: string;
    readonly key: Key;
    readonly timeoutSeconds: number;
    readonly value: Key;
  }
  | { readonly s: "masquerade" }
  | { readonly s: "notrack" }
  | { readonly s: "reject"; readonly tcpReset?: boolean }
  | { readonly s: "drop" }
  | { readonly s: "accept" }
  | { readonly s: "jump"; readonly chain: string }
  | { readonly s: "goto"; readonly chain: string };

/** One rule: all matches must hold, then the statements run in order. */
export interface Rule {
  readonly matches: readonly Match[];
  readonly stmts: readonly Stmt[];
}

/** Hook properties of a base chain. */
export interface BaseChain {
  readonly type: "filter" | "nat";
  readonly hook: "prerouting" | "input" | "forward" | "output" | "postrouting";
  readonly priority: number;
}

/** A chain: a base chain (attached to a hook) or a regular one (reached by jump/goto/vmap). */
export interface ChainSpec {
  readonly name: string;
  readonly base?: BaseChain;
  readonly rules: readonly Rule[];
}

/** How one part of a set key or map value is written. */
export type AtomType =
  | "addr"
  | "proto"
  | "port"
  | "int"
  /** An address or a CIDR (interval sets). */
  | "cidr";

/** Declaration of a set or map. */
export interface SetSpec {
  readonly name: string;
  readonly kind: "set" | "map";
  /** Declaration body, for example `type ipv4_addr . inet_proto . inet_service : verdict`. */
  readonly decl: string;
  readonly keyTypes: readonly AtomType[];
  /** Value parts of a map; "verdict" for verdict maps; absent for sets. */
  readonly valueTypes?: readonly AtomType[] | "verdict";
  readonly flags?: readonly ("interval" | "dynamic" | "timeout")[];
  /** Default element timeout, seconds (dynamic maps). */
  readonly timeoutSeconds?: number;
  /** Maximum number of elements (dynamic maps). */
  readonly size?: number;
  /** Elements are written by packets (affinity); svcgate never diffs them. */
  readonly dynamic?: boolean;
  /**
   * A set whose element value text is the element's comment: `cluster-ips` records the service
   * that owns each VIP, so a restarted svcgate can read who serves what from the kernel.
   */
  readonly commentValue?: boolean;
}

/** One table: declarations, chains, and the elements of every non-dynamic set (key -> value). */
export interface TableSpec {
  readonly family: Family;
  readonly sets: ReadonlyMap<string, SetSpec>;
  readonly chains: ReadonlyMap<string, ChainSpec>;
  /** Set name -> element key text -> value text ("" for plain sets). */
  readonly elements: ReadonlyMap<string, ReadonlyMap<string, string>>;
}

/** A rendered ruleset: one table per family, plus what could not be expressed. */
export interface Ruleset {
  readonly tables: readonly TableSpec[];
  /** Human-readable notes about services rendered partially or skipped, sorted. */
  readonly warnings: readonly string[];
}

// ---------------------------------------------------------------------------------------------
// Text

function fam(family: Family): string {
  return family;
}

/** Text of an expression in a family's table. */
export function exprText(x: Expr, family: Family): string {
  switch (x.e) {
    case "saddr":
      return `${fam(family)} saddr`;
    case "daddr":
      return `${fam(family)} daddr`;
    case "l4proto":
      return "meta l4proto";
    case "dport":
      return "th dport";
    case "sport":
      return "th sport";
    case "ct-orig-daddr":
      return `ct original ${fam(family)} daddr`;
    case "ct-orig-dport":
      return "ct original proto-dst";
    case "numgen":
      return `numgen random mod ${x.mod}`;
    case "jhash":
      return `jhash ${keyText(x.input, family)} mod 4294967295 seed 0x${
        x.seed.toString(16).padStart(8, "0")
      }`;
  }
}

/** Text of a concatenation. */
export function keyText(key: Key, family: Family): string {
  return key.map((x) => exprText(x, family)).join(" . ");
}

function hex32(n: number): string {
  return `0x${n.toString(16).padStart(8, "0")}`;
}

function matchText(m: Match, family: Family): string {
  switch (m.m) {
    case "ct-state-new":
      return "ct state new";
    case "ct-status-dnat":
      return "ct status dnat";
    case "l4proto":
      return m.protos.length === 1
        ? `meta l4proto ${m.protos[0]}`
        : `meta l4proto { ${m.protos.join(", ")} }`;
    case "fib-local":
      return `fib ${m.addr} type local`;
    case "not-loopback":
      return family === "ip" ? "ip daddr != 127.0.0.0/8" : "ip6 daddr != ::1";
    case "in":
      return `${keyText(m.key, family)} ${m.negate ? "!= " : ""}@${m.set}`;
    case "mark-bit":
      return `meta mark & ${hex32(m.bit)} != 0x00000000`;
    case "iifname":
      return `iifname ${m.negate ? "!= " : ""}${JSON.stringify(m.name)}`;
  }
}

function stmtText(s: Stmt, family: Family): string {
  switch (s.s) {
    case "mark-or":
      return `meta mark set meta mark | ${hex32(s.bit)}`;
    case "mark-xor":
      return `meta mark set meta mark ^ ${hex32(s.bit)}`;
    case "vmap":
      return `${keyText(s.key, family)} vmap @${s.map}`;
    case "dnat": {
      const addr = `${keyText(s.key, family)} map @${s.map}`;
      const port = s.portKey && s.portMap
        ? ` : ${keyText(s.portKey, family)} map @${s.portMap}`
        : "";
      return `dnat ${fam(family)} to ${addr}${port}`;
    }
    case "update":
      return `update @${s.map} { ${keyText(s.key, family)} timeout ${s.timeoutSeconds}s : ${
        keyText(s.value, family)
      } }`;
    case "masquerade":
      return "masquerade fully-random";
    case "notrack":
      return "notrack";
    case "reject":
      return s.tcpReset ? "reject with tcp reset" : "reject";
    case "drop":
      return "drop";
    case "accept":
      return "accept";
    case "jump":
      return `jump ${s.chain}`;
    case "goto":
      return `goto ${s.chain}`;
  }
}

/** Text of a rule without its identifying comment. */
export function ruleBody(rule: Rule, family: Family): string {
  return [
    ...rule.matches.map((m) => matchText(m, family)),
    ...rule.stmts.map((s) => stmtText(s, family)),
  ]
    .join(" ");
}

/**
 * 32-bit FNV-1a of a text, as 8 hex digits. Used to tag rules and set declarations with a comment
 * so the read-back from the kernel can be compared without re-parsing nft's JSON expressions.
 */
export function fnv1a(text: string): string {
  return fnv1a32(text).toString(16).padStart(8, "0");
}

/** The comment that identifies a rule's content: `sg:<hash of its text>`. */
export function ruleTag(rule: Rule, family: Family): string {
  return `sg:${fnv1a(ruleBody(rule, family))}`;
}

/** Full text of a rule, as written to nft: body plus identifying comment. */
export function ruleText(rule: Rule, family: Family): string {
  return `${ruleBody(rule, family)} comment "${ruleTag(rule, family)}"`;
}

/** Declaration properties of a set, one per line, without the elements. */
export function setDeclLines(set: SetSpec): string[] {
  const lines = [set.decl];
  if (set.size !== undefined) lines.push(`size ${set.size}`);
  if (set.flags && set.flags.length > 0) lines.push(`flags ${set.flags.join(",")}`);
  if (set.timeoutSeconds !== undefined) lines.push(`timeout ${set.timeoutSeconds}s`);
  return lines;
}

/** The comment that identifies a set's declaration: `sg:<hash>`. */
export function setTag(set: SetSpec): string {
  return `sg:${fnv1a(`${set.kind} ${set.name} ${setDeclLines(set).join("; ")}`)}`;
}

/** The declaration of a base chain, as in `type nat hook prerouting priority -100; policy accept;`. */
export function baseChainText(base: BaseChain): string {
  return `type ${base.type} hook ${base.hook} priority ${base.priority}; policy accept;`;
}

const DIGITS = /(\d+)/;

/**
 * Orders element texts naturally (numbers by value), so `198.19.0.2` sorts before `198.19.0.10`.
 * Used for canonical output only.
 */
export function naturalCompare(a: string, b: string): number {
  if (a === b) return 0;
  const pa = a.split(DIGITS), pb = b.split(DIGITS);
  const n = Math.min(pa.length, pb.length);
  for (let i = 0; i < n; i++) {
    if (pa[i] === pb[i]) continue;
    if (i % 2 === 1) {
      const d = Number(pa[i]) - Number(pb[i]);
      if (d !== 0) return d;
    }
    return pa[i] < pb[i] ? -1 : 1;
  }
  return pa.length - pb.length;
}

/**
 * Element text of a CIDR in an interval set: the bare address for a host prefix (/32, /128),
 * because that is how nft lists it back.
 */
export function cidrAtom(
  cidr: { readonly family: 4 | 6; readonly prefix: number; readonly text: string },
): string {
  const full = cidr.family === 4 ? 32 : 128;
  return cidr.prefix === full ? cidr.text.slice(0, cidr.text.indexOf("/")) : cidr.text;
}

/** Text of one element: `key`, `key : value`, or `key comment "value"` for commented sets. */
export function elementText(key: string, value: string, commentValue = false): string {
  if (value === "") return key;
  return commentValue ? `${key} comment "${value}"` : `${key} : ${value}`;
}

/** Options of {@link formatTable}. */
export interface FormatOptions {
  /** Include the `comment "sg:…"` tags on rules and sets (default true: the exact ruleset). */
  readonly tags?: boolean;
}

/**
 * Canonical text of a table in nft's block syntax: sets, then chains, each sorted by name,
 * elements sorted naturally. This is what `svcgate render` prints; it is valid `nft -f` input.
 *
 * @example
 * ```ts
 * const text = formatTable(renderRuleset(snapshot, options).tables[0]);
 * ```
 */
export function formatTable(table: TableSpec, options: FormatOptions = {}): string {
  const tags = options.tags ?? true;
  const out: string[] = [`table ${table.family} ${TABLE_NAME} {`];
  // Chains first: map elements name them as jump/goto targets.
  for (const chain of [...table.chains.values()].sort((a, b) => naturalCompare(a.name, b.name))) {
    out.push(`\tchain ${chain.name} {`);
    if (chain.base) out.push(`\t\t${baseChainText(chain.base)}`);
    for (const rule of chain.rules) {
      out.push(`\t\t${tags ? ruleText(rule, table.family) : ruleBody(rule, table.family)}`);
    }
    out.push("\t}");
  }
  for (const set of [...table.sets.values()].sort((a, b) => naturalCompare(a.name, b.name))) {
    out.push(`\t${set.kind} ${set.name} {`);
    for (const line of setDeclLines(set)) out.push(`\t\t${line}`);
    if (tags) out.push(`\t\tcomment "${setTag(set)}"`);
    const elements = table.elements.get(set.name);
    if (elements && elements.size > 0 && !set.dynamic) {
      const keys = [...elements.keys()].sort(naturalCompare);
      out.push(`\t\telements = {`);
      keys.forEach((k, i) => {
        const text = elementText(k, elements.get(k)!, set.commentValue);
        out.push(`\t\t\t${text}${i < keys.length - 1 ? "," : ""}`);
      });
      out.push(`\t\t}`);
    }
    out.push("\t}");
  }
  out.push("}");
  return out.join("\n") + "\n";
}

/** Canonical text of a whole ruleset (both tables). */
export function formatRuleset(ruleset: Ruleset, options: FormatOptions = {}): string {
  return ruleset.tables.map((t) => formatTable(t, options)).join("\n");
}

/** Number of rules and (non-dynamic) elements in a table, for metrics. */
export function tableStats(table: TableSpec): { chains: number; rules: number; elements: number } {
  let rules = 0, elements = 0;
  for (const c of table.chains.values()) rules += c.rules.length;
  for (const [name, els] of table.elements) {
    if (!table.sets.get(name)?.dynamic) elements += els.size;
  }
  return { chains: table.chains.size, rules, elements };
}
