/**
 * Worker entry of the DNS engine: receives start/publish/stop messages from DnsServer, posts
 * back ports, publish reports, stats deltas and log lines. Keeping DNS in a worker means the
 * daemon's own work (relists, nft syncs) never delays an answer.
 *
 * The same code runs when a bundle re-enters itself as a worker: see {@link runDnsWorker}.
 * @module
 */

import type { ServiceEntry, Snapshot } from "../model/snapshot.ts";
import { DnsEngine, type EngineOptions } from "./engine.ts";

/** Messages DnsServer sends to a worker. */
export type ToWorker =
  | { readonly type: "start"; readonly options: EngineOptions }
  /** Forget every service (a full sync follows). */
  | { readonly type: "reset" }
  /** Services added or changed since the last commit (sent in chunks so no message is huge). */
  | { readonly type: "upsert"; readonly entries: readonly ServiceEntry[] }
  /** Apply removals and namespaces, then answer from the result as snapshot `version`. */
  | {
    readonly type: "commit";
    readonly version: number;
    readonly serial: number;
    readonly removed: readonly string[];
    readonly namespaces: readonly string[];
  }
  | { readonly type: "drain"; readonly token: number }
  | { readonly type: "stop" };

/** Messages a worker sends back. */
export type FromWorker =
  | {
    readonly type: "started";
    readonly udpPort: number;
    readonly tcpPort: number | null;
    readonly udpMode: "ffi" | "node";
  }
  | { readonly type: "failed"; readonly message: string }
  | {
    readonly type: "published";
    readonly version: number;
    readonly records: number;
    readonly answers: number;
    readonly buildSeconds: number;
    /** Services updated in place; -1 for a whole build. */
    readonly changedServices: number;
  }
  | { readonly type: "publishFailed"; readonly version: number; readonly message: string }
  | {
    readonly type: "stats";
    readonly delta: import("./stats.ts").StatsDelta;
    /** The worker isolate's V8 heap in use, bytes (for the memory metrics). */
    readonly heapUsed: number;
    readonly token?: number;
  }
  | {
    readonly type: "log";
    readonly level: "debug" | "info" | "warn" | "error";
    readonly msg: string;
    readonly fields?: Record<string, unknown>;
  }
  | { readonly type: "stopped" };

/** Name given to DNS workers, so a bundle entry can recognise it runs as one. */
export const DNS_WORKER_NAME = "svcgate-dns";

interface WorkerScope {
  postMessage(message: FromWorker): void;
  onmessage: ((e: MessageEvent<ToWorker>) => void) | null;
  close(): void;
}

/**
 * Runs the DNS worker protocol on this worker's global scope. Called at load by this module when
 * it is a worker; a bundled entry point calls it itself when `self.name` is {@link DNS_WORKER_NAME}.
 */
export function runDnsWorker(): void {
  const scope = globalThis as unknown as WorkerScope;
  let engine: DnsEngine | null = null;
  const entries = new Map<string, ServiceEntry>();
  let statsTimer: ReturnType<typeof setInterval> | undefined;
  const post = (m: FromWorker) => scope.postMessage(m);
  const postStats = (running: DnsEngine, token?: number) =>
    post({
      type: "stats",
      delta: running.drainStats(),
      heapUsed: Deno.memoryUsage().heapUsed,
      ...(token === undefined ? {} : { token }),
    });
  scope.onmessage = async (e: MessageEvent<ToWorker>) => {
    const m = e.data;
    switch (m.type) {
      case "start":
        try {
          engine = await DnsEngine.start(
            m.options,
            (level, msg, fields) => post({ type: "log", level, msg, fields }),
          );
          statsTimer = setInterval(() => {
            if (engine) postStats(engine);
          }, 1000);
          post({
            type: "started",
            udpPort: engine.udpPort,
            tcpPort: engine.tcpPort,
            udpMode: engine.udpMode,
          });
        } catch (err) {
          post({ type: "failed", message: (err as Error).message });
        }
        break;
      case "reset":
        entries.clear();
        break;
      case "upsert":
        for (const entry of m.entries) entries.set(entry.key, entry);
        break;
      case "commit": {
        for (const key of m.removed) entries.delete(key);
        if (!engine) break;
        // The engine keeps reading this map while it builds in slices: give it its own copy.
        const snapshot: Snapshot = {
          version: m.version,
          services: new Map(entries),
          namespaces: new Set(m.namespaces),
        };
        try {
          const r = await engine.publish(snapshot, m.serial);
          if (r) post({ type: "published", ...r });
        } catch (err) {
          post({ type: "publishFailed", version: m.version, message: (err as Error).message });
        }
        break;
      }
      case "drain":
        if (engine) postStats(engine, m.token);
        break;
      case "stop":
        clearInterval(statsTimer);
        if (engine) {
          postStats(engine);
          await engine.stop();
        }
        engine = null;
        post({ type: "stopped" });
        break;
    }
  };
}

// Started as a worker from this file's URL: serve at once.
if (
  (globalThis as { name?: string }).name === DNS_WORKER_NAME && "WorkerGlobalScope" in globalThis
) {
  runDnsWorker();
}
