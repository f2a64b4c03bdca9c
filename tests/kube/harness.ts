/**
 * Shared set-up of the Kubernetes source tests: a fake API server over TLS with a generated CA
 * and a bearer token, a kubeconfig pointing at it, a model store whose sink commits on every
 * requestSync, and polling helpers.
 * @module
 */

import { FakeApiServer, type FakeApiServerOptions } from "../fake_apiserver/fake_apiserver.ts";
import { writeKubeconfig } from "../fake_apiserver/fixtures.ts";
import { generateTlsMaterial, removeTlsMaterial, type TlsMaterial } from "../fake_apiserver/tls.ts";
import { ModelStore } from "../../src/model/store.ts";
import type { Commit } from "../../src/model/store.ts";
import type { SourceSink } from "../../src/sources/source.ts";
import { createLogger, type Logger, silentLogger } from "../../src/observe/log.ts";

/** The token the fake API server expects. */
export const TOKEN = "svcgate-test-token";

/** A running fake API server and what a client needs to reach it. */
export interface Harness {
  readonly api: FakeApiServer;
  readonly tls: TlsMaterial;
  readonly kubeconfig: string;
  readonly store: ModelStore;
  readonly sink: SourceSink;
  /** Every commit made by the sink, oldest first. */
  readonly commits: Commit[];
  /** Number of requestSync() calls. */
  readonly syncRequests: () => number;
  readonly log: Logger;
  close(): Promise<void>;
}

/**
 * Starts a TLS fake API server with bearer-token auth and writes a kubeconfig for it.
 *
 * @example
 * ```ts
 * const h = await startHarness();
 * try { ... } finally { await h.close(); }
 * ```
 */
export async function startHarness(
  opts: Omit<FakeApiServerOptions, "tls" | "token"> = {},
): Promise<Harness> {
  const tls = await generateTlsMaterial();
  const api = await FakeApiServer.start({ ...opts, tls, token: TOKEN });
  const kubeconfig = await writeKubeconfig(tls.dir, {
    server: api.url,
    caFile: tls.caCertFile,
    token: TOKEN,
  });
  const store = new ModelStore();
  const commits: Commit[] = [];
  let requests = 0;
  const sink: SourceSink = {
    store,
    requestSync() {
      requests++;
      // Commit at once: the tests read snapshots as the daemon's sync loop would publish them.
      const c = store.commit();
      commits.push(c);
    },
  };
  const log = Deno.env.get("SVCGATE_TEST_LOG")
    ? createLogger({ format: "text", level: "debug" })
    : silentLogger;
  return {
    api,
    tls,
    kubeconfig,
    store,
    sink,
    commits,
    syncRequests: () => requests,
    log,
    async close() {
      await api.close();
      await removeTlsMaterial(tls);
    },
  };
}

/**
 * Polls `check` every 10 ms until it returns true; throws with `what` after `timeoutMs`.
 * (A bound on waiting for convergence, not a speed assertion.)
 */
export async function waitFor(
  what: string,
  check: () => boolean,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) {
      throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
    }
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Sleeps. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Backends of a service port in the last snapshot, as "ip:port" sorted. */
export function backendsOf(store: ModelStore, key: string, portIndex = 0): string[] {
  const entry = store.snapshot.services.get(key);
  if (!entry) return [];
  const port = entry.ports[portIndex];
  if (!port) return [];
  return port.backends.map((b) =>
    `${b.family === 6 ? `[${b.address}]` : b.address}:${b.port}${b.ready ? "" : "(not ready)"}`
  ).sort();
}
