/**
 * Watches the kernel's rulesets through an `nft monitor` child and reports changes to svcgate's
 * tables that another process made (an operator's `nft flush`, a firewall reload), so drift is
 * repaired in about a second rather than at the next periodic check. svcgate's own transactions
 * are told apart by the process that committed them.
 * @module
 */

import type { Logger } from "../observe/log.ts";
import { silentLogger } from "../observe/log.ts";
import type { Family } from "./ruleset.ts";
import {
  type DriftScope,
  driftScopes,
  MonitorLineSplitter,
  MonitorReader,
} from "./monitor_events.ts";
import { isThreadOfThisProcess } from "../platform/libc.ts";

/**
 * Whether `tid` is a thread of this process: libc's tgkill where FFI is granted (the shipped
 * flags), else /proc/PID/task, which Deno lets only --allow-all read.
 */
function isOwnThread(tid: number): boolean {
  const viaLibc = isThreadOfThisProcess(tid);
  if (viaLibc !== null) return viaLibc;
  try {
    Deno.statSync(`/proc/${Deno.pid}/task/${tid}`);
    return true;
  } catch {
    return false;
  }
}

/**
 * The processes whose transactions are svcgate's own: this one, its threads and its recent nft
 * children. The kernel names the thread that committed (libnftables runs on the FFI call's
 * thread, not the main one), so a thread of this process counts as this process: taking those
 * for someone else's made every own transaction a scoped repair, ~3 s of CPU at 10,000 services.
 */
export class OwnProcesses {
  readonly #pids: number[] = [Deno.pid];
  /** Thread ids of this process seen in transactions (threads are few and long-lived). */
  readonly #threads = new Set<number>();
  /** Records an nft child; the last 64 are remembered (a transaction names its pid once). */
  add(pid: number): void {
    this.#pids.push(pid);
    if (this.#pids.length > 65) this.#pids.splice(1, 1);
  }
  has(pid: number): boolean {
    if (this.#pids.includes(pid) || this.#threads.has(pid)) return true;
    if (!isOwnThread(pid)) return false;
    this.#threads.add(pid);
    return true;
  }
}

/** Bytes read from the monitor at a time. */
const MONITOR_READ_BYTES = 64 * 1024;

/** What a {@link KernelMonitor} needs. */
export interface KernelMonitorOptions {
  /** The table whose foreign changes matter (both families). */
  readonly table: string;
  readonly own: OwnProcesses;
  readonly log?: Logger;
  /** The monitor command; default `nft monitor`. */
  readonly command?: readonly string[];
}

/**
 * Runs `nft monitor` for as long as it is started; a child that ends is started again with
 * backoff (1 s, doubling to 30 s), never throwing.
 *
 * @example
 * ```ts
 * const monitor = new KernelMonitor({ table: "svcgate", own });
 * monitor.start((scopes) => void dataplane.checkDrift({ scopes }));
 * await monitor.stop();
 * ```
 */
export class KernelMonitor {
  readonly #o: KernelMonitorOptions;
  readonly #log: Logger;
  #child: Deno.ChildProcess | null = null;
  #loop: Promise<void> | null = null;
  #stopped = false;
  #retry: ReturnType<typeof setTimeout> | null = null;
  #wake: (() => void) | null = null;
  #onForeignChange: (scopes: Map<Family, DriftScope>) => void = () => {};

  constructor(options: KernelMonitorOptions) {
    this.#o = options;
    this.#log = options.log ?? silentLogger;
  }

  /**
   * Starts watching; returns at once. `onForeignChange` is called once per foreign transaction
   * that touched the table, with what it touched; it must not throw.
   */
  start(onForeignChange: (scopes: Map<Family, DriftScope>) => void): void {
    this.#onForeignChange = onForeignChange;
    this.#loop ??= this.#run();
  }

  /** Stops the child and waits for the loop to end. */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#retry !== null) clearTimeout(this.#retry);
    this.#wake?.();
    try {
      this.#child?.kill("SIGTERM");
    } catch { /* exited already */ }
    await this.#loop;
  }

  async #run(): Promise<void> {
    let delayMs = 1000;
    while (!this.#stopped) {
      const started = performance.now();
      const reason = await this.#watchOnce();
      if (this.#stopped) return;
      if (performance.now() - started > 60_000) delayMs = 1000;
      this.#log.warn("nft monitor ended; drift is caught by the periodic check until it restarts", {
        reason,
        retryInMs: delayMs,
      });
      await new Promise<void>((r) => {
        this.#wake = r;
        this.#retry = setTimeout(r, delayMs);
      });
      delayMs = Math.min(delayMs * 2, 30_000);
    }
  }

  /** One child's life; resolves with why it ended. */
  async #watchOnce(): Promise<string> {
    const [cmd, ...args] = this.#o.command ?? ["nft", "monitor"];
    let child: Deno.ChildProcess;
    try {
      child = new Deno.Command(cmd, { args, stdin: "null", stdout: "piped", stderr: "piped" })
        .spawn();
    } catch (e) {
      return `cannot start ${[cmd, ...args].join(" ")}: ${(e as Error).message}`;
    }
    this.#child = child;
    const reader = new MonitorReader();
    const splitter = new MonitorLineSplitter();
    const stderr = new Response(child.stderr).text();
    try {
      // One buffer, read into again and again: svcgate's own cold start prints ~15 MB of
      // elements here, and a fresh chunk per read raised the daemon's peak by ~17 MiB.
      const stdout = child.stdout.getReader({ mode: "byob" });
      let buffer = new Uint8Array(MONITOR_READ_BYTES);
      while (true) {
        const { value, done } = await stdout.read(buffer);
        if (done || !value) break;
        for (const line of splitter.push(value)) {
          for (const tx of reader.push(line)) {
            if (this.#o.own.has(tx.pid)) continue;
            const scopes = driftScopes(tx.changes, this.#o.table);
            if (scopes.size > 0) this.#onForeignChange(scopes);
          }
        }
        buffer = new Uint8Array(value.buffer);
      }
    } catch (e) {
      return `reading its output failed: ${(e as Error).message}`;
    }
    const status = await child.status;
    this.#child = null;
    return `exited with code ${status.code}: ${(await stderr).trim() || "(no message)"}`;
  }
}
