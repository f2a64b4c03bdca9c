/**
 * The DNS worker protocol: the messages DnsServer and a worker exchange (start, services in
 * chunks, commit, drain, stop; ports, publish reports, stats deltas and log lines back), and the
 * worker's side of it, {@link runDnsWorker}, which worker_main.ts (the worker's entry module)
 * runs. Keeping DNS in a worker means the daemon's own work (relists, nft syncs) never delays
 * an answer.
 * @module
 */

import type { Cidr } from "../../model/ip.ts";
import type { ServiceEntry, Snapshot } from "../../model/snapshot.ts";
import type { Upstream } from "./upstream.ts";
import { DnsEngine, type EngineOptions } from "./engine.ts";
import { EntryPool, slimEntry } from "../zone/slim_entry.ts";
import { COREDNS_RECORDS, type RecordOptions, recordOptions } from "../zone/zone.ts";

/** Messages DnsServer sends to a worker. */
export type ToWorker =
  | {
    readonly type: "start";
    readonly options: EngineOptions;
    /**
     * The services sent before start are a snapshot saved by an earlier process: build its zone
     * before the sockets open and answer from it (provisionally) at once (issue 15).
     */
    readonly initial?: { readonly serial: number; readonly namespaces: readonly string[] };
  }
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
    /** A snapshot saved by an earlier process: SERVFAIL instead of NXDOMAIN (engine.ts). */
    readonly provisional?: boolean;
  }
  /** This node's pods (IP -> namespace), replacing the last list. */
  | { readonly type: "pods"; readonly pods: readonly (readonly [string, string])[] }
  | { readonly type: "drain"; readonly token: number }
  /** Who may recurse, replacing the last list (the node's addresses changed). */
  | { readonly type: "allow"; readonly cidrs: readonly Cidr[] }
  /** The global upstreams, replacing the last list (the node's resolv.conf changed). */
  | { readonly type: "upstreams"; readonly upstreams: readonly Upstream[] }
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

/** Name given to DNS workers (it shows in their error messages and thread names). */
export const DNS_WORKER_NAME = "svcgate-dns";

interface WorkerScope {
  postMessage(message: FromWorker): void;
  onmessage: ((e: MessageEvent<ToWorker>) => void) | null;
  close(): void;
}

/** Runs the DNS worker protocol on this worker's global scope (worker_main.ts calls it). */
export function runDnsWorker(): void {
  const scope = globalThis as unknown as WorkerScope;
  let engine: DnsEngine | null = null;
  /**
   * The services as last sent. A publish reads the map it was given until it resolves (a whole
   * build runs over many event-loop turns), so while one may still read `entries`, the next
   * change copies the map first; otherwise a commit costs only the changed services.
   */
  let entries = new Map<string, ServiceEntry>();
  let readers = 0;
  const editable = (): Map<string, ServiceEntry> => {
    if (readers > 0) {
      entries = new Map(entries);
      readers = 0;
    }
    return entries;
  };
  const pool = new EntryPool();
  /** The zone's flavour, from the start options: what entries keep. */
  let records: RecordOptions = COREDNS_RECORDS;
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
        records = recordOptions(m.options.answers ?? {});
        try {
          const services = entries;
          readers++;
          engine = await DnsEngine.start(
            m.options,
            (level, msg, fields) => post({ type: "log", level, msg, fields }),
            m.initial
              ? {
                snapshot: { version: 0, services, namespaces: new Set(m.initial.namespaces) },
                serial: m.initial.serial,
              }
              : undefined,
          ).finally(() => {
            if (entries === services) readers--;
          });
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
        entries = new Map();
        readers = 0;
        break;
      case "upsert": {
        const services = editable();
        // Each entry arrives as its own copy: share what it repeats with the ones held.
        for (const entry of m.entries) services.set(entry.key, slimEntry(entry, pool, records));
        break;
      }
      case "commit": {
        if (m.removed.length > 0) {
          const services = editable();
          for (const key of m.removed) services.delete(key);
        }
        if (!engine) break;
        const services = entries;
        const snapshot: Snapshot = {
          version: m.version,
          services,
          namespaces: new Set(m.namespaces),
        };
        readers++;
        try {
          const r = await engine.publish(snapshot, m.serial, m.provisional ?? false);
          if (r) post({ type: "published", ...r });
        } catch (err) {
          post({ type: "publishFailed", version: m.version, message: (err as Error).message });
        } finally {
          // After a copy `entries` is another map, with no readers yet; this one is not written.
          if (entries === services) readers--;
        }
        break;
      }
      case "pods":
        engine?.setNodePods(new Map(m.pods));
        break;
      case "drain":
        if (engine) postStats(engine, m.token);
        break;
      case "allow":
        engine?.setAllowRecursion(m.cidrs);
        break;
      case "upstreams":
        engine?.setUpstreams(m.upstreams);
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
