/**
 * The manifest source: the embedded default when there is no cluster. It loads manifest files
 * into the store and keeps them live: file watching, a periodic check, and {@link
 * ManifestSource.reload} (which the daemon calls on SIGHUP). A bad edit never takes down what is
 * serving: the last good version of a broken file, or of an object that became invalid, stays.
 * @module
 */

import { type Logger, silentLogger } from "../../observe/log.ts";
import { type Counter, type Gauge, MetricsRegistry } from "../../observe/metrics.ts";
import { formatError, isWarning, type ValidationError } from "../objects/validate.ts";
import type { Source, SourceSink, SourceStatus } from "../source.ts";
import {
  assembleManifests,
  keepLastGood,
  type ManifestFile,
  type ManifestLoad,
  type ManifestState,
  unreadableManifestFile,
} from "./load.ts";
import {
  decodeManifestBytesSliced,
  DEFAULT_MANIFEST_LIMITS,
  type ManifestLimits,
  parseManifestFileSliced,
} from "./parse_file.ts";
import { listManifestFiles, type ManifestFileInfo, readManifestBytes } from "./read.ts";
import { METRICS } from "../../observe/metrics_catalogue.ts";

/** How a {@link ManifestSource} is set up. */
export interface ManifestSourceOptions {
  /** A manifest file, or a folder read recursively. */
  readonly path: string;
  readonly logger?: Logger;
  /** Where the source's metrics go; a private registry when omitted. */
  readonly metrics?: MetricsRegistry;
  /**
   * Applied to every loaded state before it reaches the store: the daemon plugs VIP allocation
   * and health-check overrides in here. It should return the same objects for unchanged input,
   * so the store sees only real differences. If it throws, the store keeps its previous state
   * and the error is reported.
   */
  transform?(state: ManifestState): ManifestState;
  /** Milliseconds between periodic checks of the files; 0 turns them off. Default 2000. */
  readonly checkIntervalMs?: number;
  /** Quiet time after a file event before reloading, in ms. Default 100. */
  readonly debounceMs?: number;
  /** Longest a reload waits while events keep arriving, in ms. Default 1000. */
  readonly maxDelayMs?: number;
  /** Watch the files with Deno.watchFs. Default true. */
  readonly watch?: boolean;
  /** Bounds on each file (`--manifest-max-*`, object limits). */
  readonly limits?: ManifestLimits;
  /** Keep the names of endpoints' pods (`--endpoint-pod-names`). Default false. */
  readonly keepPodNames?: boolean;
}

/** What one reload did. */
export interface ReloadResult {
  /** True when the files differed from the last load and the new state went to the store. */
  readonly changed: boolean;
  /** Every current problem (errors and warnings) across all files. */
  readonly errors: readonly ValidationError[];
}

interface FileRecord {
  readonly info: ManifestFileInfo;
  /** SHA-256 of the bytes; null when the file could not be read. */
  readonly hash: string | null;
  /** Why the file could not be read. */
  readonly readError?: string;
  /** Wall-clock ms when the file was last read. */
  readonly readAt: number;
  /** The serving version: the parse merged with the last good version. */
  readonly file: ManifestFile;
  /**
   * False while the file has never been read and parsed: what it holds is unknown, so the state
   * is partial (a restart with a broken file must not delete that file's services).
   */
  readonly known: boolean;
}

/**
 * Work between two turns of the event loop while files are read and parsed: DNS answers on this
 * thread (../README.md). A step that ends sooner goes on without a turn, since a turn is a timer
 * of at least a millisecond: a turn after every step of every file took 10,000 small files 25 s
 * to load (tests/bench/standalone_bench.ts).
 */
const WORK_BETWEEN_TURNS_MS = 4;
let lastTurnAt = 0;

/** A turn of the event loop between two steps of a parse, once enough work has been done. */
function pause(): Promise<void> {
  if (performance.now() - lastTurnAt < WORK_BETWEEN_TURNS_MS) return Promise.resolve();
  return new Promise((resolve) =>
    setTimeout(() => {
      lastTurnAt = performance.now();
      resolve();
    }, 0)
  );
}

/** A file whose mtime is this close to the moment we read it may change without its mtime moving
 * (coarse file system timestamps), so the periodic check reads it again rather than trust stat. */
const RACY_MS = 2000;

function sameStat(a: ManifestFileInfo, b: ManifestFileInfo): boolean {
  return a.mtimeMs !== null && a.mtimeMs === b.mtimeMs && a.size === b.size && a.ino === b.ino;
}

async function sha256(bytes: Uint8Array): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as BufferSource));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

function problemKey(e: ValidationError): string {
  return `${e.severity ?? "error"} ${formatError(e)}`;
}

/**
 * Problems grouped by file, field path, message and severity, in order of first appearance: a
 * file of 10,000 documents of a kind svcgate does not read is one log line with a count, not
 * 10,000.
 */
export function groupRepeated(
  problems: readonly ValidationError[],
): { first: ValidationError; count: number }[] {
  const groups = new Map<string, { first: ValidationError; count: number }>();
  for (const e of problems) {
    const file = e.where.replace(/#\d+$/, "");
    const key = `${e.severity ?? "error"}\n${file}\n${
      e.path.replace(/^items\[\d+\]/, "items[]")
    }\n${e.message}`;
    const g = groups.get(key);
    if (g) g.count++;
    else groups.set(key, { first: e, count: 1 });
  }
  return [...groups.values()];
}

function parentDir(path: string): string {
  const slash = path.replace(/\/+$/, "").lastIndexOf("/");
  if (slash < 0) return ".";
  return slash === 0 ? "/" : path.slice(0, slash);
}

/**
 * Serves the Services, Endpoints and EndpointSlices of manifest files.
 *
 * @example
 * ```ts
 * const source = new ManifestSource({ path: "deploy/examples", logger });
 * await source.start({ store, requestSync: () => loop.kick() });
 * Deno.addSignalListener("SIGHUP", () => void source.reload());
 * ```
 */
export class ManifestSource implements Source {
  readonly #path: string;
  readonly #log: Logger;
  readonly #transform?: (state: ManifestState) => ManifestState;
  readonly #checkIntervalMs: number;
  readonly #debounceMs: number;
  readonly #maxDelayMs: number;
  readonly #watch: boolean;
  readonly #limits: ManifestLimits;
  readonly #keepPodNames: boolean;
  readonly #reloadErrors: Counter;
  readonly #reloads: Counter;
  readonly #errorsGauge: Gauge;
  readonly #objectsGauge: Gauge;

  #sink?: SourceSink;
  #files = new Map<string, FileRecord>();
  #load?: ManifestLoad;
  #listError?: string;
  #transformError?: string;
  #synced = false;
  #stopped = false;
  #watcher?: Deno.FsWatcher;
  /** Loops draining watchers, awaited by stop() so no watcher outlives the source. */
  #watcherLoops = new Set<Promise<void>>();
  #startingWatcher = false;
  #watchedIno?: number | null;
  #watchError?: string;
  #interval?: ReturnType<typeof setInterval>;
  #debounce?: ReturnType<typeof setTimeout>;
  #firstEventAt?: number;
  #tail: Promise<void> = Promise.resolve();
  #queued?: { force: boolean; promise: Promise<ReloadResult> };

  constructor(options: ManifestSourceOptions) {
    this.#path = options.path;
    this.#log = (options.logger ?? silentLogger).child("manifests");
    if (options.transform) this.#transform = options.transform.bind(options);
    this.#checkIntervalMs = options.checkIntervalMs ?? 2000;
    this.#debounceMs = options.debounceMs ?? 100;
    this.#maxDelayMs = options.maxDelayMs ?? 1000;
    this.#watch = options.watch ?? true;
    this.#limits = options.limits ?? DEFAULT_MANIFEST_LIMITS;
    this.#keepPodNames = options.keepPodNames ?? false;
    const metrics = options.metrics ?? new MetricsRegistry();
    this.#reloadErrors = metrics.of(METRICS.manifestReloadErrors);
    this.#reloads = metrics.of(METRICS.manifestReloads);
    this.#errorsGauge = metrics.of(METRICS.manifestErrors);
    this.#objectsGauge = metrics.of(METRICS.manifestObjects);
  }

  /**
   * Loads the manifests into the store, then starts watching. Rejects when the path cannot be
   * read; invalid objects do not fail the start (they are reported in {@link status}).
   */
  async start(sink: SourceSink): Promise<void> {
    if (this.#sink || this.#stopped) {
      throw new Error(`Cannot start the manifest source for "${this.#path}": already started`);
    }
    this.#sink = sink;
    await this.#enqueue(true);
    if (this.#listError !== undefined) throw new Error(this.#listError);
    this.#synced = true;
    if (this.#watch) {
      await this.#startWatcher();
      // An edit between the first read and the watch would otherwise wait for a periodic check.
      void this.#enqueue(false);
    }
    if (this.#checkIntervalMs > 0) {
      this.#interval = setInterval(() => void this.#periodicCheck(), this.#checkIntervalMs);
    }
  }

  /** Stops watching and checking; waits for a reload in progress. Idempotent. */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#interval !== undefined) clearInterval(this.#interval);
    if (this.#debounce !== undefined) clearTimeout(this.#debounce);
    this.#interval = this.#debounce = undefined;
    this.#closeWatcher();
    await Promise.all(this.#watcherLoops);
    await this.#tail;
  }

  /** Health for readiness detail: degraded while any error is present. */
  status(): SourceStatus {
    const lastError = this.#problemSummary();
    return {
      synced: this.#synced,
      degraded: lastError !== undefined,
      ...(lastError !== undefined ? { lastError } : {}),
    };
  }

  /**
   * Re-reads every file now (the daemon calls this on SIGHUP) and applies the difference.
   * Resolves once the files as they were at the call have been loaded. Never rejects.
   */
  reload(): Promise<ReloadResult> {
    return this.#enqueue(true);
  }

  /**
   * Hands the last loaded state through the transform to the store again, for when something the
   * transform depends on (health checks, allocations) changed while the files did not.
   */
  reapply(): void {
    if (!this.#stopped) this.#apply();
  }

  /** The last loaded state before the transform, with each object's origin (for `ipam pin`). */
  get lastLoad(): ManifestLoad | undefined {
    return this.#load;
  }

  /** Every current problem, errors and warnings, in file order. */
  get problems(): readonly ValidationError[] {
    return this.#load?.errors ?? [];
  }

  // -------------------------------------------------------------------------------------------

  #problemSummary(): string | undefined {
    if (this.#listError !== undefined) return `${this.#listError}; keeping the last good state`;
    if (this.#transformError !== undefined) return this.#transformError;
    const errors = this.problems.filter((e) => !isWarning(e));
    if (errors.length === 0) return undefined;
    let text = formatError(errors[0]);
    if (errors.length > 1) text += ` (and ${errors.length - 1} more)`;
    let kept = 0;
    for (const r of this.#files.values()) kept += r.file.kept.length;
    if (kept > 0) {
      text += `; serving the last good version of ${kept} ${kept === 1 ? "object" : "objects"}`;
    }
    return text;
  }

  #enqueue(force: boolean): Promise<ReloadResult> {
    if (this.#stopped) return Promise.resolve({ changed: false, errors: this.problems });
    if (this.#queued) {
      // Not started yet: it will see every change made until it starts.
      if (force) this.#queued.force = true;
      return this.#queued.promise;
    }
    const entry = { force } as { force: boolean; promise: Promise<ReloadResult> };
    entry.promise = this.#tail.then(() => {
      if (this.#queued === entry) this.#queued = undefined;
      return this.#reloadSafely(entry.force);
    });
    this.#queued = entry;
    this.#tail = entry.promise.then(() => {}, () => {});
    return entry.promise;
  }

  async #reloadSafely(force: boolean): Promise<ReloadResult> {
    try {
      return await this.#reloadOnce(force);
    } catch (e) {
      // Nothing above should throw; if it does, keep serving and say so.
      this.#log.error("manifest reload failed; keeping the last good state", { error: e });
      this.#reloadErrors.inc();
      return { changed: false, errors: this.problems };
    }
  }

  async #reloadOnce(force: boolean): Promise<ReloadResult> {
    let infos: ManifestFileInfo[];
    try {
      infos = await listManifestFiles(this.#path);
    } catch (e) {
      const message = (e as Error).message;
      if (message !== this.#listError) this.#log.error(`${message}; keeping the last good state`);
      this.#listError = message;
      this.#reloadErrors.inc();
      this.#closeWatcher(); // the folder may be replaced; the periodic check watches it again
      return { changed: false, errors: this.problems };
    }
    if (this.#listError !== undefined) {
      this.#log.info("manifests are readable again", { path: this.#path });
      this.#listError = undefined;
    }
    const next = new Map<string, FileRecord>();
    const fresh: ManifestFile[] = [];
    let changed = this.#load === undefined || infos.length !== this.#files.size;
    for (const info of infos) {
      const prev = this.#files.get(info.path);
      if (!prev) changed = true;
      if (
        !force && prev && sameStat(prev.info, info) &&
        prev.readAt - (prev.info.mtimeMs ?? 0) >= RACY_MS
      ) {
        next.set(info.path, prev);
        continue;
      }
      const readAt = Date.now();
      const r = await readManifestBytes(info.path, this.#limits.fileBytes);
      const hash = "error" in r ? null : await sha256(r.bytes);
      const readError = "error" in r ? r.error : undefined;
      if (prev && prev.hash === hash && prev.readError === readError) {
        next.set(info.path, { ...prev, info, readAt });
        continue;
      }
      const text = "error" in r ? r : await decodeManifestBytesSliced(r.bytes, pause);
      // In slices: DNS may answer on this thread (../README.md).
      const parsed = "error" in text
        ? unreadableManifestFile(info.path, text.error)
        : await parseManifestFileSliced(
          { path: info.path, text: text.text },
          this.#limits,
          pause,
          { keepPodNames: this.#keepPodNames },
        );
      const file = keepLastGood(prev?.file, parsed);
      const known = (prev?.known ?? false) || !parsed.broken;
      next.set(info.path, {
        info,
        hash,
        readAt,
        file,
        known,
        ...(readError ? { readError } : {}),
      });
      fresh.push(file);
      changed = true;
    }
    for (const path of this.#files.keys()) {
      if (!next.has(path)) this.#log.info("manifest file removed", { file: path });
    }
    this.#files = next;
    if (!changed) return { changed: false, errors: this.problems };

    const before = new Set(this.problems.map(problemKey));
    const load = assembleManifests([...next.values()].map((r) => r.file));
    this.#load = load;
    const newProblems = load.errors.filter((e) => !before.has(problemKey(e)));
    for (const { first, count } of groupRepeated(newProblems)) {
      const more = count > 1 ? ` (and ${count - 1} more like it in this file)` : "";
      if (isWarning(first)) this.#log.warn(formatError(first) + more);
      else this.#log.error(formatError(first) + more);
    }
    if (
      newProblems.some((e) => !isWarning(e)) ||
      fresh.some((f) => f.errors.some((e) => !isWarning(e)))
    ) {
      this.#reloadErrors.inc();
    }
    const errorCount = load.errors.filter((e) => !isWarning(e)).length;
    this.#errorsGauge.set(errorCount, { severity: "error" });
    this.#errorsGauge.set(load.errors.length - errorCount, { severity: "warning" });
    this.#objectsGauge.set(load.objects.length);
    this.#log.info("manifests loaded", {
      files: next.size,
      services: load.services.length,
      endpointSets: load.endpointSets.length,
      errors: errorCount,
    });
    this.#apply();
    return { changed: true, errors: load.errors };
  }

  #apply(): void {
    const load = this.#load, sink = this.#sink;
    if (!load || !sink) return;
    let partial = false;
    for (const r of this.#files.values()) partial ||= !r.known;
    let state: ManifestState = {
      services: load.services,
      endpointSets: load.endpointSets,
      namespaces: load.namespaces,
      partial,
    };
    if (this.#transform) {
      try {
        state = this.#transform(state);
        if (this.#transformError !== undefined) {
          this.#log.info("manifest state accepted again");
          this.#transformError = undefined;
        }
      } catch (e) {
        const message = `Cannot prepare the manifest state: ${
          e instanceof Error ? e.message : String(e)
        }; keeping the last good state`;
        if (message !== this.#transformError) this.#log.error(message);
        this.#transformError = message;
        this.#reloadErrors.inc();
        return;
      }
    }
    sink.store.replaceAll({
      services: state.services,
      endpointSets: state.endpointSets,
      namespaces: state.namespaces,
      partial,
    });
    this.#reloads.inc();
    sink.requestSync();
  }

  async #periodicCheck(): Promise<void> {
    if (this.#stopped) return;
    if (this.#watch) {
      // A replaced folder keeps no inotify watch: watch it again.
      let ino: number | null | undefined;
      try {
        ino = (await Deno.stat(this.#watchTarget())).ino;
      } catch {
        ino = undefined;
      }
      if (this.#watcher && ino !== this.#watchedIno) this.#closeWatcher();
      if (!this.#watcher && ino !== undefined && !this.#stopped) await this.#startWatcher();
    }
    await this.#enqueue(false);
  }

  #watchTarget(): string {
    // A single file is watched through its folder: editors replace files by renaming.
    return this.#isDirRoot ? this.#path : parentDir(this.#path);
  }

  #isDirRoot = true;

  async #startWatcher(): Promise<void> {
    // Two periodic checks may overlap on a slow disk: only one may create a watcher.
    if (this.#startingWatcher || this.#watcher) return;
    this.#startingWatcher = true;
    try {
      this.#isDirRoot = (await Deno.stat(this.#path)).isDirectory;
      const target = this.#watchTarget();
      this.#watchedIno = (await Deno.stat(target)).ino;
      if (this.#stopped) return;
      const watcher = Deno.watchFs(target, { recursive: this.#isDirRoot });
      this.#watcher = watcher;
      this.#watchError = undefined;
      const loop: Promise<void> = (async () => {
        try {
          for await (const event of watcher) {
            if (event.kind !== "access") this.#onFileEvent();
          }
        } catch (e) {
          this.#log.warn("file watch ended; periodic checks continue", { error: e });
        } finally {
          if (this.#watcher === watcher) this.#watcher = undefined;
        }
      })();
      this.#watcherLoops.add(loop);
      void loop.then(() => this.#watcherLoops.delete(loop));
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e);
      if (message !== this.#watchError) {
        this.#log.warn("cannot watch the manifests; periodic checks continue", {
          path: this.#path,
          error: message,
        });
      }
      this.#watchError = message;
    } finally {
      this.#startingWatcher = false;
    }
  }

  #closeWatcher(): void {
    const w = this.#watcher;
    this.#watcher = undefined;
    if (w) {
      try {
        w.close();
      } catch {
        // already closed
      }
    }
  }

  /** Debounces bursts of events (an editor's save is several), bounded by maxDelayMs. */
  #onFileEvent(): void {
    if (this.#stopped) return;
    const now = Date.now();
    this.#firstEventAt ??= now;
    if (this.#debounce !== undefined) clearTimeout(this.#debounce);
    const delay = Math.max(
      0,
      Math.min(this.#debounceMs, this.#firstEventAt + this.#maxDelayMs - now),
    );
    this.#debounce = setTimeout(() => {
      this.#debounce = this.#firstEventAt = undefined;
      void this.#enqueue(true);
    }, delay);
  }
}
