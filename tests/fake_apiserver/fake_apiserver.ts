/**
 * A Kubernetes API server for tests that speaks the real list/watch protocol over HTTPS (or
 * plain HTTP): JSON lists carrying metadata.resourceVersion from one global, monotonically
 * increasing counter (as etcd's revision); `?watch=true` streams of ADDED, MODIFIED, DELETED and
 * BOOKMARK events, one JSON object per line; a bounded event history, so that watches and
 * continue tokens older than it get `410 Gone` (reason Expired); watches closed after
 * timeoutSeconds; paging with limit/continue over a consistent snapshot; label and field
 * selectors (Pods: spec.nodeName, status.phase and status.podIP too, as the API server's pod
 * field labels); bearer-token auth; after {@link FakeApiServer.resetHistory}, "Too large
 * resource version" (504, cause ResourceVersionTooLarge) for watches from a resourceVersion it
 * never reached.
 *
 * Tests drive it through in-process methods: create/update/delete objects, compact the history,
 * cut every watch stream abruptly, stop and start the listener on the same port, and count
 * list and watch requests.
 *
 * @example
 * ```ts
 * const tls = await generateTlsMaterial();
 * const api = await FakeApiServer.start({ tls, token: "secret" });
 * api.apply("services", makeService("default", "web", "198.19.0.10"));
 * // ... point @kubernetes/client-node at api.url with the CA and token ...
 * await api.close();
 * ```
 * @module
 */

import { type Matcher, parseFieldSelector, parseLabelSelector } from "./selectors.ts";
import type { TlsMaterial } from "./tls.ts";

/** The resources the fake serves. */
export type ResourceName =
  | "services"
  | "endpointslices"
  | "endpoints"
  | "namespaces"
  | "nodes"
  | "servicecidrs"
  | "pods";

/** A Kubernetes object as JSON. */
// deno-lint-ignore no-explicit-any
export type KubeObject = Record<string, any>;

interface ResourceDef {
  readonly prefix: string;
  readonly namespaced: boolean;
  readonly kind: string;
  readonly apiVersion: string;
}

const RESOURCES: Record<ResourceName, ResourceDef> = {
  services: { prefix: "/api/v1", namespaced: true, kind: "Service", apiVersion: "v1" },
  endpoints: { prefix: "/api/v1", namespaced: true, kind: "Endpoints", apiVersion: "v1" },
  endpointslices: {
    prefix: "/apis/discovery.k8s.io/v1",
    namespaced: true,
    kind: "EndpointSlice",
    apiVersion: "discovery.k8s.io/v1",
  },
  namespaces: { prefix: "/api/v1", namespaced: false, kind: "Namespace", apiVersion: "v1" },
  nodes: { prefix: "/api/v1", namespaced: false, kind: "Node", apiVersion: "v1" },
  servicecidrs: {
    prefix: "/apis/networking.k8s.io/v1",
    namespaced: false,
    kind: "ServiceCIDR",
    apiVersion: "networking.k8s.io/v1",
  },
  pods: { prefix: "/api/v1", namespaced: true, kind: "Pod", apiVersion: "v1" },
};

const FIELDS = ["metadata.name", "metadata.namespace"];
/** The field labels a resource supports beyond the metadata ones (the API server's, in part). */
const EXTRA_FIELDS: Partial<Record<ResourceName, Record<string, (obj: KubeObject) => string>>> = {
  pods: {
    "spec.nodeName": (o) => o.spec?.nodeName ?? "",
    "status.phase": (o) => o.status?.phase ?? "",
    "status.podIP": (o) => o.status?.podIP ?? "",
  },
};

/** Options of {@link FakeApiServer.start}. */
export interface FakeApiServerOptions {
  /** Serve HTTPS with this material; plain HTTP when absent. */
  readonly tls?: TlsMaterial;
  /** Bearer token every request must carry; no auth when absent. */
  readonly token?: string;
  /** Port to listen on; 0 (default) picks a free one, kept across stop()/start(). */
  readonly port?: number;
  readonly hostname?: string;
  /** Events kept for watch resumption and continue tokens; older ones answer 410. Default 100k. */
  readonly historyLimit?: number;
  /** Interval of BOOKMARK events on watches that allow them. Default 60 s. */
  readonly bookmarkIntervalMs?: number;
  /** Upper bound on a watch's life, whatever timeoutSeconds asks. Default 1800 s. */
  readonly maxWatchSeconds?: number;
  /** Starting resourceVersion. Default 1000. */
  readonly initialResourceVersion?: number;
  /**
   * How long a watch from a resourceVersion newer than the server's waits for it to appear before
   * "Too large resource version" (the watch cache waits 3 s). Default 3000 ms.
   */
  readonly tooLargeWaitMs?: number;
  /** Resources this server does not serve (404), as an API server older than them. */
  readonly absent?: readonly ResourceName[];
}

/**
 * How the server answers a watch from a resourceVersion it has not reached: kube-apiserver's
 * watch cache sends 200 and one ERROR event; other paths answer the request with HTTP 504. Both
 * carry the same Status (504, reason Timeout, cause ResourceVersionTooLarge).
 */
export type TooLargeReply = "error-event" | "http";

interface Stored {
  readonly obj: KubeObject;
  readonly json: string;
}

interface HistoryEvent {
  readonly rv: number;
  readonly resource: ResourceName;
  readonly key: string;
  readonly type: "ADDED" | "MODIFIED" | "DELETED";
  /** State after the event; for DELETED, the last state with the deletion's resourceVersion. */
  readonly cur: Stored;
  /** State before the event (absent for ADDED). */
  readonly prev?: Stored;
}

interface Filter {
  readonly namespace?: string;
  readonly labels?: Matcher;
  readonly fields?: Matcher;
}

interface Watcher {
  readonly resource: ResourceName;
  readonly filter: Filter;
  readonly bookmarks: boolean;
  readonly controller: ReadableStreamDefaultController<Uint8Array>;
  closed: boolean;
  timers: ReturnType<typeof setTimeout>[];
}

/** Counts of requests, per resource, since start or {@link FakeApiServer.resetCounts}. */
export interface RequestCounts {
  list: Record<ResourceName, number>;
  watch: Record<ResourceName, number>;
  get: Record<ResourceName, number>;
  unauthorized: number;
}

/** A request as the hook {@link FakeApiServer.onRequest} sees it, before it is served. */
export interface RequestInfo {
  readonly resource: ResourceName;
  readonly verb: "list" | "watch" | "get";
  readonly params: URLSearchParams;
}

/** One watch request as received, for assertions on resumption. */
export interface WatchRecord {
  readonly resource: ResourceName;
  readonly resourceVersion: string;
  readonly allowWatchBookmarks: boolean;
  readonly timeoutSeconds?: number;
}

function zeroCounts(): Record<ResourceName, number> {
  return {
    services: 0,
    endpointslices: 0,
    endpoints: 0,
    namespaces: 0,
    nodes: 0,
    servicecidrs: 0,
    pods: 0,
  };
}

const encoder = new TextEncoder();

function keyOf(def: ResourceDef, obj: KubeObject): string {
  const name = obj?.metadata?.name;
  if (typeof name !== "string" || name === "") {
    throw new Error(`Cannot store ${def.kind}: metadata.name is missing`);
  }
  if (!def.namespaced) return name;
  const ns = obj.metadata.namespace;
  if (typeof ns !== "string" || ns === "") {
    throw new Error(`Cannot store ${def.kind} "${name}": metadata.namespace is missing`);
  }
  return `${ns}/${name}`;
}

function status(code: number, reason: string, message: string): KubeObject {
  return {
    kind: "Status",
    apiVersion: "v1",
    metadata: {},
    status: "Failure",
    message,
    reason,
    code,
  };
}

/** kube-apiserver's "Too large resource version" Status (storage.NewTooLargeResourceVersionError). */
export function tooLargeStatus(requested: number, current: number): KubeObject {
  return {
    ...status(
      504,
      "Timeout",
      `Timeout: Too large resource version: ${requested}, current: ${current}`,
    ),
    details: {
      causes: [{ reason: "ResourceVersionTooLarge", message: "Too large resource version" }],
      retryAfterSeconds: 1,
    },
  };
}

function jsonResponse(code: number, body: KubeObject | string): Response {
  return new Response(typeof body === "string" ? body : JSON.stringify(body), {
    status: code,
    headers: { "content-type": "application/json" },
  });
}

function encodeContinue(rv: number, start: string): string {
  return btoa(JSON.stringify({ v: "meta.k8s.io/v1", rv, start }));
}

function decodeContinue(token: string): { rv: number; start: string } | null {
  try {
    const v = JSON.parse(atob(token));
    if (v?.v !== "meta.k8s.io/v1" || typeof v.rv !== "number" || typeof v.start !== "string") {
      return null;
    }
    return { rv: v.rv, start: v.start };
  } catch {
    return null;
  }
}

/** The fake API server. Create with {@link FakeApiServer.start}. */
export class FakeApiServer {
  readonly #opts: FakeApiServerOptions;
  readonly #objects = new Map<ResourceName, Map<string, Stored>>();
  #history: HistoryEvent[] = [];
  #rv: number;
  /** Every event with rv > this is in #history. */
  #compactedRv: number;
  #watchers = new Set<Watcher>();
  #server: Deno.HttpServer<Deno.NetAddr> | null = null;
  #port: number;
  #counts: RequestCounts = {
    list: zeroCounts(),
    watch: zeroCounts(),
    get: zeroCounts(),
    unauthorized: 0,
  };
  #watchLog: WatchRecord[] = [];
  #failures = new Map<ResourceName, { count: number; code: number }>();
  #tooLargeReply: TooLargeReply = "error-event";
  /**
   * Called before each authorised list, watch or get is served; tests use it to act between
   * pages (compact the history so that a continue token expires) or to observe requests.
   */
  onRequest?: (info: RequestInfo) => void;

  private constructor(opts: FakeApiServerOptions) {
    this.#opts = opts;
    this.#rv = opts.initialResourceVersion ?? 1000;
    this.#compactedRv = this.#rv;
    this.#port = opts.port ?? 0;
    for (const r of Object.keys(RESOURCES) as ResourceName[]) this.#objects.set(r, new Map());
  }

  /** Starts a server and resolves once it listens. */
  static async start(opts: FakeApiServerOptions = {}): Promise<FakeApiServer> {
    const s = new FakeApiServer(opts);
    await s.start();
    return s;
  }

  /** `https://127.0.0.1:PORT` (or http). */
  get url(): string {
    return `${this.#opts.tls ? "https" : "http"}://${
      this.#opts.hostname ?? "127.0.0.1"
    }:${this.#port}`;
  }

  /** The listening port (stable across stop/start). */
  get port(): number {
    return this.#port;
  }

  /** The current global resourceVersion. */
  get resourceVersion(): number {
    return this.#rv;
  }

  /** True while the listener is up. */
  get running(): boolean {
    return this.#server !== null;
  }

  /** Request counts since start or the last reset. */
  get counts(): RequestCounts {
    return structuredClone(this.#counts);
  }

  /** Watch requests as received, oldest first. */
  get watchLog(): readonly WatchRecord[] {
    return [...this.#watchLog];
  }

  /** Resets request counts and the watch log. */
  resetCounts(): void {
    this.#counts = { list: zeroCounts(), watch: zeroCounts(), get: zeroCounts(), unauthorized: 0 };
    this.#watchLog = [];
  }

  /** Number of open watch streams, optionally of one resource. */
  openWatches(resource?: ResourceName): number {
    let n = 0;
    for (const w of this.#watchers) if (!resource || w.resource === resource) n++;
    return n;
  }

  /** (Re)starts listening on the same port. */
  start(): Promise<void> {
    if (this.#server) return Promise.resolve();
    const { promise, resolve } = Promise.withResolvers<void>();
    const tls = this.#opts.tls;
    const common = {
      port: this.#port,
      hostname: this.#opts.hostname ?? "127.0.0.1",
      onListen: (addr: Deno.NetAddr) => {
        this.#port = addr.port;
        resolve();
      },
    };
    const handler = (req: Request) => this.#handle(req);
    this.#server = tls
      ? Deno.serve({ ...common, cert: tls.serverCert, key: tls.serverKey }, handler)
      : Deno.serve(common, handler);
    return promise;
  }

  /**
   * Takes the API down: cuts every watch abruptly and closes the listener, so clients get
   * connection errors until {@link start}.
   */
  async stop(): Promise<void> {
    const server = this.#server;
    if (!server) return;
    this.#server = null;
    this.cutWatches();
    await server.shutdown();
  }

  /** Stops for good. */
  async close(): Promise<void> {
    await this.stop();
  }

  /**
   * Destroys every open watch stream without the end of the chunked body, as a dropped
   * connection does; clients see a premature close.
   */
  cutWatches(resource?: ResourceName): number {
    let n = 0;
    for (const w of [...this.#watchers]) {
      if (resource && w.resource !== resource) continue;
      this.#endWatch(w, "abort");
      n++;
    }
    return n;
  }

  /** Ends every open watch cleanly (end of the chunked body), as timeoutSeconds does. */
  closeWatches(resource?: ResourceName): number {
    let n = 0;
    for (const w of [...this.#watchers]) {
      if (resource && w.resource !== resource) continue;
      this.#endWatch(w, "close");
      n++;
    }
    return n;
  }

  /**
   * Sends every open watch an ERROR event with a 410 Expired Status and closes it, as the API
   * server does when a watcher's resourceVersion has been compacted away.
   */
  expireWatches(resource?: ResourceName): number {
    let n = 0;
    for (const w of [...this.#watchers]) {
      if (resource && w.resource !== resource) continue;
      this.#send(w, {
        type: "ERROR",
        object: status(410, "Expired", `too old resource version: ${this.#compactedRv}`),
      });
      this.#endWatch(w, "close");
      n++;
    }
    return n;
  }

  /**
   * Forgets the event history up to now (as etcd compaction does): watches and continue tokens
   * from before now get 410 Gone. Open watches stay open.
   */
  compact(): void {
    this.#compactedRv = this.#rv;
    this.#history = [];
  }

  /**
   * The API server comes back with a new history, as after an etcd restored from a backup or a
   * rebuilt control plane: every object is rewritten at one resourceVersion (`resourceVersion`,
   * default the initial one), lower than clients hold; the event history is empty and every open
   * watch is cut. A watch from a newer resourceVersion then gets "Too large resource version",
   * answered the way `reply` says; a list gets the new state.
   */
  resetHistory(options: { resourceVersion?: number; reply?: TooLargeReply } = {}): number {
    const rv = options.resourceVersion ?? this.#opts.initialResourceVersion ?? 1000;
    this.#tooLargeReply = options.reply ?? "error-event";
    this.cutWatches();
    for (const store of this.#objects.values()) {
      for (const [key, s] of store) {
        const obj = structuredClone(s.obj);
        obj.metadata.resourceVersion = String(rv);
        store.set(key, { obj, json: JSON.stringify(obj) });
      }
    }
    this.#rv = rv;
    this.#compactedRv = rv;
    this.#history = [];
    return rv;
  }

  /** Sends a BOOKMARK at the current resourceVersion on every watch that allows them. */
  sendBookmarks(): void {
    for (const w of this.#watchers) if (w.bookmarks) this.#bookmark(w);
  }

  /** Makes the next `count` list requests of a resource fail with HTTP `code`. */
  failNextLists(resource: ResourceName, count: number, code = 500): void {
    this.#failures.set(resource, { count, code });
  }

  /** The stored object, or undefined. */
  get(resource: ResourceName, namespace: string | undefined, name: string): KubeObject | undefined {
    const key = RESOURCES[resource].namespaced ? `${namespace}/${name}` : name;
    const s = this.#objects.get(resource)!.get(key);
    return s ? structuredClone(s.obj) : undefined;
  }

  /** Number of stored objects of a resource. */
  size(resource: ResourceName): number {
    return this.#objects.get(resource)!.size;
  }

  /** Creates an object; throws if it exists. Returns it with its new resourceVersion. */
  create(resource: ResourceName, obj: KubeObject): KubeObject {
    const def = RESOURCES[resource];
    const key = keyOf(def, obj);
    if (this.#objects.get(resource)!.has(key)) {
      throw new Error(`Cannot create ${def.kind} "${key}": it already exists`);
    }
    return this.#write(resource, key, obj, undefined);
  }

  /** Replaces an existing object; throws if it does not exist. */
  update(resource: ResourceName, obj: KubeObject): KubeObject {
    const def = RESOURCES[resource];
    const key = keyOf(def, obj);
    const prev = this.#objects.get(resource)!.get(key);
    if (!prev) throw new Error(`Cannot update ${def.kind} "${key}": it does not exist`);
    return this.#write(resource, key, obj, prev);
  }

  /** Creates or replaces an object. */
  apply(resource: ResourceName, obj: KubeObject): KubeObject {
    const key = keyOf(RESOURCES[resource], obj);
    const prev = this.#objects.get(resource)!.get(key);
    return this.#write(resource, key, obj, prev);
  }

  /** Deletes an object; returns false when it did not exist. */
  delete(resource: ResourceName, namespace: string | undefined, name: string): boolean {
    const def = RESOURCES[resource];
    const key = def.namespaced ? `${namespace}/${name}` : name;
    const store = this.#objects.get(resource)!;
    const prev = store.get(key);
    if (!prev) return false;
    store.delete(key);
    const rv = ++this.#rv;
    const obj = structuredClone(prev.obj);
    obj.metadata.resourceVersion = String(rv);
    this.#record({
      rv,
      resource,
      key,
      type: "DELETED",
      cur: { obj, json: JSON.stringify(obj) },
      prev,
    });
    return true;
  }

  #write(resource: ResourceName, key: string, input: KubeObject, prev?: Stored): KubeObject {
    const def = RESOURCES[resource];
    const rv = ++this.#rv;
    const obj: KubeObject = {
      ...structuredClone(input),
      apiVersion: def.apiVersion,
      kind: def.kind,
    };
    obj.metadata = {
      ...obj.metadata,
      resourceVersion: String(rv),
      uid: prev?.obj.metadata.uid ?? crypto.randomUUID(),
      creationTimestamp: prev?.obj.metadata.creationTimestamp ??
        new Date().toISOString().replace(/\.\d+Z$/, "Z"),
    };
    const stored = { obj, json: JSON.stringify(obj) };
    this.#objects.get(resource)!.set(key, stored);
    this.#record({ rv, resource, key, type: prev ? "MODIFIED" : "ADDED", cur: stored, prev });
    return structuredClone(obj);
  }

  #record(ev: HistoryEvent): void {
    this.#history.push(ev);
    const limit = this.#opts.historyLimit ?? 100_000;
    if (this.#history.length > limit * 1.1) {
      // Drop in batches so that recording stays O(1) amortised.
      const drop = this.#history.length - limit;
      this.#compactedRv = this.#history[drop - 1].rv;
      this.#history = this.#history.slice(drop);
    }
    for (const w of this.#watchers) {
      if (w.resource === ev.resource) this.#deliver(w, ev);
    }
  }

  // ---- request handling ----

  async #handle(req: Request): Promise<Response> {
    try {
      return await this.#route(req);
    } catch (e) {
      return jsonResponse(500, status(500, "InternalError", (e as Error).message));
    }
  }

  #route(req: Request): Response | Promise<Response> {
    const url = new URL(req.url);
    if (this.#opts.token !== undefined) {
      const auth = req.headers.get("authorization");
      if (auth !== `Bearer ${this.#opts.token}`) {
        this.#counts.unauthorized++;
        return jsonResponse(401, status(401, "Unauthorized", "Unauthorized"));
      }
    }
    if (req.method !== "GET") {
      return jsonResponse(
        405,
        status(
          405,
          "MethodNotAllowed",
          `the server does not allow this method on the requested resource`,
        ),
      );
    }
    if (url.pathname === "/version") {
      return jsonResponse(200, { major: "1", minor: "33", gitVersion: "v1.33.0-svcgate-fake" });
    }
    const route = this.#match(url.pathname);
    if (!route || this.#opts.absent?.includes(route.resource)) {
      return jsonResponse(
        404,
        status(404, "NotFound", `the server could not find the requested resource`),
      );
    }
    const { resource, namespace, name } = route;
    const q = url.searchParams;
    const isWatch = q.get("watch") === "true" || q.get("watch") === "1";
    this.onRequest?.({
      resource,
      verb: name !== undefined ? "get" : isWatch ? "watch" : "list",
      params: q,
    });
    if (name !== undefined) {
      this.#counts.get[resource]++;
      const obj = this.#objects.get(resource)!.get(
        RESOURCES[resource].namespaced ? `${namespace}/${name}` : name,
      );
      if (!obj) {
        return jsonResponse(
          404,
          status(404, "NotFound", `${resource} "${name}" not found`),
        );
      }
      return jsonResponse(200, obj.json);
    }
    let filter: Filter;
    try {
      filter = {
        namespace,
        labels: q.get("labelSelector") ? parseLabelSelector(q.get("labelSelector")!) : undefined,
        fields: q.get("fieldSelector")
          ? parseFieldSelector(q.get("fieldSelector")!, [
            ...FIELDS,
            ...Object.keys(EXTRA_FIELDS[resource] ?? {}),
          ])
          : undefined,
      };
    } catch (e) {
      return jsonResponse(400, status(400, "BadRequest", (e as Error).message));
    }
    if (isWatch) {
      return this.#watch(resource, filter, q);
    }
    return this.#list(resource, filter, q);
  }

  #match(path: string): { resource: ResourceName; namespace?: string; name?: string } | null {
    for (const [resource, def] of Object.entries(RESOURCES) as [ResourceName, ResourceDef][]) {
      if (!path.startsWith(def.prefix + "/")) continue;
      const parts = path.slice(def.prefix.length + 1).split("/").filter((p) => p !== "");
      if (parts.length === 1 && parts[0] === resource) return { resource };
      if (parts.length === 2 && parts[0] === resource) return { resource, name: parts[1] };
      if (def.namespaced && parts[0] === "namespaces" && parts[2] === resource) {
        if (parts.length === 3) return { resource, namespace: parts[1] };
        if (parts.length === 4) return { resource, namespace: parts[1], name: parts[3] };
      }
    }
    return null;
  }

  #matches(resource: ResourceName, filter: Filter, obj: KubeObject): boolean {
    const meta = obj.metadata ?? {};
    if (filter.namespace !== undefined && meta.namespace !== filter.namespace) return false;
    if (filter.labels && !filter.labels(meta.labels ?? {})) return false;
    if (filter.fields) {
      const fields: Record<string, string> = { "metadata.name": meta.name ?? "" };
      if (RESOURCES[resource].namespaced) fields["metadata.namespace"] = meta.namespace ?? "";
      for (const [field, read] of Object.entries(EXTRA_FIELDS[resource] ?? {})) {
        fields[field] = read(obj);
      }
      if (!filter.fields(fields)) return false;
    }
    return true;
  }

  /** The objects of a resource as they were at `rv` (needs rv >= the compacted version). */
  #stateAt(resource: ResourceName, rv: number): Map<string, Stored> {
    const state = new Map(this.#objects.get(resource)!);
    for (let i = this.#history.length - 1; i >= 0 && this.#history[i].rv > rv; i--) {
      const ev = this.#history[i];
      if (ev.resource !== resource) continue;
      if (ev.type === "ADDED") state.delete(ev.key);
      else state.set(ev.key, ev.prev!);
    }
    return state;
  }

  #list(resource: ResourceName, filter: Filter, q: URLSearchParams): Response {
    this.#counts.list[resource]++;
    const fail = this.#failures.get(resource);
    if (fail && fail.count > 0) {
      fail.count--;
      return jsonResponse(fail.code, status(fail.code, "InternalError", "injected failure"));
    }
    const def = RESOURCES[resource];
    const limit = Number(q.get("limit") ?? "0");
    if (!Number.isInteger(limit) || limit < 0) {
      return jsonResponse(400, status(400, "BadRequest", `invalid limit "${q.get("limit")}"`));
    }
    let listRv = this.#rv;
    let start = "";
    const token = q.get("continue");
    if (token) {
      const c = decodeContinue(token);
      if (!c) {
        return jsonResponse(400, status(400, "BadRequest", `invalid continue token "${token}"`));
      }
      if (c.rv < this.#compactedRv) {
        return jsonResponse(
          410,
          status(
            410,
            "Expired",
            "The provided continue parameter is too old to display a consistent list result. " +
              "You can start a new list without the continue parameter.",
          ),
        );
      }
      listRv = c.rv;
      start = c.start;
    }
    const state = listRv === this.#rv
      ? this.#objects.get(resource)!
      : this.#stateAt(resource, listRv);
    const keys = [...state.keys()].filter((k) => k >= start).sort();
    const items: string[] = [];
    let next: string | undefined;
    let lastKey = "";
    let remaining = 0;
    for (let i = 0; i < keys.length; i++) {
      const s = state.get(keys[i])!;
      if (!this.#matches(resource, filter, s.obj)) continue;
      if (limit > 0 && items.length === limit) {
        next = lastKey + "\u0000";
        for (let j = i; j < keys.length; j++) {
          if (this.#matches(resource, filter, state.get(keys[j])!.obj)) remaining++;
        }
        break;
      }
      items.push(s.json);
      lastKey = keys[i];
    }
    const meta: KubeObject = { resourceVersion: String(listRv) };
    if (next !== undefined && remaining > 0) {
      meta.continue = encodeContinue(listRv, next);
      meta.remainingItemCount = remaining;
    }
    const body = `{"kind":${JSON.stringify(def.kind + "List")},"apiVersion":${
      JSON.stringify(def.apiVersion)
    },"metadata":${JSON.stringify(meta)},"items":[${items.join(",")}]}`;
    return jsonResponse(200, body);
  }

  async #watch(resource: ResourceName, filter: Filter, q: URLSearchParams): Promise<Response> {
    this.#counts.watch[resource]++;
    const rvParam = q.get("resourceVersion") ?? "";
    const timeoutParam = q.get("timeoutSeconds");
    const bookmarks = q.get("allowWatchBookmarks") === "true";
    this.#watchLog.push({
      resource,
      resourceVersion: rvParam,
      allowWatchBookmarks: bookmarks,
      timeoutSeconds: timeoutParam === null ? undefined : Number(timeoutParam),
    });
    if (rvParam !== "" && !/^\d+$/.test(rvParam)) {
      return jsonResponse(
        400,
        status(400, "BadRequest", `invalid resourceVersion "${rvParam}": not a number`),
      );
    }
    const requested = rvParam === "" ? 0 : Number(rvParam);
    if (requested > this.#rv) {
      // As the watch cache: wait a while for the resourceVersion to appear, then give up.
      await new Promise((r) => setTimeout(r, this.#opts.tooLargeWaitMs ?? 3000));
      if (requested > this.#rv) {
        const body = tooLargeStatus(requested, this.#rv);
        if (this.#tooLargeReply === "http") return jsonResponse(504, body);
        return new Response(JSON.stringify({ type: "ERROR", object: body }) + "\n", {
          status: 200,
          headers: { "content-type": "application/json" },
        });
      }
    }
    const maxSeconds = this.#opts.maxWatchSeconds ?? 1800;
    const seconds = Math.min(timeoutParam ? Number(timeoutParam) : maxSeconds, maxSeconds);
    let watcher!: Watcher;
    const body = new ReadableStream<Uint8Array>({
      start: (controller) => {
        watcher = { resource, filter, bookmarks, controller, closed: false, timers: [] };
      },
      cancel: () => {
        // The client went away.
        this.#forget(watcher);
      },
    });
    const from = requested;
    if (from !== 0 && from < this.#compactedRv) {
      // As the API server does: 200, then one ERROR event with a 410 Status, then the end.
      this.#send(watcher, {
        type: "ERROR",
        object: status(
          410,
          "Expired",
          `too old resource version: ${from} (${this.#compactedRv})`,
        ),
      });
      watcher.closed = true;
      watcher.controller.close();
      return new Response(body, { status: 200, headers: { "content-type": "application/json" } });
    }
    if (from === 0) {
      // "Get state and start at most recent": synthetic ADDED for what exists now.
      for (const s of this.#objects.get(resource)!.values()) {
        if (this.#matches(resource, filter, s.obj)) {
          this.#sendRaw(watcher, `{"type":"ADDED","object":${s.json}}\n`);
        }
      }
    } else {
      for (const ev of this.#history) {
        if (ev.rv > from && ev.resource === resource) this.#deliver(watcher, ev);
      }
    }
    this.#watchers.add(watcher);
    if (bookmarks) {
      watcher.timers.push(
        setInterval(() => this.#bookmark(watcher), this.#opts.bookmarkIntervalMs ?? 60_000),
      );
    }
    watcher.timers.push(setTimeout(() => {
      if (bookmarks) this.#bookmark(watcher);
      this.#endWatch(watcher, "close");
    }, seconds * 1000));
    return new Response(body, {
      status: 200,
      headers: { "content-type": "application/json", "cache-control": "no-cache" },
    });
  }

  #deliver(w: Watcher, ev: HistoryEvent): void {
    const now = this.#matches(w.resource, w.filter, ev.cur.obj);
    if (ev.type === "ADDED") {
      if (now) this.#sendRaw(w, `{"type":"ADDED","object":${ev.cur.json}}\n`);
      return;
    }
    const before = ev.prev !== undefined && this.#matches(w.resource, w.filter, ev.prev.obj);
    if (ev.type === "DELETED") {
      if (before) this.#sendRaw(w, `{"type":"DELETED","object":${ev.cur.json}}\n`);
      return;
    }
    if (before && now) this.#sendRaw(w, `{"type":"MODIFIED","object":${ev.cur.json}}\n`);
    else if (now) this.#sendRaw(w, `{"type":"ADDED","object":${ev.cur.json}}\n`);
    else if (before) {
      // Left the selector: DELETED with the old state at the new resourceVersion.
      const obj = structuredClone(ev.prev!.obj);
      obj.metadata.resourceVersion = String(ev.rv);
      this.#send(w, { type: "DELETED", object: obj });
    }
  }

  #bookmark(w: Watcher): void {
    const def = RESOURCES[w.resource];
    this.#send(w, {
      type: "BOOKMARK",
      object: {
        kind: def.kind,
        apiVersion: def.apiVersion,
        metadata: { resourceVersion: String(this.#rv) },
      },
    });
  }

  #send(w: Watcher, event: KubeObject): void {
    this.#sendRaw(w, JSON.stringify(event) + "\n");
  }

  #sendRaw(w: Watcher, line: string): void {
    if (w.closed) return;
    try {
      w.controller.enqueue(encoder.encode(line));
    } catch {
      this.#forget(w);
    }
  }

  #endWatch(w: Watcher, how: "close" | "abort"): void {
    this.#forget(w);
    if (w.closed) return;
    w.closed = true;
    try {
      if (how === "close") w.controller.close();
      else w.controller.error(new Error("connection cut by the fake API server"));
    } catch {
      // Already closed by the client.
    }
  }

  #forget(w: Watcher): void {
    if (!w) return;
    for (const t of w.timers) clearTimeout(t);
    w.timers = [];
    this.#watchers.delete(w);
  }
}
