/**
 * What crosses to a DNS worker and what a worker holds per service: a service entry cut down to
 * what serviceContribution (service_records.ts) reads, with repeated texts and port lists shared. Pure.
 * @module
 */

import type { ResolvedPort, ServiceEntry } from "../../model/snapshot.ts";
import { EMPTY_LIST, EMPTY_RECORD, type ServicePort } from "../../model/types.ts";
import { COREDNS_RECORDS, type RecordOptions } from "./zone.ts";

/**
 * A copy of an entry with only what serviceContribution reads, everything else blanked
 * to shared values: what crosses to a DNS worker, and what the worker holds per service.
 * Endpoints make records only for headless services; other services keep theirs only where the
 * zone reads them (`records.indexEndpoints`: CoreDNS's answers, verified pods) and keep of their
 * ports only name, protocol and port (targetPort set to the port). With a `pool`, equal texts
 * and port lists are shared with the entries made before.
 */
export function slimEntry(
  e: ServiceEntry,
  pool?: EntryPool,
  records: RecordOptions = COREDNS_RECORDS,
): ServiceEntry {
  const s = e.service;
  const headless = s.headless;
  const endpoints = headless || (records.indexEndpoints && s.type !== "ExternalName");
  return {
    key: e.key,
    service: {
      namespace: pool ? pool.text(s.namespace) : s.namespace,
      name: s.name,
      type: pool ? pool.text(s.type) : s.type,
      clusterIPs: s.clusterIPs,
      headless,
      ports: headless ? s.ports : pool ? pool.ports(s.ports) : dnsPorts(s.ports),
      externalName: s.externalName,
      publishNotReadyAddresses: s.publishNotReadyAddresses,
      externalIPs: EMPTY_LIST,
      loadBalancerIPs: EMPTY_LIST,
      loadBalancerSourceRanges: EMPTY_LIST,
      sessionAffinity: "None",
      sessionAffinityTimeoutSeconds: 0,
      internalTrafficPolicy: "Cluster",
      externalTrafficPolicy: "Cluster",
      ipFamilies: EMPTY_LIST,
      labels: EMPTY_RECORD,
      annotations: EMPTY_RECORD,
    },
    ports: endpoints ? e.ports.map(plainPort) : EMPTY_LIST,
    endpoints: endpoints ? e.endpoints : EMPTY_LIST,
    ...(headless && s.ports.length === 0 && e.endpointPorts
      ? { endpointPorts: e.endpointPorts.map(plainPort) }
      : {}),
    ownedByOtherProxy: e.ownedByOtherProxy,
    fingerprint: 0,
  };
}

/**
 * A resolved port whose backends are plain data: the snapshot's backends are views with getters
 * (snapshot.ts), which a structured clone to a worker would drop.
 */
function plainPort(p: ResolvedPort): ResolvedPort {
  return {
    servicePort: p.servicePort,
    backends: p.backends.map((b) => ({
      address: b.address,
      family: b.family,
      port: b.port,
      ready: b.ready,
      serving: b.serving,
      terminating: b.terminating,
    })),
  };
}

function dnsPorts(ports: readonly ServicePort[]): ServicePort[] {
  return ports.map((p) => ({
    name: p.name,
    protocol: p.protocol,
    port: p.port,
    targetPort: p.port,
  }));
}

/** Entries a pool remembers per kind; past it the pool starts afresh (churned namespaces). */
const POOL_LIMIT = 4096;

/**
 * Texts and port lists shared among the slim entries a worker holds: each entry arrives as its
 * own copy, yet most repeat a namespace and a port list (`http/TCP/80`).
 */
export class EntryPool {
  readonly #texts = new Map<string, string>();
  readonly #ports = new Map<string, readonly ServicePort[]>();

  /** The pool's copy of a text. */
  text<T extends string>(text: T): T {
    const known = this.#texts.get(text);
    if (known !== undefined) return known as T;
    if (this.#texts.size >= POOL_LIMIT) this.#texts.clear();
    this.#texts.set(text, text);
    return text;
  }

  /** The pool's list of these ports as DNS sees them (name, protocol, port). */
  ports(ports: readonly ServicePort[]): readonly ServicePort[] {
    const key = JSON.stringify(ports.map((p) => [p.name, p.protocol, p.port]));
    const known = this.#ports.get(key);
    if (known) return known;
    if (this.#ports.size >= POOL_LIMIT) this.#ports.clear();
    const list = Object.freeze(dnsPorts(ports));
    this.#ports.set(key, list);
    return list;
  }
}
