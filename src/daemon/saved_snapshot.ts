/**
 * The last committed snapshot on disk (`<state-dir>/last-snapshot.txt`): written in the background
 * after dataplane commits, read once at start so DNS answers at once after a restart, from what
 * the adopted kernel table routes. The I/O edge of src/model/snapshot_codec.ts.
 *
 * Writes never delay a sync: a commit only records the snapshot; one write at a time runs later,
 * coalesced to the newest snapshot, encoding a few hundred services per event-loop turn (the
 * entries' texts are kept, so a save after a small change encodes only what changed), then
 * replaces the file atomically (temporary file, fsync, rename: a crash leaves the old file or the
 * new one). Cost at 10,000 services: src/daemon/README.md.
 * @module
 */

import type { Snapshot } from "../model/snapshot.ts";
import { decodeSnapshot, encodeSnapshotSteps } from "../model/snapshot_codec.ts";
import { writeFileAtomic } from "../ipam/state_file.ts";
import type { Logger } from "../observe/log.ts";

/** The file's name inside `--state-dir`. */
export const SAVED_SNAPSHOT_FILE = "last-snapshot.txt";

/** The saved snapshot's path in a state directory. */
export function savedSnapshotPath(stateDir: string): string {
  return stateDir.endsWith("/")
    ? `${stateDir}${SAVED_SNAPSHOT_FILE}`
    : `${stateDir}/${SAVED_SNAPSHOT_FILE}`;
}

/** What {@link loadSavedSnapshot} found. */
export type LoadedSnapshot =
  | { readonly status: "loaded"; readonly snapshot: Snapshot; readonly savedAt: number }
  | { readonly status: "missing" }
  /** Unreadable, corrupt or from another version: `problem` names the file and says why. */
  | { readonly status: "ignored"; readonly problem: string };

/**
 * Reads and decodes the saved snapshot of `stateDir`, written by svcgate `version`. Never throws.
 *
 * @example
 * ```ts
 * const saved = await loadSavedSnapshot("/var/lib/svcgate", VERSION);
 * if (saved.status === "ignored") log.warn(saved.problem);
 * ```
 */
export async function loadSavedSnapshot(
  stateDir: string,
  version: string,
): Promise<LoadedSnapshot> {
  const path = savedSnapshotPath(stateDir);
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return { status: "missing" };
    return {
      status: "ignored",
      problem: `Ignoring the saved snapshot ${JSON.stringify(path)}: cannot read it: ${
        (e as Error).message
      }`,
    };
  }
  const r = decodeSnapshot(text, version);
  if (!r.ok) {
    return {
      status: "ignored",
      problem: `Ignoring the saved snapshot ${JSON.stringify(path)}: ${r.error}`,
    };
  }
  return { status: "loaded", snapshot: r.snapshot, savedAt: r.savedAt };
}

/** Options of {@link SnapshotSaver}. */
export interface SnapshotSaverOptions {
  readonly stateDir: string;
  /** The svcgate version written into the file. */
  readonly version: string;
  readonly log: Logger;
  /** Wait this long after a commit before writing, gathering the commits of a burst. Default 200 ms. */
  readonly delayMs?: number;
  /**
   * At least this long between the starts of two writes. Default 5 s: a restart answers only the
   * saved VIPs the kernel still routes, so a file a few seconds old is as safe as a fresh one, and
   * under constant churn at 10,000 services each write costs ~0.4 s of encoding.
   */
  readonly minIntervalMs?: number;
  /** Called after each write with its size and duration (metrics, benchmarks). */
  readonly onWrite?: (bytes: number, seconds: number) => void;
  /** Called when a write fails. */
  readonly onFailure?: () => void;
}

/**
 * Saves committed snapshots in the background, coalesced to the newest.
 *
 * @example
 * ```ts
 * const saver = new SnapshotSaver({ stateDir, version: VERSION, log });
 * saver.save(snapshot); // after the dataplane committed it
 * await saver.flush(); // on stop
 * ```
 */
export class SnapshotSaver {
  readonly #o: SnapshotSaverOptions;
  #pending: Snapshot | null = null;
  /** When the last write started (performance.now()). */
  #lastWriteAt = -Infinity;
  #timer: ReturnType<typeof setTimeout> | null = null;
  #running: Promise<void> | null = null;
  #failedLogged = false;

  constructor(options: SnapshotSaverOptions) {
    this.#o = options;
  }

  /** Records a committed snapshot; the newest one is written soon. Never blocks, never throws. */
  save(snapshot: Snapshot): void {
    this.#pending = snapshot;
    if (this.#running || this.#timer !== null) return;
    const sinceLast = performance.now() - this.#lastWriteAt;
    const wait = Math.max(this.#o.delayMs ?? 200, (this.#o.minIntervalMs ?? 5000) - sinceLast);
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.#start();
    }, wait);
  }

  /** Writes what is pending now, whatever the interval, and waits for every write to end. */
  async flush(): Promise<void> {
    for (;;) {
      if (this.#timer !== null) {
        clearTimeout(this.#timer);
        this.#timer = null;
      }
      if (this.#running) await this.#running;
      else if (this.#pending) this.#start();
      else return;
    }
  }

  #start(): void {
    if (this.#running) return;
    this.#running = this.#drain().finally(() => {
      this.#running = null;
      // A commit during the write waits its turn (the interval), as one at any other time.
      const next = this.#pending;
      if (next && this.#timer === null) this.save(next);
    });
  }

  async #drain(): Promise<void> {
    const snapshot = this.#pending;
    this.#pending = null;
    if (snapshot) {
      this.#lastWriteAt = performance.now();
      await this.#write(snapshot);
    }
  }

  async #write(snapshot: Snapshot): Promise<void> {
    const t0 = performance.now();
    const path = savedSnapshotPath(this.#o.stateDir);
    try {
      // Encoded whole each time: a cache of each entry's text (~8 MB at 10,000 services) kept in
      // a WeakMap grew the heap by gigabytes under churn, its ephemerons surviving until a full
      // collection (kube_daemon_bench: 3.7 GB peak after 300 changes).
      const steps = encodeSnapshotSteps(snapshot, this.#o.version, Date.now());
      let r = steps.next();
      while (!r.done) {
        // A turn between steps: DNS answers on this thread with the default --dns-workers 0.
        await new Promise((res) => setTimeout(res, 0));
        r = steps.next();
      }
      await Deno.mkdir(this.#o.stateDir, { recursive: true });
      await writeFileAtomic(path, r.value, 0o600);
      const seconds = (performance.now() - t0) / 1000;
      this.#o.onWrite?.(r.value.length, seconds);
      this.#o.log.debug("saved the committed snapshot", {
        path,
        services: snapshot.services.size,
        bytes: r.value.length,
        ms: Math.round(seconds * 1000),
      });
      this.#failedLogged = false;
    } catch (e) {
      this.#o.onFailure?.();
      // Once per run of failures: a read-only state directory must not flood the log.
      if (!this.#failedLogged) {
        this.#o.log.warn(
          "cannot save the committed snapshot; a restart will wait for the first sync",
          {
            path,
            error: (e as Error).message,
          },
        );
        this.#failedLogged = true;
      }
    }
  }
}
