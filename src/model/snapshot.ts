/**
 * The immutable snapshot that nft and DNS read, and the pure function that builds one service's
 * entry from its Service and endpoint sets.
 * @module
 */

import { type Cidr, ipFamilyOf } from "./ip.ts";
import type {
  Endpoint,
  EndpointSet,
  IpFamily,
  NodeFacts,
  Service,
  ServiceKey,
  ServicePort,
} from "./types.ts";
import { EMPTY_LIST, SERVICE_PROXY_NAME_LABEL } from "./types.ts";
import { compareText } from "./text.ts";
import { diffKeys, PersistentMap } from "./persistent_map.ts";
import { hash53 } from "./hash.ts";

/** One endpoint, resolved to the port number a given service port targets. */
export interface Backend {
  readonly address: string;
  readonly family: IpFamily;
  readonly port: number;
  readonly ready: boolean;
  readonly serving: boolean;
  readonly terminating: boolean;
  readonly nodeName?: string;
  readonly zone?: string;
  readonly zoneHints?: readonly string[];
  readonly nodeHints?: readonly string[];
}

/**
 * A backend as a view of its endpoint: three fields, not eight (every field is 8 bytes in
 * Deno's V8, 100,000 backends at 10,000 services).
 */
class EndpointBackend implements Backend {
  constructor(readonly endpoint: Endpoint, readonly port: number, readonly family: IpFamily) {}
  get address(): string {
    return this.endpoint.address;
  }
  get ready(): boolean {
    return this.endpoint.ready;
  }
  get serving(): boolean {
    return this.endpoint.serving;
  }
  get terminating(): boolean {
    return this.endpoint.terminating;
  }
  get nodeName(): string | undefined {
    return this.endpoint.nodeName;
  }
  get zone(): string | undefined {
    return this.endpoint.zone;
  }
  get zoneHints(): readonly string[] | undefined {
    return this.endpoint.zoneHints;
  }
  get nodeHints(): readonly string[] | undefined {
    return this.endpoint.nodeHints;
  }
}

/** A service port with every backend it resolves to (ready or not; callers choose). */
export interface ResolvedPort {
  readonly servicePort: ServicePort;
  readonly backends: readonly Backend[];
}

/** Everything known about one service, resolved and ready for readers. */
export interface ServiceEntry {
  readonly key: ServiceKey;
  readonly service: Service;
  /** Resolved on each read in a store's entries ({@link buildServiceEntry}): read once per use. */
  readonly ports: readonly ResolvedPort[];
  /** Endpoints across all sets, one per address (first wins), sorted by address; as `ports`. */
  readonly endpoints: readonly Endpoint[];
  /**
   * The endpoint sets' own ports (by name and protocol, each backend at its set's port number),
   * resolved like `ports`: where DNS takes SRV ports of a headless service whose Service lists
   * none, as CoreDNS does. Absent where nobody reads it (slim entries of other services).
   */
  readonly endpointPorts?: readonly ResolvedPort[];
  /** True when a `service-proxy-name` label hands the service to another proxy. */
  readonly ownedByOtherProxy: boolean;
  /** Hash of everything above; equal fingerprints mean nothing changed. */
  readonly fingerprint: number;
}

/** An immutable view of every service, for the dataplane and DNS. */
export interface Snapshot {
  /** Increases by one with every snapshot a store commits. */
  readonly version: number;
  /**
   * Every service by key. A store's snapshots hold a {@link PersistentMap}: a commit copies only
   * the paths to what changed, and {@link changedServiceKeys} between two of them is O(changed).
   */
  readonly services: ReadonlyMap<ServiceKey, ServiceEntry>;
  /** Namespaces known to exist (DNS answers NXDOMAIN below unknown ones). */
  readonly namespaces: ReadonlySet<string>;
  /**
   * True when the source could not read all of its input (a manifest file that does not parse
   * at start): services it may hold are unknown, not absent, so readers must not take their
   * absence as a deletion (the dataplane keeps what it adopted from the kernel).
   */
  readonly partial?: boolean;
  /**
   * This node as its Node object describes it (Kubernetes mode); absent when unknown. Only the
   * facts rules depend on count as a change (zone, pod CIDRs, addresses).
   */
  readonly node?: NodeFacts;
  /**
   * The service ranges the cluster allocates from, from its ServiceCIDR objects (Kubernetes
   * mode); absent: the configured `--service-cidr` applies.
   */
  readonly serviceCidrs?: readonly Cidr[];
}

/** An empty snapshot, version 0. */
export const EMPTY_SNAPSHOT: Snapshot = Object.freeze({
  version: 0,
  services: PersistentMap.empty<ServiceEntry>(),
  namespaces: new Set<string>(),
});

/**
 * Keys of the services added, removed or replaced between two snapshots (any two, not only
 * consecutive ones). Readers that keep per-service state (nft, DNS) update just these: on
 * snapshots of one store it costs O(changed), never a walk over 10,000 services; other
 * snapshots (the DNS worker builds its own) compare entry by entry.
 */
export function changedServiceKeys(before: Snapshot, after: Snapshot): ServiceKey[] {
  const a = before.services, b = after.services;
  if (a instanceof PersistentMap && b instanceof PersistentMap) return diffKeys(a, b);
  const keys: ServiceKey[] = [];
  for (const [key, entry] of b) if (a.get(key) !== entry) keys.push(key);
  for (const key of a.keys()) if (!b.has(key)) keys.push(key);
  return keys;
}

function resolveTargetPort(
  servicePort: ServicePort,
  set: EndpointSet,
): number | null {
  // As kube-proxy does: the slice's port with the service port's name carries the resolved number.
  const byName = set.ports.find((p) =>
    p.name === servicePort.name && p.protocol === servicePort.protocol
  );
  if (byName) return byName.port;
  if (typeof servicePort.targetPort === "string") {
    const named = set.ports.find((p) =>
      p.name === servicePort.targetPort && p.protocol === servicePort.protocol
    );
    return named ? named.port : null;
  }
  // Endpoints written by hand may list no ports: the numeric targetPort applies.
  return set.ports.length === 0 ? servicePort.targetPort : null;
}

/** Sets in id order: the store keeps them so, then they are used as they are. */
function inIdOrder(sets: readonly EndpointSet[]): readonly EndpointSet[] {
  for (let i = 1; i < sets.length; i++) {
    if (compareText(sets[i - 1].id, sets[i].id) > 0) {
      return [...sets].sort((a, b) => compareText(a.id, b.id));
    }
  }
  return sets;
}

/**
 * Each set's endpoints (read once: a packed set makes its objects on every read), with their
 * family (addresses are parsed once, by the object parsers).
 */
function readSets(sets: readonly EndpointSet[]) {
  return sets.map((set) => ({
    set,
    endpoints: set.endpoints.map((endpoint) => ({
      endpoint,
      family: ipFamilyOf(endpoint.address),
    })),
  }));
}

type ReadSets = ReturnType<typeof readSets>;

/** Endpoints across all sets, one per address (the first set's wins), sorted by address. */
function mergedEndpoints(read: ReadSets): readonly Endpoint[] {
  const byAddress = new Map<string, Endpoint>();
  for (const { endpoints } of read) {
    for (const { endpoint } of endpoints) {
      if (!byAddress.has(endpoint.address)) byAddress.set(endpoint.address, endpoint);
    }
  }
  return [...byAddress.values()].sort((a, b) => compareText(a.address, b.address));
}

/** Every service port with the backends it resolves to in each set. */
function resolvedPorts(service: Service, read: ReadSets): readonly ResolvedPort[] {
  return service.ports.map((servicePort) => {
    const seen = new Set<string>();
    const backends: Backend[] = [];
    for (const { set, endpoints } of read) {
      const port = resolveTargetPort(servicePort, set);
      if (port === null) continue;
      for (const { endpoint, family } of endpoints) {
        const id = `${endpoint.address}|${port}`;
        if (seen.has(id)) continue;
        seen.add(id);
        // Backends refer to their own set's endpoint (its flags).
        backends.push(new EndpointBackend(endpoint, port, family));
      }
    }
    backends.sort((a, b) => compareText(a.address, b.address) || a.port - b.port);
    return { servicePort, backends: backends.length === 0 ? EMPTY_LIST : backends };
  });
}

/** The sets' own ports, merged by name and protocol, with the backends of each set. */
function endpointPortsOf(read: ReadSets): readonly ResolvedPort[] {
  const out = new Map<
    string,
    { servicePort: ServicePort; backends: Backend[]; seen: Set<string> }
  >();
  for (const { set, endpoints } of read) {
    for (const p of set.ports) {
      const id = `${p.name}/${p.protocol}`;
      let port = out.get(id);
      if (!port) {
        const servicePort = {
          name: p.name,
          protocol: p.protocol,
          port: p.port,
          targetPort: p.port,
        };
        out.set(id, port = { servicePort, backends: [], seen: new Set() });
      }
      for (const { endpoint, family } of endpoints) {
        const key = `${endpoint.address}|${p.port}`;
        if (port.seen.has(key)) continue;
        port.seen.add(key);
        port.backends.push(new EndpointBackend(endpoint, p.port, family));
      }
    }
  }
  return [...out.values()].map(({ servicePort, backends }) => ({
    servicePort,
    backends: backends.sort((a, b) => compareText(a.address, b.address) || a.port - b.port),
  }));
}

/**
 * A service entry that keeps only its service and sets, and resolves ports and endpoints on
 * each read. At 10,000 services x 10 endpoints, keeping them resolved cost ~15 MB of objects
 * that only a changed service's render (or a headless service's DNS records) ever reads.
 */
class LazyServiceEntry implements ServiceEntry {
  readonly #sets: readonly EndpointSet[];

  constructor(
    readonly key: ServiceKey,
    readonly service: Service,
    sets: readonly EndpointSet[],
    readonly ownedByOtherProxy: boolean,
    readonly fingerprint: number,
  ) {
    this.#sets = sets;
  }

  get ports(): readonly ResolvedPort[] {
    return resolvedPorts(this.service, readSets(this.#sets));
  }

  get endpoints(): readonly Endpoint[] {
    return mergedEndpoints(readSets(this.#sets));
  }

  get endpointPorts(): readonly ResolvedPort[] {
    return endpointPortsOf(readSets(this.#sets));
  }

  /** The endpoint sets the entry was built from, in id order. */
  get sets(): readonly EndpointSet[] {
    return this.#sets;
  }
}

/**
 * The endpoint sets an entry of {@link buildServiceEntry} was built from (what a saved snapshot
 * keeps, src/model/snapshot_codec.ts); null for entries made otherwise (a DNS worker's slim ones).
 */
export function entrySets(entry: ServiceEntry): readonly EndpointSet[] | null {
  return entry instanceof LazyServiceEntry ? entry.sets : null;
}

/**
 * Builds one service's entry from the service and all its endpoint sets. Pure. Its `ports` and
 * `endpoints` are resolved on each read: read them once per use.
 *
 * @example
 * ```ts
 * const entry = buildServiceEntry(service, [slice]);
 * entry.ports[0].backends.map((b) => `${b.address}:${b.port}`);
 * ```
 */
export function buildServiceEntry(service: Service, sets: readonly EndpointSet[]): ServiceEntry {
  const key = `${service.namespace}/${service.name}`;
  const ordered = inIdOrder(sets);
  const read = readSets(ordered);
  const ports = resolvedPorts(service, read);
  const endpoints = mergedEndpoints(read);
  const ownedByOtherProxy = SERVICE_PROXY_NAME_LABEL in service.labels;
  // A service without ports still shows its sets' ports (DNS SRV of a headless service).
  const setPorts = service.ports.length === 0 ? ordered.map((s) => s.ports) : EMPTY_LIST;
  const fingerprint = hash53(JSON.stringify([service, ports, endpoints, setPorts]));
  return new LazyServiceEntry(key, service, ordered, ownedByOtherProxy, fingerprint);
}

/**
 * The entry {@link buildServiceEntry} made for this service and these sets, rebuilt with the
 * fingerprint it had (a saved snapshot's, src/model/snapshot_codec.ts): at 10,000 services x 10
 * endpoints computing the fingerprints again took ~1.3 s of a restart.
 */
export function restoredServiceEntry(
  service: Service,
  sets: readonly EndpointSet[],
  fingerprint: number,
): ServiceEntry {
  return new LazyServiceEntry(
    `${service.namespace}/${service.name}`,
    service,
    inIdOrder(sets),
    SERVICE_PROXY_NAME_LABEL in service.labels,
    fingerprint,
  );
}

/**
 * Endpoints DNS publishes for a headless service: ready ones, or all of them when the service
 * sets publishNotReadyAddresses.
 */
export function publishedEndpoints(entry: ServiceEntry): readonly Endpoint[] {
  if (entry.service.publishNotReadyAddresses) return entry.endpoints;
  return entry.endpoints.filter((e) => e.ready);
}
