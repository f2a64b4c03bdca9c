/**
 * List-then-watch of one Kubernetes resource through @kubernetes/client-node, without keeping
 * the objects: each object is handed to a {@link ResourceHandler} that keeps what it needs.
 *
 * The loop follows client-go's reflector: a paged list, then a watch from the list's
 * resourceVersion with bookmarks; a watch that ends (server timeout, dropped connection, API
 * server down) resumes from the last resourceVersion seen, without a relist. A watch whose
 * resourceVersion the server cannot serve relists: `410 Gone` (expired, compacted away) and "Too
 * large resource version" (504, a server whose history was reset); see {@link relistReason}.
 * Failures wait with exponential backoff and jitter and are reported, never thrown.
 *
 * client-node's informer (ListWatch) is not used: it caches every object whole, stops for good on
 * an abruptly closed connection, and reports its own stop() as an error.
 * @module
 */

import type { Watch } from "@kubernetes/client-node/dist/watch.js";
import type { Logger } from "../../observe/log.ts";
import type { MetricsRegistry } from "../../observe/metrics.ts";
import { Backoff, type BackoffOptions } from "./backoff.ts";
import { type MetricDeclaration, METRICS } from "../../observe/metrics_catalogue.ts";

/** One page of a list, as the generated client returns it. */
export interface ListPage {
  readonly items: readonly unknown[];
  readonly metadata?: { readonly resourceVersion?: string; readonly _continue?: string };
}

/** Receives one relist: every item, then commit (or nothing, when the list failed). */
export interface ListStage {
  add(obj: unknown): void;
  /** Applies the difference between the listed objects and the handler's current state. */
  commit(): void;
}

/** What a reflector feeds. Implementations must not throw; the reflector guards anyway. */
export interface ResourceHandler {
  upsert(obj: unknown): void;
  remove(obj: unknown): void;
  beginList(): ListStage;
}

/** Settings of one {@link Reflector}. */
export interface ReflectorOptions {
  /** Resource name for logs and metric labels, e.g. "services". */
  readonly resource: string;
  /** Watch path, e.g. "/api/v1/services". */
  readonly path: string;
  /** Lists one page; `signal` aborts it. Throws on HTTP errors (with `code` = status). */
  readonly list: (
    params: { limit?: number; _continue?: string },
    signal: AbortSignal,
  ) => Promise<ListPage>;
  readonly watch: Watch;
  /** Label selector for the watch (the list function applies its own). */
  readonly labelSelector?: string;
  /** Field selector for the watch, e.g. `metadata.name=node-a` (one object). */
  readonly fieldSelector?: string;
  /**
   * The resource may not exist on this API server (a newer API, e.g. ServiceCIDR): a 404 on the
   * list counts as an empty, synced list, with no error reported, and the list is tried again
   * every `absentRetryMs` (default 5 min) instead of watching.
   */
  readonly mayBeAbsent?: boolean;
  readonly absentRetryMs?: number;
  readonly handler: ResourceHandler;
  /** Items per list page (limit). 0 lists everything at once. */
  readonly pageSize: number;
  /** Watch timeoutSeconds; default a random 300–600 s per watch, as client-go. */
  readonly watchTimeoutSeconds?: number;
  /** A watch silent for this long is presumed dead and restarted. Default timeout + 60 s. */
  readonly stallMs?: number;
  /** A list request (one page) is abandoned after this long. Default 60 s. */
  readonly listTimeoutMs?: number;
  readonly backoff?: BackoffOptions;
  readonly log: Logger;
  readonly metrics: MetricsRegistry;
  /** Called once, after the first complete list has been committed. */
  readonly onSynced: () => void;
  /** Called when the health of this reflector changes; `error` is absent when healthy. */
  readonly onHealth: (error?: string) => void;
}

/** The state of a reflector, for status and tests. */
export interface ReflectorState {
  readonly synced: boolean;
  readonly resourceVersion: string;
  readonly lastError?: string;
  readonly lists: number;
  readonly watches: number;
}

interface WatchEnd {
  readonly error?: unknown;
  /** An ERROR event's Status code, when one arrived. */
  readonly statusCode?: number;
  readonly statusMessage?: string;
  /** An ERROR event's Status object as received. */
  readonly status?: unknown;
  readonly events: number;
  readonly connected: boolean;
  readonly stalled: boolean;
}

/** Objects read between two turns of the event loop in a relist: ~2-5 ms when each is parsed. */
const RELIST_STEP = 100;

function pause(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

/** The HTTP status of an error thrown by client-node (generated client or Watch), if any. */
export function httpStatusOf(e: unknown): number | undefined {
  const err = e as { code?: unknown; statusCode?: unknown } | null;
  if (typeof err?.statusCode === "number") return err.statusCode;
  if (typeof err?.code === "number") return err.code;
  return undefined;
}

/** A one-line description of an error from client-node, without its response headers. */
export function describeError(e: unknown): string {
  const status = httpStatusOf(e);
  const err = e as { code?: unknown; message?: unknown; body?: unknown } | null;
  if (status !== undefined) {
    let message = "";
    const body = err?.body;
    if (typeof body === "string") {
      try {
        message = JSON.parse(body)?.message ?? "";
      } catch {
        message = body.slice(0, 200);
      }
    } else if (body && typeof body === "object") {
      message = String((body as { message?: unknown }).message ?? "");
    }
    if (!message && typeof err?.message === "string") message = err.message.split("\n")[0];
    return `HTTP ${status}${message ? `: ${message}` : ""}`;
  }
  const code = typeof err?.code === "string" ? `${err.code}: ` : "";
  const message = typeof err?.message === "string" ? err.message : String(e);
  return `${code}${message}`;
}

/**
 * True when a watch Status says the resourceVersion asked for is newer than the server's: cause
 * ResourceVersionTooLarge, or (API servers before 1.18.6) a Timeout whose cause or message says
 * "Too large resource version". client-go's isTooLargeResourceVersionError.
 */
export function isTooLargeResourceVersion(status: unknown): boolean {
  const s = status as {
    code?: unknown;
    reason?: unknown;
    message?: unknown;
    details?: { causes?: { reason?: unknown; message?: unknown }[] };
  } | null;
  const causes = Array.isArray(s?.details?.causes) ? s.details.causes : [];
  if (causes.some((c) => c?.reason === "ResourceVersionTooLarge")) return true;
  if (s?.reason !== "Timeout" && s?.code !== 504) return false;
  return causes.some((c) => c?.message === "Too large resource version") ||
    (typeof s?.message === "string" && s.message.includes("Too large resource version"));
}

/**
 * Why the end of a watch needs a relist, or null when resuming from our resourceVersion is
 * right. client-go's reflector relists after a watch that ends with 410 Gone (reason Expired or
 * Gone: the resourceVersion was compacted away) or "Too large resource version" (the server's
 * history is behind ours: it was reset, or this server lags); those are the replies that say our
 * resourceVersion cannot be served. client-node's Watch does not read the body of a failed watch
 * request, so an HTTP 504 cannot be told apart from a gateway's timeout: it relists too, which is
 * always correct. (client-go also relists after most other watch errors; svcgate resumes from its
 * resourceVersion there, which the server accepts or answers with one of the replies above.)
 */
export function relistReason(
  end: { error?: unknown; statusCode?: number; status?: unknown },
): "expired" | "too_large" | null {
  if (end.statusCode === 410 || httpStatusOf(end.error) === 410) return "expired";
  if (end.statusCode !== undefined && isTooLargeResourceVersion(end.status)) return "too_large";
  if (end.statusCode === undefined && httpStatusOf(end.error) === 504) return "too_large";
  return null;
}

function reasonOf(e: unknown): string {
  const status = httpStatusOf(e);
  if (status !== undefined) return `http_${status}`;
  const code = (e as { code?: unknown } | null)?.code;
  if (typeof code === "string") return code;
  const name = (e as { name?: unknown } | null)?.name;
  return typeof name === "string" ? name : "error";
}

function rvOf(obj: unknown): string | undefined {
  const rv = (obj as { metadata?: { resourceVersion?: unknown } } | null)?.metadata
    ?.resourceVersion;
  return typeof rv === "string" && rv !== "" ? rv : undefined;
}

/**
 * Lists and watches one resource until stopped.
 *
 * @example
 * ```ts
 * const r = new Reflector({ resource: "services", path: "/api/v1/services", list, watch, handler,
 *   pageSize: 500, log, metrics, onSynced: () => {}, onHealth: () => {} });
 * r.run();
 * await r.stop();
 * ```
 */
export class Reflector {
  readonly #o: ReflectorOptions;
  readonly #backoff: Backoff;
  #rv = "";
  #synced = false;
  #stopped = false;
  #lastError: string | undefined;
  #lists = 0;
  #watches = 0;
  #abort = new AbortController();
  #controller: AbortController | null = null;
  #sleepTimer: ReturnType<typeof setTimeout> | null = null;
  #wake: (() => void) | null = null;
  #done: Promise<void> | null = null;
  /** The last list found the resource absent (404) and mayBeAbsent allows it. */
  #absent = false;

  constructor(opts: ReflectorOptions) {
    this.#o = opts;
    this.#backoff = new Backoff(opts.backoff);
  }

  /** Current state. */
  get state(): ReflectorState {
    return {
      synced: this.#synced,
      resourceVersion: this.#rv,
      lastError: this.#lastError,
      lists: this.#lists,
      watches: this.#watches,
    };
  }

  /** Starts the loop in the background; it ends only with {@link stop}. */
  run(): void {
    if (this.#done) return;
    this.#done = this.#loop().catch((e) => {
      // Unreachable by design; logged so that a bug cannot pass silently.
      this.#o.log.error("reflector loop ended unexpectedly", {
        resource: this.#o.resource,
        error: e,
      });
    });
  }

  /** Stops listing and watching; resolves when the loop has ended. Idempotent. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#abort.abort();
    this.#controller?.abort();
    if (this.#sleepTimer !== null) clearTimeout(this.#sleepTimer);
    this.#wake?.();
    await this.#done;
  }

  async #loop(): Promise<void> {
    let needList = true;
    while (!this.#stopped) {
      if (needList) {
        const ok = await this.#relist();
        if (this.#stopped) return;
        if (!ok) {
          await this.#sleep(this.#backoff.next());
          continue;
        }
        needList = false;
      }
      if (this.#absent) {
        // The API server does not serve this resource: look again now and then (an upgrade).
        await this.#sleep(this.#o.absentRetryMs ?? 300_000);
        needList = true;
        continue;
      }
      const started = performance.now();
      const end = await this.#watchOnce();
      if (this.#stopped) return;
      const { resource } = this.#o;
      const relist = relistReason(end);
      if (relist !== null) {
        // The server cannot serve the resourceVersion we hold (compacted away, or newer than its
        // history): only a relist can catch up.
        this.#o.log.info(
          relist === "expired"
            ? "watch expired, relisting"
            : "resourceVersion too large, relisting",
          {
            resource,
            resourceVersion: this.#rv,
            message: end.statusMessage ?? describeError(end.error),
          },
        );
        this.#count(METRICS.kubeRelists, { reason: relist });
        needList = true;
        continue;
      }
      if (end.error !== undefined || end.statusCode !== undefined || end.stalled) {
        const text = end.stalled
          ? "watch stalled: no event or bookmark in time"
          : end.statusCode !== undefined
          ? `watch ERROR event ${end.statusCode}: ${end.statusMessage ?? ""}`
          : `watch: ${describeError(end.error)}`;
        const reason = end.stalled
          ? "stalled"
          : end.statusCode !== undefined
          ? `status_${end.statusCode}`
          : reasonOf(end.error);
        this.#count(METRICS.kubeWatchFailures, {
          reason,
        });
        this.#fail(text);
        // A connection that carried events was healthy: resume at once, from our resourceVersion.
        if (end.connected && end.events > 0) this.#backoff.reset();
        await this.#sleep(end.connected && end.events > 0 ? 0 : this.#backoff.next());
        continue;
      }
      // A clean end (server timeout): resume from the last resourceVersion. Guard against a
      // server that closes every watch at once with nothing in it.
      if (end.events === 0 && performance.now() - started < 1000) {
        await this.#sleep(this.#backoff.next());
      } else {
        this.#backoff.reset();
      }
    }
  }

  #count(
    counter: MetricDeclaration & { type: "counter" },
    labels: Record<string, string> = {},
  ): void {
    this.#o.metrics.of(counter).inc({ resource: this.#o.resource, ...labels });
  }

  #fail(text: string): void {
    const changed = this.#lastError !== text;
    this.#lastError = text;
    if (changed) {
      this.#o.log.warn("Kubernetes API request failed", {
        resource: this.#o.resource,
        error: text,
      });
    }
    this.#o.onHealth(text);
  }

  #healthy(): void {
    if (this.#lastError !== undefined) {
      this.#o.log.info("Kubernetes API reachable again", { resource: this.#o.resource });
    }
    this.#lastError = undefined;
    this.#o.onHealth(undefined);
  }

  /** Lists every page into a stage and commits it; false on failure (already reported). */
  async #relist(): Promise<boolean> {
    const { resource, log, metrics } = this.#o;
    let pageSize = this.#o.pageSize;
    let expiredContinues = 0;
    const started = performance.now();
    for (;;) {
      const stage = this.#o.handler.beginList();
      let token: string | undefined;
      let rv = "";
      let items = 0;
      try {
        do {
          this.#lists++;
          this.#count(METRICS.kubeListRequests);
          const signal = AbortSignal.any([
            this.#abort.signal,
            AbortSignal.timeout(this.#o.listTimeoutMs ?? 60_000),
          ]);
          const page = await this.#o.list(
            { limit: pageSize > 0 ? pageSize : undefined, _continue: token },
            signal,
          );
          if (this.#stopped) return false;
          for (const item of page.items) {
            stage.add(item);
            // A relist reads 10,000s of objects: give the event loop (DNS answers on it) a turn
            // every few ms rather than once per page. Not in the first list: nothing is served
            // yet, and pausing there kept pages alive longer (+20 MiB peak at 10,000 services).
            if (++items % RELIST_STEP === 0 && this.#synced) await pause();
          }
          if (this.#stopped) return false;
          // Every page carries the resourceVersion of the consistent snapshot being paged.
          rv = page.metadata?.resourceVersion ?? rv;
          token = page.metadata?._continue || undefined;
        } while (token);
      } catch (e) {
        if (this.#stopped) return false;
        if (token && httpStatusOf(e) === 410) {
          // The continue token outlived the server's snapshot: start the list over; after two
          // such failures list in one request, which cannot expire.
          expiredContinues++;
          this.#count(METRICS.kubeRelists, {
            reason: "continue_expired",
          });
          log.info("list continue token expired, listing again", { resource, expiredContinues });
          if (expiredContinues >= 2) pageSize = 0;
          continue;
        }
        if (this.#o.mayBeAbsent && httpStatusOf(e) === 404) {
          if (!this.#absent) {
            log.info("resource not served by this API server; ignored", { resource });
          }
          this.#absent = true;
          this.#guard("commit", () => stage.commit());
          this.#healthy();
          if (!this.#synced) {
            this.#synced = true;
            this.#guard("onSynced", () => this.#o.onSynced());
          }
          return true;
        }
        this.#count(METRICS.kubeListFailures);
        this.#fail(`list: ${describeError(e)}`);
        return false;
      }
      this.#absent = false;
      this.#guard("commit", () => stage.commit());
      this.#rv = rv;
      const seconds = (performance.now() - started) / 1000;
      metrics.of(METRICS.kubeListDuration)
        .observe(seconds, { resource });
      log.info("listed", { resource, items, resourceVersion: rv, seconds: +seconds.toFixed(3) });
      this.#healthy();
      if (!this.#synced) {
        this.#synced = true;
        this.#guard("onSynced", () => this.#o.onSynced());
      }
      return true;
    }
  }

  #guard(what: string, fn: () => void): void {
    try {
      fn();
    } catch (e) {
      // Handlers must not throw; if one does, the loop goes on and the bug is visible.
      this.#count(METRICS.kubeHandlerErrors);
      this.#o.log.error("handler threw", { resource: this.#o.resource, what, error: e });
    }
  }

  /** One watch request, from the current resourceVersion, until it ends. */
  async #watchOnce(): Promise<WatchEnd> {
    const { resource, path, watch } = this.#o;
    const timeoutSeconds = this.#o.watchTimeoutSeconds ??
      Math.floor(300 + Math.random() * 300);
    const stallMs = this.#o.stallMs ?? (timeoutSeconds + 60) * 1000;
    let events = 0;
    let statusCode: number | undefined;
    let statusMessage: string | undefined;
    let statusObject: unknown;
    let ended = false;
    let stalled = false;
    let lastActivity = performance.now();
    const { promise, resolve } = Promise.withResolvers<unknown>();
    const eventsCounter = this.#o.metrics.of(METRICS.kubeWatchEvents);
    this.#watches++;
    this.#count(METRICS.kubeWatchRequests);
    const onEvent = (type: string, obj: unknown) => {
      if (ended) return;
      lastActivity = performance.now();
      events++;
      eventsCounter.inc({ resource, type });
      if (type === "ERROR") {
        const s = obj as { code?: unknown; message?: unknown } | null;
        statusCode = typeof s?.code === "number" ? s.code : 500;
        statusMessage = typeof s?.message === "string" ? s.message : JSON.stringify(obj);
        statusObject = obj;
        return;
      }
      // client-node swallows exceptions thrown here, so guard ourselves.
      this.#guard(type, () => {
        if (type === "ADDED" || type === "MODIFIED") this.#o.handler.upsert(obj);
        else if (type === "DELETED") this.#o.handler.remove(obj);
      });
      const rv = rvOf(obj);
      if (rv !== undefined) this.#rv = rv;
    };
    const onDone = (err: unknown) => {
      ended = true;
      resolve(err ?? undefined);
    };
    let controller: AbortController;
    try {
      controller = await watch.watch(
        path,
        {
          resourceVersion: this.#rv,
          allowWatchBookmarks: true,
          timeoutSeconds,
          labelSelector: this.#o.labelSelector,
          fieldSelector: this.#o.fieldSelector,
        },
        onEvent,
        onDone,
      );
    } catch (e) {
      // Thrown before any request (no current cluster): same treatment as a failed request.
      return { error: e, events, connected: false, stalled };
    }
    const connected = !ended;
    if (connected) {
      this.#controller = controller;
      this.#healthy();
      if (this.#stopped) controller.abort();
    }
    const watchdog = setInterval(() => {
      if (!ended && performance.now() - lastActivity > stallMs) {
        stalled = true;
        controller.abort();
      }
    }, Math.min(10_000, Math.max(50, stallMs / 4)));
    const error = await promise;
    clearInterval(watchdog);
    this.#controller = null;
    return { error, statusCode, statusMessage, status: statusObject, events, connected, stalled };
  }

  async #sleep(ms: number): Promise<void> {
    if (this.#stopped || ms <= 0) return;
    await new Promise<void>((resolve) => {
      this.#wake = resolve;
      this.#sleepTimer = setTimeout(resolve, ms);
    });
    this.#sleepTimer = null;
    this.#wake = null;
  }
}
