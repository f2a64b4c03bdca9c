/**
 * The Kubernetes source: Services, EndpointSlices (or legacy v1 Endpoints), Namespaces,
 * ServiceCIDRs and this node's Node from the API server, through @kubernetes/client-node, into the
 * model store.
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
import type { ObjectLimits } from "../objects/limits.ts";
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
import { SERVICE_NAME_LABEL } from "../../model/types.ts";
import { formatError, isWarning } from "../objects/validate.ts";
import type { Source, SourceSink, SourceStatus } from "../source.ts";
import type { BackoffOptions } from "./backoff.ts";
import { type KubeConnection, loadKubeConfig } from "./config.ts";
import { type ListPage, Reflector } from "./reflector.ts";
import { getRawAsList, listRaw } from "./raw_list.ts";
import { NodePodIndex, nodePodsSelector } from "./node_pods.ts";
import {
  EndpointsIndex,
  type HandlerContext,
  type Index,
  NamespaceIndex,
  NodeIndex,
  type ResourceKey,
  ServiceCidrIndex,
  ServiceIndex,
  SliceIndex,
} from "./resource_index.ts";
import { METRICS } from "../../observe/metrics_catalogue.ts";

/** Options of {@link KubeSource}. */
export interface KubeSourceOptions {
  /** `--kubeconfig`; otherwise KUBECONFIG, else the in-cluster service account. */
  readonly kubeconfigPath?: string;
  /** `--master`: overrides the API server URL. */
  readonly master?: string;
  /** `--use-endpoints`: read legacy v1 Endpoints instead of EndpointSlices. */
  readonly useEndpoints: boolean;
  /**
   * This node's name (`--hostname-override`): its Node object alone is read (get and watch by
   * name, no list of nodes), for its zone, pod CIDRs and addresses, and whether it is going away.
   * Absent: no Node is read.
   */
  readonly nodeName?: string;
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
  /** Bounds on the lists inside one object; the defaults of objects/limits.ts when absent. */
  readonly objectLimits?: ObjectLimits;
  /**
   * Watch this node's pods (`pods` list/watch, `fieldSelector=spec.nodeName=<nodeName>`) and
   * hand their IP -> namespace map to `onChange` (DNS: the search path walked on the server,
   * `pods verified`). Not part of the sync: a pod watch that fails (no RBAC for pods) is logged
   * and retried, and only leaves DNS without client namespaces.
   */
  readonly nodePods?: {
    readonly nodeName: string;
    readonly onChange: (pods: ReadonlyMap<string, string>) => void;
  };
  /** Keep the names of endpoints' pods (`--endpoint-pod-names`). Default false. */
  readonly keepPodNames?: boolean;
  /** Injected environment and service-account folder, for tests of the in-cluster path. */
  readonly env?: (name: string) => string | undefined;
  readonly serviceAccountDir?: string;
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
  /** This node's pods (not part of the sync). */
  #pods: { reflector: Reflector; index: NodePodIndex } | null = null;
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
      parseOptions: {
        ...(this.#o.objectLimits ? { limits: this.#o.objectLimits } : {}),
        keepPodNames: this.#o.keepPodNames ?? false,
      },
      store: () => sink.store,
      changed: () => {
        this.#updateGauges();
        if (this.#synced) sink.requestSync();
      },
      invalid: (resource, errors) => {
        this.#metrics.of(METRICS.kubeInvalidObjects).inc({ resource });
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
    const rawList =
      (path: string, selector?: string, fieldSelector?: string) =>
      (p: ListParams, s: AbortSignal) =>
        listRaw(conn.config, path, {
          limit: p.limit,
          continue: p._continue,
          labelSelector: selector,
          fieldSelector,
        }, s);
    const plan: {
      key: ResourceKey;
      path: string;
      index: Index<unknown>;
      list: (p: ListParams, s: AbortSignal) => Promise<ListPage>;
      fieldSelector?: string;
      mayBeAbsent?: boolean;
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
    // The service ranges to drop unallocated addresses of, as kube-proxy watches them; absent
    // before Kubernetes 1.33 (networking.k8s.io/v1): --service-cidr applies then.
    plan.push({
      key: "servicecidrs",
      path: "/apis/networking.k8s.io/v1/servicecidrs",
      index: new ServiceCidrIndex(ctx, "servicecidrs") as Index<unknown>,
      list: rawList("/apis/networking.k8s.io/v1/servicecidrs"),
      mayBeAbsent: true,
    });
    const nodeName = this.#o.nodeName;
    if (nodeName) {
      plan.push({
        key: "nodes",
        path: "/api/v1/nodes",
        index: new NodeIndex(ctx, "nodes") as Index<unknown>,
        // One object: a GET, then a watch with a field selector (RBAC: get and watch, no list).
        list: (_p, s) =>
          getRawAsList(conn.config, `/api/v1/nodes/${encodeURIComponent(nodeName)}`, s),
        fieldSelector: `metadata.name=${nodeName}`,
      });
    }
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
          fieldSelector: p.fieldSelector,
          mayBeAbsent: p.mayBeAbsent,
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
    const nodePods = this.#o.nodePods;
    if (nodePods) {
      const fieldSelector = nodePodsSelector(nodePods.nodeName);
      const index = new NodePodIndex(nodePods.onChange);
      const reflector = new Reflector({
        resource: "pods",
        path: "/api/v1/pods",
        list: raw
          ? rawList("/api/v1/pods", undefined, fieldSelector)
          : typedList(({ core }, p, o) => core.listPodForAllNamespaces({ ...p, fieldSelector }, o)),
        watch,
        fieldSelector,
        handler: index,
        pageSize: this.#o.pageSize ?? 500,
        watchTimeoutSeconds: this.#o.watchTimeoutSeconds,
        backoff: this.#o.backoff,
        log: this.#log,
        metrics: this.#metrics,
        onSynced: () =>
          this.#log.info("node pods synced", { node: nodePods.nodeName, pods: index.size }),
        // Logged by the reflector; the services' sync and readiness do not wait for pods.
        onHealth: () => {},
      });
      this.#pods = { reflector, index };
      reflector.run();
    }
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
    await this.#pods?.reflector.stop();
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
    this.#metrics.of(METRICS.kubeSynced).set(1);
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
    this.#metrics.of(METRICS.kubeDegraded).set(this.#errors.size > 0 ? 1 : 0);
  }

  #counts(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [k, i] of this.#indexes) out[k] = i.size;
    return out;
  }

  #updateGauges(): void {
    const g = this.#metrics.of(METRICS.kubeObjects);
    for (const [k, i] of this.#indexes) g.set(i.size, { resource: k });
  }
}
