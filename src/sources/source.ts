/**
 * The seam every source of services plugs into: the Kubernetes API (kube/), the manifest files
 * (manifests/) and standalone mode (standalone/: manifests with VIP allocation and health checks)
 * all write the same typed objects into a {@link ModelStore} and ask for a sync.
 * @module
 */

import type { ModelStore } from "../model/store.ts";

/** What a source can tell about itself, for readiness detail and metrics. */
export interface SourceStatus {
  /** True once the initial state has been loaded completely. */
  readonly synced: boolean;
  /** True while the source is serving its last good state after an error. */
  readonly degraded: boolean;
  /** The last error, quoted for readiness detail; absent when healthy. */
  readonly lastError?: string;
}

/** Where a source writes, and how it asks the daemon to sync. */
export interface SourceSink {
  readonly store: ModelStore;
  /** Asks for a sync soon; cheap, and safe to call after every change. */
  requestSync(): void;
}

/** A producer of services and endpoint sets. Long-running: it never throws after start. */
export interface Source {
  /** Starts the source; resolves once the initial state is in the store; rejects on bad config or stop. */
  start(sink: SourceSink): Promise<void>;
  /** Stops watching; idempotent. */
  stop(): Promise<void>;
  status(): SourceStatus;
  /**
   * SIGHUP: re-reads what the source was configured from, where it can; resolves once applied
   * (with the source's own report, if it has one). Never rejects.
   */
  reload?(): Promise<unknown>;
  /** Extra readiness detail for /readyz (allocation problems, health verdicts). */
  details?(): Record<string, unknown>;
}
