/**
 * What the daemon-level benchmarks share (kube_daemon_bench.ts, standalone_bench.ts): flags, the
 * probe child's reader, the daemon's memory and log, metrics text, percentiles, the bundle.
 * @module
 */

import type { Lab } from "../lab/lab.ts";
import { COMPILE_FLAGS } from "../daemon/harness.ts";

/** The probe child both benchmarks run in the node namespace (kube_daemon_probe.ts). */
export const PROBE = new URL("./kube_daemon_probe.ts", import.meta.url).pathname;
/** The daemon's DNS address in the lab. */
export const DNS = "198.18.0.1";
/** The probe service's VIP, whose only endpoint the benchmarks move from pod to pod. */
export const PROBE_VIP = "198.19.200.10";

export const MiB = 2 ** 20;

export function intFlag(name: string, def: number): number {
  const raw = Deno.args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
  if (raw === undefined) return def;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) {
    throw new Error(`Cannot parse --${name} "${raw}": expected a whole number`);
  }
  return n;
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** A probe line. */
export interface Observation {
  readonly kind: "tcp" | "dns";
  readonly value: string;
  readonly at: number;
  readonly rounds: number;
}

/** The probe process's reports, queued per kind. */
export class ProbeReader {
  readonly #queues = { tcp: [] as Observation[], dns: [] as Observation[] };
  #waiter: (() => void) | null = null;
  #ended = false;
  /** Every observation, for the round rate. */
  readonly all: Observation[] = [];

  constructor(child: Deno.ChildProcess) {
    (async () => {
      let buf = "";
      for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
        buf += chunk;
        let nl;
        while ((nl = buf.indexOf("\n")) >= 0) {
          const o = JSON.parse(buf.slice(0, nl)) as Observation;
          buf = buf.slice(nl + 1);
          this.#queues[o.kind].push(o);
          this.all.push(o);
          this.#waiter?.();
        }
      }
      this.#ended = true;
      this.#waiter?.();
    })();
  }

  /** Drops what is queued for a kind; returns it. */
  drain(kind: "tcp" | "dns"): Observation[] {
    return this.#queues[kind].splice(0);
  }

  /**
   * Waits for the next observation of `kind` whose value is `value`; the ones before it are
   * returned as `skipped`. Null on timeout.
   */
  async waitFor(
    kind: "tcp" | "dns",
    value: string,
    timeoutMs: number,
  ): Promise<{ hit: Observation; skipped: Observation[] } | null> {
    const deadline = performance.now() + timeoutMs;
    const skipped: Observation[] = [];
    for (;;) {
      const q = this.#queues[kind];
      while (q.length > 0) {
        const o = q.shift()!;
        if (o.value === value) return { hit: o, skipped };
        skipped.push(o);
      }
      const left = deadline - performance.now();
      if (left <= 0 || this.#ended) {
        q.unshift(...skipped);
        return null;
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.#waiter = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.#waiter = null;
    }
  }
}

/** VmRSS and VmHWM of a process, in bytes. */
export async function memoryOf(pid: number): Promise<{ rss: number; hwm: number; exe: string }> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  const kb = (field: string) =>
    Number(status.match(new RegExp(`^${field}:\\s+(\\d+) kB`, "m"))?.[1]) * 1024;
  const exe = await Deno.readLink(`/proc/${pid}/exe`).catch(() => "?");
  return { rss: kb("VmRSS"), hwm: kb("VmHWM"), exe };
}

/** The daemon's JSON log lines, parsed (non-JSON lines skipped). */
export function parsedLog(log: readonly string[]): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const l of log) {
    if (!l.startsWith("{")) continue;
    try {
      out.push(JSON.parse(l));
    } catch { /* a partial line */ }
  }
  return out;
}

export async function metricsText(lab: Lab): Promise<string> {
  const r = await lab.exec(lab.node.ns, [
    "curl",
    "-s",
    "-m",
    "5",
    "http://127.0.0.1:10256/metrics",
  ]);
  return r.stdout;
}

export function metricValue(text: string, name: string): number {
  const line = text.split("\n").find((l) => l.startsWith(`${name} `));
  return line === undefined ? NaN : Number(line.split(" ").pop());
}

/** `main 80.1 MiB, dns-0 40.2 MiB` from the daemon's svcgate_heap_used_bytes gauges. */
export function heapLine(text: string): string {
  const parts = text.split("\n").flatMap((l) => {
    const m = l.match(/^svcgate_heap_used_bytes\{isolate="([^"]+)"\} (\S+)$/);
    return m ? [`${m[1]} ${(Number(m[2]) / MiB).toFixed(1)} MiB`] : [];
  });
  return parts.length > 0 ? parts.join(", ") : "n/a";
}

export function fmtMs(ms: number): string {
  return Number.isNaN(ms) ? "n/a" : ms < 10 ? `${ms.toFixed(2)} ms` : `${ms.toFixed(1)} ms`;
}

export function summary(
  xs: readonly number[],
): { p50: number; p90: number; p99: number; max: number } {
  const s = [...xs].sort((a, b) => a - b);
  return {
    p50: percentile(s, 50),
    p90: percentile(s, 90),
    p99: percentile(s, 99),
    max: s.length ? s[s.length - 1] : NaN,
  };
}

/**
 * Bundles the daemon as the image ships it (deploy/bundle.ts: minified entry and chunks) into a
 * temporary directory and warms Deno's cache with it, as the image does at build time (Deno's
 * first look at new scripts costs ~100 MB that it keeps). Returns the program to run and the
 * directory to delete.
 */
export async function bundleDaemon(): Promise<{ program: string[]; dir: string }> {
  const dir = await Deno.makeTempDir({ prefix: "svcgate-bench-" });
  const out = `${dir}/svcgate`;
  const root = new URL("../..", import.meta.url).pathname;
  const built = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${root}deploy/bundle.ts`, out],
    stdout: "null",
  }).output();
  if (built.code !== 0) throw new Error(`Cannot bundle the daemon into ${out}`);
  const program = ["run", ...COMPILE_FLAGS, `${out}/svcgate.js`];
  await new Deno.Command(Deno.execPath(), { args: [...program, "--help"], stdout: "null" })
    .output();
  return { program, dir };
}
