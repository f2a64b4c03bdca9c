/**
 * The client side of the Kubernetes benchmarks, run as its own process so that its RSS is the
 * source's and the model's alone (the fake API server lives in the parent).
 *
 * It starts a {@link KubeSource} into a {@link ModelStore}, with a small sync loop like the
 * daemon's: requestSync() schedules a commit; each commit is handed to an {@link ApplyStage}
 * (none by default: "applied" means committed to a snapshot; the daemon's nft apply and DNS
 * publication plug in here), then reported on stdout as one JSON line per event:
 *
 * - `{"event":"synced","ms":…,"services":…,"endpoints":…,"rss":…,"heapUsed":…}`
 * - `{"event":"settled","rss":…,"heapUsed":…}` (after a GC, when run with --expose-gc)
 * - `{"event":"applied","at":<epoch ms>,"keys":[…],"commitMs":…}` for every later commit with
 *   changes (commitMs: the time ModelStore.commit took)
 *
 * Usage: `deno run --allow-env --allow-read --allow-net [--v8-flags=--expose-gc]
 *   tests/bench/kube_probe.ts KUBECONFIG [PAGE_SIZE] [raw|typed]`
 * @module
 */

import { KubeSource } from "../../src/sources/kube/kube_source.ts";
import { type Commit, ModelStore } from "../../src/model/store.ts";

/** What happens to a commit before it counts as applied (nft apply, DNS publish...). */
export type ApplyStage = (commit: Commit) => Promise<void>;

/** Options of {@link runProbe}. */
export interface ProbeOptions {
  readonly kubeconfig: string;
  readonly pageSize?: number;
  /** How lists are read (see KubeSourceOptions.lists). */
  readonly lists?: "raw" | "typed";
  readonly applyStage?: ApplyStage;
  /** Receives each report line (default: stdout). */
  readonly report?: (line: Record<string, unknown>) => void;
}

/** Wall-clock milliseconds with sub-millisecond precision, comparable across processes. */
export function epochMs(): number {
  return performance.timeOrigin + performance.now();
}

function countEndpoints(store: ModelStore): number {
  let n = 0;
  for (const e of store.snapshot.services.values()) n += e.endpoints.length;
  return n;
}

/**
 * Runs until the process is killed.
 *
 * @example
 * ```ts
 * await runProbe({ kubeconfig: "/tmp/kubeconfig", applyStage: async (c) => await nft.apply(c) });
 * ```
 */
export async function runProbe(opts: ProbeOptions): Promise<never> {
  const encoder = new TextEncoder();
  const report = opts.report ??
    ((line) => Deno.stdout.writeSync(encoder.encode(JSON.stringify(line) + "\n")));
  const store = new ModelStore();
  const apply = opts.applyStage ?? (() => Promise.resolve());
  let scheduled = false, running = false, initial = true;
  const loop = async () => {
    if (running) return;
    running = true;
    try {
      while (scheduled) {
        scheduled = false;
        const c0 = performance.now();
        const commit = store.commit();
        const commitMs = performance.now() - c0;
        await apply(commit);
        if (initial) continue;
        const { added, removed, changed } = commit.changes;
        const keys = [...added, ...removed, ...changed];
        if (keys.length > 0) report({ event: "applied", at: epochMs(), keys, commitMs });
      }
    } finally {
      running = false;
    }
  };
  const source = new KubeSource({
    kubeconfigPath: opts.kubeconfig,
    useEndpoints: false,
    syncTimeoutMs: 120_000,
    pageSize: opts.pageSize,
    lists: opts.lists,
  });
  const t0 = performance.now();
  await source.start({
    store,
    requestSync() {
      scheduled = true;
      queueMicrotask(loop);
    },
  });
  // The first commit after sync builds the whole snapshot: part of the initial sync.
  while (scheduled || running) await new Promise((r) => setTimeout(r, 1));
  const ms = performance.now() - t0;
  initial = false;
  const mem = Deno.memoryUsage();
  report({
    event: "synced",
    ms: Math.round(ms),
    services: store.snapshot.services.size,
    endpoints: countEndpoints(store),
    namespaces: store.snapshot.namespaces.size,
    rss: mem.rss,
    heapUsed: mem.heapUsed,
  });
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc) {
    await new Promise((r) => setTimeout(r, 500));
    gc();
    const after = Deno.memoryUsage();
    report({ event: "settled", rss: after.rss, heapUsed: after.heapUsed });
  }
  // Serve until killed.
  return await new Promise<never>(() => {});
}

if (import.meta.main) {
  const [kubeconfig, pageSize, lists] = Deno.args;
  if (!kubeconfig || (lists !== undefined && lists !== "raw" && lists !== "typed")) {
    console.error("usage: kube_probe.ts KUBECONFIG [PAGE_SIZE] [raw|typed]");
    Deno.exit(2);
  }
  await runProbe({
    kubeconfig,
    pageSize: pageSize ? Number(pageSize) : undefined,
    lists: lists as "raw" | "typed" | undefined,
  });
}
