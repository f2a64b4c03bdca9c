/**
 * A packet-flow evaluator: interprets a rendered {@link TableSpec} (its rule AST and elements, not
 * nft text) for the first packet of a connection and answers where it goes:
 * `"198.18.0.11:8080"`, `"198.18.0.11:8080 masq"`, `"REJECT"`, `"DROP"` or `"ACCEPT"` (not
 * translated). Random load balancing forks: the answer is the set of possible outcomes. Pure.
 *
 * Model: one new connection; hooks run in priority order (raw, filter -110, nat -100, filter 0, nat
 * 100); a packet from one of the host's addresses takes the output path; after prerouting a packet
 * to a local address goes to input, anything else to forward then postrouting. NAT statements end
 * their hook with accept, as in the kernel; a lookup that misses makes its rule not match.
 * @module
 */

import { canonicalIp, cidrContains, parseCidr } from "../../src/model/ip.ts";
import type {
  AtomType,
  BaseChain,
  ChainSpec,
  Expr,
  Key,
  L4Proto,
  Match,
  Stmt,
  TableSpec,
} from "../../src/nft/ruleset.ts";

/** The first packet of a connection. */
export interface Packet {
  readonly src: string;
  readonly dst: string;
  readonly proto: L4Proto;
  readonly dport: number;
  /** Source port (default 40000). */
  readonly sport?: number;
  /** Input interface (none for locally generated packets). */
  readonly iif?: string;
}

/** What the evaluator needs to know about the host. */
export interface HostContext {
  /** The node's own addresses (`fib … type local`). */
  readonly localAddresses: readonly string[];
}

/** Options of {@link simulate}. */
export interface SimulateOptions {
  /**
   * Dynamic affinity entries (key text -> value text), read by lookups and written by `update`
   * statements. Pass the same map across calls to follow a client's affinity.
   */
  readonly affinity?: Map<string, string>;
  /** Picks the numgen value (0..n-1) instead of forking over all of them. */
  readonly pick?: (n: number) => number;
}

/** Where one possible path of the packet ends. */
export interface Outcome {
  readonly verdict: "DNAT" | "ACCEPT" | "REJECT" | "DROP";
  /** Translated destination, `198.18.0.11:8080` or `[2001:db8::a]:8080`. */
  readonly target?: string;
  readonly masquerade: boolean;
}

/** Text of an outcome as used in packet-flow tables. */
export function outcomeText(o: Outcome): string {
  if (o.verdict === "DNAT") return `${o.target}${o.masquerade ? " masq" : ""}`;
  if (o.verdict === "ACCEPT" && o.masquerade) return "ACCEPT masq";
  return o.verdict;
}

interface State {
  daddr: string;
  dport: number;
  mark: number;
  dnat: boolean;
  masq: boolean;
  notrack: boolean;
}

/** "next-rule": this rule is done (matched through, or a lookup missed); "continue": chain is done. */
type Flow = "continue" | "next-rule" | "accept" | "drop" | "reject";

interface Branch {
  state: State;
  flow: Flow;
}

interface Ctx {
  table: TableSpec;
  packet: Packet;
  host: HostContext;
  local: Set<string>;
  options: SimulateOptions;
}

function clone(s: State): State {
  return { ...s };
}

function isLoopback(addr: string): boolean {
  return addr === "::1" || addr.startsWith("127.");
}

/** Evaluates an expression; numgen forks (several values). */
function evalExpr(x: Expr, s: State, c: Ctx): string[] {
  const p = c.packet;
  switch (x.e) {
    case "saddr":
      return [p.src];
    case "daddr":
      return [s.daddr];
    case "l4proto":
      return [p.proto];
    case "dport":
      return [String(s.dport)];
    case "sport":
      return [String(p.sport ?? 40000)];
    case "ct-orig-daddr":
      return [p.dst];
    case "ct-orig-dport":
      return [String(p.dport)];
    case "numgen": {
      if (c.options.pick) return [String(c.options.pick(x.mod))];
      return Array.from({ length: x.mod }, (_, i) => String(i));
    }
    case "jhash": {
      // Modelled as injective: the text of its input stands for the hash.
      const input = evalKey(x.input, s, c)[0];
      return [`jhash(${input})#${x.seed}`];
    }
  }
}

/** All values of a concatenation (the cross product of forking parts). */
function evalKey(key: Key, s: State, c: Ctx): string[] {
  let acc: string[] = [""];
  for (const part of key) {
    const vals = evalExpr(part, s, c);
    acc = acc.flatMap((a) => vals.map((v) => (a === "" ? v : `${a} . ${v}`)));
  }
  return acc;
}

function partMatches(elementPart: string, value: string, type: AtomType): boolean {
  if (type !== "cidr") return elementPart === value;
  const cidr = parseCidr(
    elementPart.includes("/")
      ? elementPart
      : `${elementPart}/${elementPart.includes(":") ? 128 : 32}`,
  );
  return typeof cidr !== "string" && cidrContains(cidr, value);
}

/** Looks a key up in a set or map; returns the value ("" for sets) or undefined. */
function lookup(c: Ctx, setName: string, key: string): string | undefined {
  const spec = c.table.sets.get(setName);
  if (!spec) throw new Error(`simulate: rule refers to unknown set "${setName}"`);
  if (spec.dynamic) return c.options.affinity?.get(`${setName}|${key}`);
  const els = c.table.elements.get(setName)!;
  if (!spec.flags?.includes("interval")) return els.get(key);
  const parts = key.split(" . ");
  for (const [k, v] of els) {
    const eparts = k.split(" . ");
    if (eparts.every((ep, i) => partMatches(ep, parts[i], spec.keyTypes[i]))) return v;
  }
  return undefined;
}

/** Evaluates a match; a forking key matches per branch, so this returns the states that match. */
function evalMatch(m: Match, s: State, c: Ctx): boolean {
  switch (m.m) {
    case "ct-state-new":
      return true;
    case "ct-status-dnat":
      return s.dnat;
    case "l4proto":
      return m.protos.includes(c.packet.proto);
    case "fib-local":
      return c.local.has(m.addr === "daddr" ? s.daddr : c.packet.src);
    case "not-loopback":
      return !isLoopback(s.daddr);
    case "in": {
      const hit = evalKey(m.key, s, c).some((k) => lookup(c, m.set, k) !== undefined);
      return m.negate ? !hit : hit;
    }
    case "mark-bit":
      return (s.mark & m.bit) !== 0;
    case "iifname": {
      const iif = c.local.has(c.packet.src) ? "" : c.packet.iif ?? "";
      const hit = m.name.endsWith("*") ? iif.startsWith(m.name.slice(0, -1)) : iif === m.name;
      return m.negate ? !hit : hit;
    }
  }
}

function verdictFlow(
  verdict: string,
  s: State,
  c: Ctx,
  depth: number,
): { branches: Branch[]; ends: boolean } {
  const jump = /^(jump|goto) (\S+)$/.exec(verdict);
  if (jump) {
    const out = runChain(jump[2], s, c, depth + 1);
    // After a goto the calling chain is done; after a jump it continues.
    return { branches: out, ends: jump[1] === "goto" };
  }
  if (verdict === "drop" || verdict === "accept") {
    return { branches: [{ state: s, flow: verdict }], ends: true };
  }
  throw new Error(`simulate: unknown verdict "${verdict}"`);
}

function formatTarget(addr: string, port: string): string {
  return addr.includes(":") ? `[${addr}]:${port}` : `${addr}:${port}`;
}

/** Runs the statements of a matching rule; returns branches and whether the chain ends. */
function runStmts(stmts: readonly Stmt[], s0: State, c: Ctx, depth: number): Branch[] {
  let live: State[] = [s0];
  const done: Branch[] = [];
  for (const st of stmts) {
    const next: State[] = [];
    for (const s of live) {
      switch (st.s) {
        case "mark-or":
          s.mark |= st.bit;
          next.push(s);
          break;
        case "mark-xor":
          s.mark ^= st.bit;
          next.push(s);
          break;
        case "notrack":
          s.notrack = true;
          next.push(s);
          break;
        case "vmap": {
          const keys = evalKey(st.key, s, c);
          for (const k of keys) {
            const v = lookup(c, st.map, k);
            const branchState = keys.length > 1 ? clone(s) : s;
            if (v === undefined) {
              done.push({ state: branchState, flow: "next-rule" });
              continue;
            }
            const r = verdictFlow(v, branchState, c, depth);
            for (const b of r.branches) {
              if (b.flow !== "continue" || r.ends) done.push({ state: b.state, flow: b.flow });
              else next.push(b.state);
            }
          }
          break;
        }
        case "dnat": {
          const keys = evalKey(st.key, s, c);
          for (const k of keys) {
            const branchState = keys.length > 1 ? clone(s) : s;
            const v = lookup(c, st.map, k);
            if (v === undefined) {
              // A map miss makes the rule not match: nothing after it in this rule runs.
              done.push({ state: branchState, flow: "next-rule" });
              continue;
            }
            const parts = v.split(" . ");
            let port = parts[1];
            if (st.portKey && st.portMap) {
              port = lookup(c, st.portMap, evalKey(st.portKey, branchState, c)[0]) ?? "";
              if (port === "") {
                done.push({ state: branchState, flow: "next-rule" });
                continue;
              }
            }
            branchState.daddr = parts[0];
            branchState.dport = Number(port ?? branchState.dport);
            branchState.dnat = true;
            done.push({ state: branchState, flow: "accept" });
          }
          break;
        }
        case "update": {
          const key = evalKey(st.key, s, c)[0];
          const value = evalKey(st.value, s, c)[0];
          c.options.affinity?.set(`${st.map}|${key}`, value);
          next.push(s);
          break;
        }
        case "masquerade":
          s.masq = true;
          done.push({ state: s, flow: "accept" });
          break;
        case "reject":
          done.push({ state: s, flow: "reject" });
          break;
        case "drop":
          done.push({ state: s, flow: "drop" });
          break;
        case "accept":
          done.push({ state: s, flow: "accept" });
          break;
        case "jump":
        case "goto": {
          const r = verdictFlow(`${st.s} ${st.chain}`, s, c, depth);
          for (const b of r.branches) {
            if (b.flow !== "continue" || r.ends) done.push({ state: b.state, flow: b.flow });
            else next.push(b.state);
          }
          break;
        }
      }
    }
    live = next;
  }
  // States that ran through every statement continue with the next rule.
  return [...done, ...live.map((state): Branch => ({ state, flow: "next-rule" }))];
}

function runChain(name: string, s0: State, c: Ctx, depth = 0): Branch[] {
  if (depth > 32) throw new Error(`simulate: chain recursion too deep at "${name}"`);
  const chain: ChainSpec | undefined = c.table.chains.get(name);
  if (!chain) throw new Error(`simulate: unknown chain "${name}"`);
  let live: State[] = [s0];
  const out: Branch[] = [];
  for (const rule of chain.rules) {
    const next: State[] = [];
    for (const s of live) {
      if (!rule.matches.every((m) => evalMatch(m, s, c))) {
        next.push(s);
        continue;
      }
      for (const b of runStmts(rule.stmts, s, c, depth)) {
        if (b.flow === "next-rule") next.push(b.state);
        else out.push(b);
      }
    }
    live = next;
  }
  for (const s of live) out.push({ state: s, flow: "continue" });
  return out;
}

function hookChains(table: TableSpec, hook: BaseChain["hook"]): ChainSpec[] {
  return [...table.chains.values()]
    .filter((ch) => ch.base?.hook === hook)
    .sort((a, b) => a.base!.priority - b.base!.priority);
}

/** Runs every base chain of a hook in priority order; returns surviving and finished branches. */
function runHook(
  hook: BaseChain["hook"],
  states: State[],
  c: Ctx,
  finished: Outcome[],
): State[] {
  let live = states;
  for (const chain of hookChains(c.table, hook)) {
    const next: State[] = [];
    for (const s of live) {
      if (chain.base!.type === "nat" && s.notrack) {
        next.push(s);
        continue;
      }
      for (const b of runChain(chain.name, s, c)) {
        if (b.flow === "drop") finished.push({ verdict: "DROP", masquerade: false });
        else if (b.flow === "reject") finished.push({ verdict: "REJECT", masquerade: false });
        else next.push(b.state);
      }
    }
    live = next;
  }
  return live;
}

/**
 * Evaluates where the first packet of a connection goes through a rendered table.
 *
 * @example
 * ```ts
 * const outcomes = simulate(ruleset.tables[0], {
 *   src: "198.18.0.10", dst: "198.19.0.10", proto: "tcp", dport: 80,
 * }, { localAddresses: ["198.18.0.1"] });
 * outcomes.map(outcomeText); // ["198.18.0.11:8080", "198.18.0.12:8080"]
 * ```
 */
export function simulate(
  table: TableSpec,
  packet: Packet,
  host: HostContext,
  options: SimulateOptions = {},
): Outcome[] {
  const src = canonicalIp(packet.src), dst = canonicalIp(packet.dst);
  if (!src || !dst) {
    throw new Error(`simulate: invalid packet addresses "${packet.src}" -> "${packet.dst}"`);
  }
  const local = new Set(host.localAddresses.map((a) => canonicalIp(a) ?? a));
  const c: Ctx = { table, packet: { ...packet, src, dst }, host, local, options };
  const start: State = {
    daddr: dst,
    dport: packet.dport,
    mark: 0,
    dnat: false,
    masq: false,
    notrack: false,
  };
  const finished: Outcome[] = [];
  if (local.has(src)) {
    // Locally generated: output, postrouting, and input again when the target is this host.
    const out = runHook("postrouting", runHook("output", [start], c, finished), c, finished);
    const toInput = out.filter((s) => local.has(s.daddr));
    for (const s of out.filter((s) => !local.has(s.daddr))) finished.push(toOutcome(s));
    for (const s of runHook("input", toInput, c, finished)) finished.push(toOutcome(s));
  } else {
    const routed = runHook("prerouting", [start], c, finished);
    const toInput = routed.filter((s) => local.has(s.daddr));
    const toForward = routed.filter((s) => !local.has(s.daddr));
    for (const s of runHook("input", toInput, c, finished)) finished.push(toOutcome(s));
    const forwarded = runHook(
      "postrouting",
      runHook("forward", toForward, c, finished),
      c,
      finished,
    );
    for (const s of forwarded) finished.push(toOutcome(s));
  }
  const seen = new Map<string, Outcome>();
  for (const o of finished) seen.set(outcomeText(o), o);
  return [...seen.values()];
}

function toOutcome(s: State): Outcome {
  if (s.dnat) {
    return { verdict: "DNAT", target: formatTarget(s.daddr, String(s.dport)), masquerade: s.masq };
  }
  return { verdict: "ACCEPT", masquerade: s.masq };
}

/** Sorted outcome texts of {@link simulate}. */
export function simulateText(
  table: TableSpec,
  packet: Packet,
  host: HostContext,
  options: SimulateOptions = {},
): string[] {
  return simulate(table, packet, host, options).map(outcomeText).sort();
}
