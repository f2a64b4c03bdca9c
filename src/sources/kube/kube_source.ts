/**
 * The Kubernetes source: Services, EndpointSlices (or legacy v1 Endpoints) and Namespaces from
 * the API server, through @kubernetes/client-node, into the {@link ModelStore}.
 *
 * Only the slim model is kept: each object is converted by `../objects/` as it arrives and the
 * raw object is dropped (client-node's informer caches would keep every object whole). Per object
 * the source remembers its resourceVersion, so that a relist after `410 Gone` re-parses only what
 * changed and removes only what disappeared: the store sees the difference, never a flush.
 *
 * Sync and readiness: {@link KubeSource.start} resolves once the initial lists of all three
 * resources are in the store, however long that takes (retrying with backoff); it rejects at once
 * on bad connection settings, and when stop() comes first. Past `syncTimeoutMs` (CoreDNS's 5 s
 * startup wait) it logs what is missing and why, and `status().lastError` says so; the daemon,
 * which races start() against its own --initial-sync-timeout, reports not-ready meanwhile.
 * Before sync the source never calls `sink.requestSync()`, so nothing is programmed and DNS
 * answers SERVFAIL; the first requestSync() comes with the completed lists.
 * @module
 */

// Only client-node's Watch (and node-fetch): the package index loads the whole generated API and
// every auth plugin. The "typed" list mode imports the package when chosen.
import { Watch } from "@kubernetes/client-node/dist/watch.js";
import type {
  KubeConfig,
  ObservableMiddleware,
  RequestContext,
  ResponseContext,
} from "@kubernetes/client-node";
import { silentLogger } from "../../observe/log.ts";
import type { Logger } from "../../observe/log.ts";
import { MetricsRegistry } from "../../observe/metrics.ts";
import type { ModelStore } from "../../model/store.ts";
import type { EndpointSet, Service } from "../../model/types.ts";
import { SERVICE_NAME_LABEL } from "../../model/types.ts";
import { parseEndpoints } from "../objects/endpoints.ts";
import { parseEndpointSlice } from "../objects/endpoint_slice.ts";
import { parseNamespace } from "../objects/namespace.ts";
import { parseService } from "../objects/service.ts";
import { formatError, isWarning, type ValidationError } from "../objects/validate.ts";
import type { Source, SourceSink, SourceStatus } from "../source.ts";
import type { BackoffOptions } from "./backoff.ts";
import { type KubeConnection, loadKubeConfig } from "./config.ts";
import { type ListPage, Reflector, type ResourceHandler } from "./reflector.ts";
import { listRaw } from "./raw_list.ts";

/** Options of {@link KubeSource}. */
export interface KubeSourceOptions {
  /** `--kubeconfig`; otherwise KUBECONFIG, else the in-cluster service account. */
  readonly kubeconfigPath?: string;
  /** `--master`: overrides the API server URL. */
  readonly master?: string;
  /** `--use-endpoints`: read legacy v1 Endpoints instead of EndpointSlices. */
  readonly useEndpoints: boolean;
  /**
   * After this long without the initial lists (CoreDNS waits 5 s), start() logs what is missing
   * and why, and status() reports it; start() itself keeps waiting (see the module doc).
   */
  readonly syncTimeoutMs: number;
  readonly log?: Logger;
  readonly metrics?: MetricsRegistry;
  /** Items per list page. Default 500 (as client-go). 0 lists in one request. */
  readonly pageSize?: number;
  /** Reconnect backoff; default 500 ms doubling to 30 s, jittered. */
  readonly backoff?: BackoffOptions;
  /** Watch timeoutSeconds; default a random 300–600 s per watch. */
  readonly watchTimeoutSeconds?: number;
  /**
   * How lists are read: "raw" (default) parses the JSON as is, with client-node's KubeConfig for
   * TLS and auth; "typed" goes through client-node's generated API client, whose typed
   * deserialization costs more CPU and garbage. Watches always use client-node's Watch.
   */
  readonly lists?: "raw" | "typed";
  /** Injected environment and service-account folder, for tests of the in-cluster path. */
  readonly env?: (name: string) => string | undefined;
  readonly serviceAccountDir?: string;
}

type ResourceKey = "services" | "endpointslices" | "endpoints" | "namespaces";

/** The namespace, name and resourceVersion of a raw object, or null when unreadable. */
function identity(obj: unknown): { namespace: string; name: string; rv: string } | null {
  const meta = (obj as { metadata?: Record<string, unknown> } | null)?.metadata;
  if (!meta || typeof meta.name !== "string" || meta.name === "") return null;
  const namespace = typeof meta.namespace === "string" && meta.namespace !== ""
    ? meta.namespace
    : "";
  const rv = typeof meta.resourceVersion === "string" ? meta.resourceVersion : "";
  return { namespace, name: meta.name, rv };
}

/** Shared by the handlers: where they write and how they report. */
interface HandlerContext {
  readonly store: () => ModelStore;
  readonly changed: () => void;
  readonly invalid: (resource: ResourceKey, errors: ValidationError[]) => void;
  readonly warn: (resource: ResourceKey, errors: ValidationError[]) => void;
}

function where(kind: string, id: { namespace: string; name: string; rv: string }): string {
  const name = id.namespace ? `${id.namespace}/${id.name}` : id.name;
  return `API ${kind} ${name} (resourceVersion ${id.rv || "?"})`;
}

/**
 * Keeps, per object key, the resourceVersion last seen and what the store holds for it, and
 * turns events and relists into store writes. Subclasses say how to parse and write.
 */
abstract class Index<T> implements ResourceHandler {
  /** key -> resourceVersion last seen, and the value in the store (absent when never valid). */
  protected readonly seen = new Map<string, { rv: string; value?: T }>();
  #listing = false;
  #size = 0;

  constructor(protected readonly ctx: HandlerContext, readonly resource: ResourceKey) {}

  /** Number of objects whose valid version is in the store. */
  get size(): number {
    return this.#size;
  }

  protected abstract parse(obj: unknown, id: { namespace: string; name: string; rv: string }): {
    value?: T;
    errors: ValidationError[];
  };
  protected abstract write(prev: T | undefined, next: T): void;
  protected abstract erase(prev: T): void;
  /** Called once after a batch of changes (a relist), or after each event. */
  protected flush(): void {}

  #key(id: { namespace: string; name: string }): string {
    return id.namespace ? `${id.namespace}/${id.name}` : id.name;
  }

  upsert(obj: unknown): void {
    const id = identity(obj);
    if (!id) {
      this.ctx.invalid(this.resource, [{
        where: `API ${this.resource}`,
        path: "metadata.name",
        message: "missing; the object is ignored",
      }]);
      return;
    }
    const key = this.#key(id);
    const prev = this.seen.get(key);
    if (prev && id.rv !== "" && prev.rv === id.rv) return; // Same version: nothing to do.
    const { value, errors } = this.parse(obj, id);
    if (value === undefined) {
      // Keep serving the last good version; remember this version so a relist does not
      // report it again.
      this.ctx.invalid(this.resource, errors);
      this.seen.set(key, { rv: id.rv, value: prev?.value });
      return;
    }
    if (errors.length > 0) this.ctx.warn(this.resource, errors);
    this.seen.set(key, { rv: id.rv, value });
    if (prev?.value === undefined) this.#size++;
    this.write(prev?.value, value);
    if (!this.#listing) this.#changed();
  }

  remove(obj: unknown): void {
    const id = identity(obj);
    if (!id) return;
    const key = this.#key(id);
    const prev = this.seen.get(key);
    if (!prev) return;
    this.seen.delete(key);
    if (prev.value !== undefined) {
      this.#size--;
      this.erase(prev.value);
      if (!this.#listing) this.#changed();
    }
  }

  beginList() {
    const listed = new Set<string>();
    this.#listing = true;
    return {
      add: (obj: unknown) => {
        const id = identity(obj);
        if (id) listed.add(this.#key(id));
        this.upsert(obj);
      },
      commit: () => {
        // Deleting the current entry while iterating a Map is safe: no copy of 20,000 entries.
        for (const [key, s] of this.seen) {
          if (listed.has(key)) continue;
          this.seen.delete(key);
          if (s.value !== undefined) {
            this.#size--;
            this.erase(s.value);
          }
        }
        this.#listing = false;
        this.#changed();
      },
    };
  }

  #changed(): void {
    this.flush();
    this.ctx.changed();
  }
}

class ServiceIndex extends Index<Service> {
  protected parse(obj: unknown, id: { namespace: string; name: string; rv: string }) {
    return parseService(obj, where("Service", id));
  }
  protected write(_prev: Service | undefined, next: Service): void {
    this.ctx.store().setService(next);
  }
  protected erase(prev: Service): void {
    this.ctx.store().deleteService(prev.namespace, prev.name);
  }
}

class SliceIndex extends Index<EndpointSet> {
  protected parse(obj: unknown, id: { namespace: string; name: string; rv: string }) {
    return parseEndpointSlice(obj, where("EndpointSlice", id));
  }
  protected write(prev: EndpointSet | undefined, next: EndpointSet): void {
    // A slice relabelled to another service leaves the first one.
    if (prev && (prev.serviceName !== next.serviceName || prev.id !== next.id)) this.erase(prev);
    this.ctx.store().setEndpointSet(next);
  }
  protected erase(prev: EndpointSet): void {
    this.ctx.store().deleteEndpointSet(prev.namespace, prev.serviceName, prev.id);
  }
}

class EndpointsIndex extends Index<readonly EndpointSet[]> {
  protected parse(obj: unknown, id: { namespace: string; name: string; rv: string }) {
    return parseEndpoints(obj, where("Endpoints", id));
  }
  protected write(prev: readonly EndpointSet[] | undefined, next: readonly EndpointSet[]): void {
    const keep = new Set(next.map((s) => `${s.serviceName}\n${s.id}`));
    for (const s of prev ?? []) {
      if (!keep.has(`${s.serviceName}\n${s.id}`)) {
        this.ctx.store().deleteEndpointSet(s.namespace, s.serviceName, s.id);
      }
    }
    for (const s of next) this.ctx.store().setEndpointSet(s);
  }
  protected erase(prev: readonly EndpointSet[]): void {
    for (const s of prev) this.ctx.store().deleteEndpointSet(s.namespace, s.serviceName, s.id);
  }
}

class NamespaceIndex extends Index<string> {
  #dirty = false;
  protected parse(obj: unknown, id: { namespace: string; name: string; rv: string }) {
    return parseNamespace(obj, where("Namespace", id));
  }
  protected write(): void {
    this.#dirty = true;
  }
  protected erase(): void {
    this.#dirty = true;
  }
  protected override flush(): void {
    if (!this.#dirty) return;
    this.#dirty = false;
    const names: string[] = [];
    for (const s of this.seen.values()) if (s.value !== undefined) names.push(s.value);
    this.ctx.store().setNamespaces(names);
  }
}

type ClientNode = typeof import("@kubernetes/client-node");

/** The generated API clients of the "typed" list mode. */
interface TypedClients {
  readonly k8s: ClientNode;
  readonly core: InstanceType<ClientNode["CoreV1Api"]>;
  readonly discovery: InstanceType<ClientNode["DiscoveryV1Api"]>;
}

/** Paging parameters of one list call. */
type ListParams = { limit?: number; _continue?: string };

/** Sets an abort signal on a generated-client request: stop() and a per-page timeout. */
function withSignal({ Observable }: ClientNode, signal: AbortSignal) {
  // The object-parameter API takes observable middleware (client-node's own Observable stub).
  const middleware: ObservableMiddleware = {
    pre: (ctx: RequestContext) => {
      ctx.setSignal(signal);
      return new Observable(Promise.resolve(ctx));
    },
    post: (ctx: ResponseContext) => new Observable(Promise.resolve(ctx)),
  };
  return { middleware: [middleware], middlewareMergeStrategy: "append" as const };
}

/**
 * Watches the Kubernetes API and keeps the model store in step with it.
 *
 * Needs `--allow-env` (client-node reads the environment on import), `--allow-read` (kubeconfig,
 * certificates, the service-account token) and `--allow-net` (the API server).
 *
 * @example
 * ```ts
 * const source = new KubeSource({ kubeconfigPath: "/etc/kubeconfig", useEndpoints: false,
 *   syncTimeoutMs: 5000 });
 * await source.start({ store, requestSync: () => loop.kick() });
 * source.status(); // { synced: true, degraded: false }
 * await source.stop();
 * ```
 */
export class KubeSource implements Source {
  readonly #o: KubeSourceOptions;
  readonly #log: Logger;
  readonly #metrics: MetricsRegistry;
  #sink: SourceSink | null = null;
  #connection: KubeConnection | null = null;
  #reflectors = new Map<ResourceKey, Reflector>();
  #indexes = new Map<ResourceKey, Index<unknown>>();
  #errors = new Map<ResourceKey, string>();
  #lastError: string | undefined;
  #synced = false;
  #syncedWaiter = Promise.withResolvers<void>();
  #syncWarning: string | undefined;
  #stopped = false;

  constructor(opts: KubeSourceOptions) {
    this.#o = opts;
    this.#log = (opts.log ?? silentLogger).child("kube");
    this.#metrics = opts.metrics ?? new MetricsRegistry();
    // A rejection nobody awaits (start() timed out) must not crash the process.
    this.#syncedWaiter.promise.catch(() => {});
  }

  /** The connection in use, once started. */
  get connection(): KubeConnection | null {
    return this.#connection;
  }

  /** Per-resource reflector state, for readiness detail and tests. */
  resources(): Record<string, { synced: boolean; resourceVersion: string; lastError?: string }> {
    const out: Record<string, { synced: boolean; resourceVersion: string; lastError?: string }> =
      {};
    for (const [k, r] of this.#reflectors) {
      const s = r.state;
      out[k] = { synced: s.synced, resourceVersion: s.resourceVersion, lastError: s.lastError };
    }
    return out;
  }

  /**
   * Connects and starts listing and watching. Resolves once all initial lists are in the store;
   * rejects at once on bad connection settings, or if stopped first (see the module doc).
   */
  async start(sink: SourceSink): Promise<void> {
    if (this.#sink) throw new Error("Cannot start the Kubernetes source: it is already started");
    this.#sink = sink;
    const conn = loadKubeConfig({
      kubeconfigPath: this.#o.kubeconfigPath,
      master: this.#o.master,
      env: this.#o.env,
      serviceAccountDir: this.#o.serviceAccountDir,
    });
    this.#connection = conn;
    this.#log.info("connecting", {
      server: conn.server,
      origin: conn.origin,
      auth: conn.auth,
      verifyTls: conn.verifyTls,
      viaClientNode: conn.viaClientNode,
      endpoints: this.#o.useEndpoints ? "v1 Endpoints" : "EndpointSlices",
    });
    // Watch types its config as KubeConfig but uses only what KubeClientConfig has.
    const watch = new Watch(conn.config as unknown as KubeConfig);
    const ctx: HandlerContext = {
      store: () => sink.store,
      changed: () => {
        this.#updateGauges();
        if (this.#synced) sink.requestSync();
      },
      invalid: (resource, errors) => {
        this.#metrics.counter(
          "svcgate_kube_invalid_objects_total",
          "API objects rejected by validation (the last good version keeps serving)",
        ).inc({ resource });
        for (const e of errors) {
          if (!isWarning(e)) this.#log.warn("invalid object", { error: formatError(e) });
        }
      },
      warn: (_resource, errors) => {
        for (const e of errors) this.#log.debug("object warning", { warning: formatError(e) });
      },
    };
    const slices = "endpointslices" as const;
    const raw = (this.#o.lists ?? "raw") === "raw";
    // "typed": the generated API clients, made once, with the whole package imported on first use.
    let typedClients: Promise<TypedClients> | undefined;
    const typedList = <T>(
      call: (
        c: TypedClients,
        page: ListParams,
        options: ReturnType<typeof withSignal>,
      ) => Promise<T>,
    ) =>
    async (page: ListParams, s: AbortSignal) => {
      typedClients ??= Promise.all([import("@kubernetes/client-node"), conn.config.toKubeConfig()])
        .then(([k8s, kc]) => ({
          k8s,
          core: kc.makeApiClient(k8s.CoreV1Api),
          discovery: kc.makeApiClient(k8s.DiscoveryV1Api),
        }));
      const c = await typedClients.catch((e) => {
        typedClients = undefined;
        throw e;
      });
      return call(c, page, withSignal(c.k8s, s));
    };
    const rawList = (path: string, selector?: string) => (p: ListParams, s: AbortSignal) =>
      listRaw(conn.config, path, {
        limit: p.limit,
        continue: p._continue,
        labelSelector: selector,
      }, s);
    const plan: {
      key: ResourceKey;
      path: string;
      index: Index<unknown>;
      list: (p: ListParams, s: AbortSignal) => Promise<ListPage>;
    }[] = [
      {
        key: "services",
        path: "/api/v1/services",
        index: new ServiceIndex(ctx, "services") as Index<unknown>,
        list: raw
          ? rawList("/api/v1/services")
          : typedList(({ core }, p, o) => core.listServiceForAllNamespaces(p, o)),
      },
      this.#o.useEndpoints
        ? {
          key: "endpoints",
          path: "/api/v1/endpoints",
          index: new EndpointsIndex(ctx, "endpoints") as Index<unknown>,
          list: raw
            ? rawList("/api/v1/endpoints")
            : typedList(({ core }, p, o) => core.listEndpointsForAllNamespaces(p, o)),
        }
        : {
          key: slices,
          // Only slices that belong to a Service; others cannot be attached to anything.
          path: "/apis/discovery.k8s.io/v1/endpointslices",
          index: new SliceIndex(ctx, slices) as Index<unknown>,
          list: raw
            ? rawList("/apis/discovery.k8s.io/v1/endpointslices", SERVICE_NAME_LABEL)
            : typedList(({ discovery }, p, o) =>
              discovery.listEndpointSliceForAllNamespaces(
                { ...p, labelSelector: SERVICE_NAME_LABEL },
                o,
              )
            ),
        },
      {
        key: "namespaces",
        path: "/api/v1/namespaces",
        index: new NamespaceIndex(ctx, "namespaces") as Index<unknown>,
        list: raw
          ? rawList("/api/v1/namespaces")
          : typedList(({ core }, p, o) => core.listNamespace(p, o)),
      },
    ];
    for (const p of plan) {
      this.#indexes.set(p.key, p.index);
      this.#reflectors.set(
        p.key,
        new Reflector({
          resource: p.key,
          path: p.path,
          list: p.list,
          watch,
          labelSelector: p.key === slices ? SERVICE_NAME_LABEL : undefined,
          handler: p.index,
          pageSize: this.#o.pageSize ?? 500,
          watchTimeoutSeconds: this.#o.watchTimeoutSeconds,
          backoff: this.#o.backoff,
          log: this.#log,
          metrics: this.#metrics,
          onSynced: () => this.#onReflectorSynced(),
          onHealth: (error) => this.#onHealth(p.key, error),
        }),
      );
    }
    this.#updateGauges();
    for (const r of this.#reflectors.values()) r.run();
    // Past syncTimeoutMs, say what is missing and why; keep waiting (the daemon keeps DNS at
    // SERVFAIL and programs nothing meanwhile, and reports not-ready).
    const timer = setTimeout(() => {
      const pending = [...this.#reflectors].filter(([, r]) => !r.state.synced).map(([k, r]) =>
        `${k}${r.state.lastError ? ` (${r.state.lastError})` : ""}`
      );
      this.#syncWarning = `Kubernetes API "${conn.server}" not synced after ` +
        `${this.#o.syncTimeoutMs} ms: waiting for ${pending.join(", ")}; still trying`;
      this.#log.warn(this.#syncWarning);
    }, this.#o.syncTimeoutMs);
    try {
      await this.#syncedWaiter.promise;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Stops every list and watch; the store keeps what it has. Idempotent. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    if (!this.#synced) {
      this.#syncedWaiter.reject(
        new Error("Kubernetes source stopped before its initial lists were synced"),
      );
    }
    await Promise.all([...this.#reflectors.values()].map((r) => r.stop()));
    this.#connection?.config.close();
  }

  /**
   * Synced; degraded (an API request is failing and the last state is serving); the last error,
   * or before sync and past syncTimeoutMs, what is still missing.
   */
  status(): SourceStatus {
    const lastError = this.#errors.size > 0
      ? this.#lastError
      : !this.#synced
      ? this.#syncWarning
      : undefined;
    return lastError === undefined
      ? { synced: this.#synced, degraded: this.#errors.size > 0 }
      : { synced: this.#synced, degraded: this.#errors.size > 0, lastError };
  }

  #onReflectorSynced(): void {
    if (this.#synced) return;
    if (![...this.#reflectors.values()].every((r) => r.state.synced)) return;
    this.#synced = true;
    this.#metrics.gauge("svcgate_kube_synced", "1 once the initial lists are in the model").set(1);
    this.#log.info("synced", this.#counts());
    this.#syncedWaiter.resolve();
    this.#sink?.requestSync();
  }

  #onHealth(key: ResourceKey, error: string | undefined): void {
    if (error === undefined) {
      this.#errors.delete(key);
      if (this.#lastError?.startsWith(`${key} `)) this.#lastError = [...this.#errors.values()][0];
    } else {
      this.#errors.set(key, `${key} ${error}`);
      this.#lastError = `${key} ${error}`;
    }
    this.#metrics.gauge(
      "svcgate_kube_degraded",
      "1 while an API request is failing and the last state keeps serving",
    ).set(this.#errors.size > 0 ? 1 : 0);
  }

  #counts(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [k, i] of this.#indexes) out[k] = i.size;
    return out;
  }

  #updateGauges(): void {
    const g = this.#metrics.gauge("svcgate_kube_objects", "API objects held in the model");
    for (const [k, i] of this.#indexes) g.set(i.size, { resource: k });
  }
}
