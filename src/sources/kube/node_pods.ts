/**
 * This node's pods, as DNS needs them: which namespace each pod IP is in (the search path walked
 * on the server, `pods verified`). Fed by a reflector over `/api/v1/pods` with
 * `fieldSelector=spec.nodeName=<node>` (one node's pods, not the cluster's: RBAC list/watch on
 * pods); of each Pod only its namespace and IPs are kept. Pods on the host network share the
 * node's IP and say nothing about a client; pods that finished have given their IP back. An IP
 * claimed by pods of two namespaces (a reused IP while the old pod's deletion is on its way) is
 * left out until one goes: such a client is unknown, and gets today's behaviour. Pure.
 * @module
 */

import { canonicalIp } from "../../model/ip.ts";
import type { ListStage, ResourceHandler } from "./reflector.ts";

/** The field selector of the node's pods: scheduled here, not finished (as CoreDNS's watch). */
export function nodePodsSelector(nodeName: string): string {
  return `spec.nodeName=${nodeName},status.phase!=Succeeded,status.phase!=Failed`;
}

/** What is kept of a Pod. */
interface PodFacts {
  readonly rv: string;
  readonly namespace: string;
  readonly ips: readonly string[];
}

// deno-lint-ignore no-explicit-any
type Raw = any;

/** The facts of a raw Pod, or null when it is not one (no namespace or name). */
function podFacts(obj: Raw): { key: string; facts: PodFacts } | null {
  const meta = obj?.metadata;
  if (typeof meta?.name !== "string" || typeof meta?.namespace !== "string") return null;
  if (meta.name === "" || meta.namespace === "") return null;
  const rv = typeof meta.resourceVersion === "string" ? meta.resourceVersion : "";
  const ips: string[] = [];
  const phase = obj?.status?.phase;
  const finished = phase === "Succeeded" || phase === "Failed";
  if (obj?.spec?.hostNetwork !== true && !finished) {
    const listed: unknown[] = Array.isArray(obj?.status?.podIPs)
      ? obj.status.podIPs.map((p: Raw) => p?.ip)
      : [obj?.status?.podIP];
    for (const text of listed) {
      const ip = typeof text === "string" ? canonicalIp(text) : null;
      if (ip && !ips.includes(ip)) ips.push(ip);
    }
  }
  return { key: `${meta.namespace}/${meta.name}`, facts: { rv, namespace: meta.namespace, ips } };
}

/**
 * The reflector's handler for this node's pods: keeps each pod's namespace and IPs, and calls
 * `onChange` with the IP -> namespace map after each event or relist that changed it.
 *
 * @example
 * ```ts
 * const pods = new NodePodIndex((map) => dns.setNodePods(map));
 * // new Reflector({ resource: "pods", path: "/api/v1/pods", handler: pods, ... })
 * ```
 */
export class NodePodIndex implements ResourceHandler {
  readonly #pods = new Map<string, PodFacts>();
  /** Namespaces are few: one string each, shared by their pods. */
  readonly #namespaces = new Map<string, string>();
  #map: ReadonlyMap<string, string> = new Map();
  #listing = false;

  constructor(readonly onChange: (pods: ReadonlyMap<string, string>) => void = () => {}) {}

  /** Pods kept (those with an IP of their own). */
  get size(): number {
    return this.#pods.size;
  }

  /** IP -> namespace of this node's pods, as last published. */
  get map(): ReadonlyMap<string, string> {
    return this.#map;
  }

  upsert(obj: unknown): void {
    const p = podFacts(obj);
    if (!p) return;
    const prev = this.#pods.get(p.key);
    if (prev && p.facts.rv !== "" && prev.rv === p.facts.rv) return;
    if (p.facts.ips.length === 0) {
      // Nothing to say about a client (pending, on the host network, finished): not kept.
      if (prev && this.#pods.delete(p.key) && !this.#listing) this.#publish();
      return;
    }
    let namespace = this.#namespaces.get(p.facts.namespace);
    if (namespace === undefined) {
      namespace = p.facts.namespace;
      this.#namespaces.set(namespace, namespace);
    }
    this.#pods.set(p.key, { ...p.facts, namespace });
    if (!this.#listing && !sameIps(prev, p.facts)) this.#publish();
  }

  remove(obj: unknown): void {
    const p = podFacts(obj);
    if (!p || !this.#pods.delete(p.key)) return;
    if (!this.#listing) this.#publish();
  }

  beginList(): ListStage {
    const listed = new Set<string>();
    this.#listing = true;
    return {
      add: (obj: unknown) => {
        const p = podFacts(obj);
        if (p) listed.add(p.key);
        this.upsert(obj);
      },
      commit: () => {
        for (const key of this.#pods.keys()) if (!listed.has(key)) this.#pods.delete(key);
        this.#listing = false;
        this.#publish();
      },
    };
  }

  #publish(): void {
    const byIp = new Map<string, string | null>();
    const used = new Set<string>();
    for (const pod of this.#pods.values()) {
      used.add(pod.namespace);
      for (const ip of pod.ips) {
        const seen = byIp.get(ip);
        if (seen === undefined) byIp.set(ip, pod.namespace);
        else if (seen !== pod.namespace) byIp.set(ip, null);
      }
    }
    for (const ns of this.#namespaces.keys()) if (!used.has(ns)) this.#namespaces.delete(ns);
    const map = new Map<string, string>();
    for (const [ip, ns] of byIp) if (ns !== null) map.set(ip, ns);
    this.#map = map;
    this.onChange(map);
  }
}

function sameIps(a: PodFacts | undefined, b: PodFacts): boolean {
  if (!a) return b.ips.length === 0;
  return a.namespace === b.namespace && a.ips.length === b.ips.length &&
    a.ips.every((ip, i) => ip === b.ips[i]);
}
