/**
 * The only code that runs `nft` (and `conntrack`): small interfaces, command implementations that
 * take an argv prefix (`["ip", "netns", "exec", ns]` in tests, `[]` in production), and typed
 * errors that quote nft's message and the failing line of the transaction.
 * @module
 */

import { type Family, TABLE_NAME } from "./ruleset.ts";

/** Runs nft transactions and reads svcgate's tables back. */
export interface NftExecutor {
  /** Applies a transaction (`nft -f -`): all of it or, on error, none of it. */
  apply(script: string): Promise<void>;
  /** `nft -j list table <family> svcgate`, or null when the table does not exist. */
  listTable(family: Family): Promise<string | null>;
  /** `nft -j list set|map <family> svcgate <name>`, or null when it does not exist. */
  listSet(family: Family, kind: "set" | "map", name: string): Promise<string | null>;
  /**
   * The family's set declarations (without elements) and chains (without rules), as one
   * `{"nftables": [...]}` JSON document: a cheap look at the table's shape (milliseconds, where a
   * full listing of a 10k-service table takes seconds).
   */
  listOutline(family: Family): Promise<string>;
}

/** A failed nft invocation, with nft's own words and the line it refused. */
export class NftError extends Error {
  override readonly name = "NftError";
  /** nft's stderr, verbatim. */
  readonly stderr: string;
  readonly exitCode: number;
  /** 1-based line of the transaction nft pointed at, when it did. */
  readonly line?: number;
  /** Text of that line. */
  readonly lineText?: string;
  /** nft's error message for that line (`Could not process rule: File exists`). */
  readonly reason: string;

  constructor(
    what: string,
    init: { stderr: string; exitCode: number; line?: number; lineText?: string; reason: string },
  ) {
    const at = init.line !== undefined
      ? ` at line ${init.line}${
        init.lineText !== undefined ? ` (${JSON.stringify(truncate(init.lineText, 240))})` : ""
      }`
      : "";
    super(`${what} failed (exit ${init.exitCode})${at}: ${init.reason}`);
    this.stderr = init.stderr;
    this.exitCode = init.exitCode;
    this.reason = init.reason;
    if (init.line !== undefined) this.line = init.line;
    if (init.lineText !== undefined) this.lineText = init.lineText;
  }

  /** True when nft said the object does not exist (ENOENT). */
  get notFound(): boolean {
    return /No such file or directory/.test(this.stderr);
  }
}

function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max)}…`;
}

const ERROR_LINE = /^(?:[^:\n]*):(\d+):(\d+)(?:-\d+)?: Error: (.*)$/m;

/**
 * Builds an {@link NftError} from nft's stderr: finds the first `file:LINE:COL: Error: …`, and
 * quotes that line of the script.
 */
export function nftErrorFrom(
  what: string,
  stderr: string,
  exitCode: number,
  script = "",
): NftError {
  const m = ERROR_LINE.exec(stderr);
  if (m) {
    const line = Number(m[1]);
    const lineText = script ? script.split("\n")[line - 1] : undefined;
    return new NftError(what, {
      stderr,
      exitCode,
      line,
      reason: m[3].trim(),
      ...(lineText !== undefined ? { lineText } : {}),
    });
  }
  const reason = stderr.split("\n").map((l) => l.trim()).find((l) => l.length > 0) ??
    "no error message";
  return new NftError(what, { stderr, exitCode, reason: reason.replace(/^Error: /, "") });
}

/** How to run a command: the argv prefix and an optional time limit. */
export interface CommandOptions {
  /** Prepended to every command, e.g. `["ip", "netns", "exec", "lab-node"]`. Default `[]`. */
  readonly argvPrefix?: readonly string[];
  /** Path of the binary (default "nft" / "conntrack"). */
  readonly binary?: string;
  /** Kill the command after this long (default 120 s; a 10k-service cold load takes seconds). */
  readonly timeoutMs?: number;
  /** Told each child's pid as it starts (the kernel monitor tells svcgate's own changes apart). */
  readonly onSpawn?: (pid: number) => void;
}

interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

async function runCommand(
  argv: readonly string[],
  stdin: string | null,
  timeoutMs: number,
  onSpawn?: (pid: number) => void,
): Promise<RunResult> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  try {
    const child = new Deno.Command(argv[0], {
      args: argv.slice(1),
      stdin: stdin === null ? "null" : "piped",
      stdout: "piped",
      stderr: "piped",
      signal: controller.signal,
    }).spawn();
    onSpawn?.(child.pid);
    if (stdin !== null) {
      const w = child.stdin.getWriter();
      try {
        await w.write(new TextEncoder().encode(stdin));
        await w.close();
      } catch { /* the process died early; its exit status tells why */ }
    }
    const out = await child.output();
    const dec = new TextDecoder();
    const stderr = dec.decode(out.stderr);
    if (controller.signal.aborted) {
      return {
        code: out.code || 124,
        stdout: "",
        stderr: `Error: killed after ${timeoutMs} ms\n${stderr}`,
      };
    }
    return { code: out.code, stdout: dec.decode(out.stdout), stderr };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Runs the real `nft`.
 *
 * @example
 * ```ts
 * const nft = new NftCommandExecutor({ argvPrefix: ["ip", "netns", "exec", "lab-node"] });
 * await nft.apply("add table ip svcgate\n");
 * ```
 */
export class NftCommandExecutor implements NftExecutor {
  readonly #prefix: readonly string[];
  readonly #nft: string;
  readonly #timeoutMs: number;
  readonly #onSpawn?: (pid: number) => void;

  constructor(options: CommandOptions = {}) {
    this.#prefix = options.argvPrefix ?? [];
    this.#nft = options.binary ?? "nft";
    this.#timeoutMs = options.timeoutMs ?? 120_000;
    this.#onSpawn = options.onSpawn;
  }

  async apply(script: string): Promise<void> {
    const argv = [...this.#prefix, this.#nft, "-f", "-"];
    let r: RunResult;
    try {
      r = await runCommand(argv, script, this.#timeoutMs, this.#onSpawn);
    } catch (e) {
      throw new NftError(`Running "${argv.join(" ")}"`, {
        stderr: "",
        exitCode: -1,
        reason: (e as Error).message,
      });
    }
    if (r.code !== 0) throw nftErrorFrom(`Applying an nft transaction`, r.stderr, r.code, script);
  }

  listTable(family: Family): Promise<string | null> {
    return this.#list(["list", "table", family, TABLE_NAME]);
  }

  listSet(family: Family, kind: "set" | "map", name: string): Promise<string | null> {
    return this.#list(["list", kind, family, TABLE_NAME, name]);
  }

  async listOutline(family: Family): Promise<string> {
    const items: unknown[] = [];
    // `list sets` leaves maps out: without `list maps` every map looks missing and each periodic
    // check falls back to reading every element (README.md, Invariants).
    const calls = [
      ["-t", "list", "sets", family],
      ["-t", "list", "maps", family],
      ["list", "chains", family],
    ];
    for (const args of calls) {
      const json = await this.#list(args);
      const doc = json === null ? null : JSON.parse(json);
      if (doc && Array.isArray(doc.nftables)) items.push(...doc.nftables);
    }
    return JSON.stringify({ nftables: items });
  }

  async #list(args: string[]): Promise<string | null> {
    const argv = [...this.#prefix, this.#nft, "-j", ...args];
    let r: RunResult;
    try {
      r = await runCommand(argv, null, this.#timeoutMs);
    } catch (e) {
      throw new NftError(`Running "${argv.join(" ")}"`, {
        stderr: "",
        exitCode: -1,
        reason: (e as Error).message,
      });
    }
    if (r.code === 0) return r.stdout;
    if (/No such file or directory/.test(r.stderr)) return null;
    throw nftErrorFrom(`Listing "nft ${args.join(" ")}"`, r.stderr, r.code);
  }
}

// ---------------------------------------------------------------------------------------------
// conntrack

/** Which UDP conntrack entries to delete. */
export interface UdpFlowFilter {
  readonly family: Family;
  /** Original destination (the service IP); absent for NodePorts (any local address). */
  readonly origDst?: string;
  readonly origPortDst: number;
  /** Reply source: the endpoint the flow is pinned to; absent to delete every flow to the port. */
  readonly replySrc?: string;
}

/** Deletes conntrack entries (UDP flows pinned to endpoints that are gone). */
export interface ConntrackCleaner {
  /** Returns how many entries were deleted. */
  deleteUdpFlows(filter: UdpFlowFilter): Promise<number>;
}

/** The conntrack command line for a filter (without prefix and binary). */
export function conntrackArgs(filter: UdpFlowFilter): string[] {
  return [
    "-D",
    "-f",
    filter.family === "ip" ? "ipv4" : "ipv6",
    "-p",
    "udp",
    ...(filter.origDst ? ["--orig-dst", filter.origDst] : []),
    "--orig-port-dst",
    String(filter.origPortDst),
    ...(filter.replySrc ? ["--reply-src", filter.replySrc] : []),
  ];
}

/**
 * Runs the real `conntrack -D`.
 *
 * @example
 * ```ts
 * const ct = new ConntrackCommand({ argvPrefix: ["ip", "netns", "exec", "lab-node"] });
 * await ct.deleteUdpFlows({ family: "ip", origDst: "198.19.0.10", origPortDst: 53, replySrc: "198.18.0.11" });
 * ```
 */
export class ConntrackCommand implements ConntrackCleaner {
  readonly #prefix: readonly string[];
  readonly #bin: string;
  readonly #timeoutMs: number;

  constructor(options: CommandOptions = {}) {
    this.#prefix = options.argvPrefix ?? [];
    this.#bin = options.binary ?? "conntrack";
    this.#timeoutMs = options.timeoutMs ?? 10_000;
  }

  async deleteUdpFlows(filter: UdpFlowFilter): Promise<number> {
    const argv = [...this.#prefix, this.#bin, ...conntrackArgs(filter)];
    const r = await runCommand(argv, null, this.#timeoutMs);
    // conntrack exits 1 when nothing matched; the summary line says how many went.
    const m = /(\d+) flow entries have been deleted/.exec(r.stderr);
    if (m) return Number(m[1]);
    throw new Error(
      `Cannot delete UDP conntrack entries with "${argv.join(" ")}" (exit ${r.code}): ${
        r.stderr.trim() || "no output"
      }`,
    );
  }
}
