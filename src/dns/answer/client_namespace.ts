/**
 * Which namespace a DNS client is in, so the server can walk its search path (autopath.ts), and
 * which pods exist on this node (for `pods verified`). In order: this node's pods (Kubernetes
 * mode, from a watch of the node's Pods), `--client-namespace CIDR=NAMESPACE` (the longest
 * prefix wins), and in standalone mode the namespaces of the services whose endpoint the client
 * is. An address found in two namespaces is unknown: such a client keeps today's behaviour.
 * Pure.
 * @module
 */

import { type Cidr, cidrContains, formatIp, parseIp } from "../../model/ip.ts";
import type { Zone } from "../zone/zone.ts";
import type { NodePods } from "./answer.ts";

/** `--client-namespace CIDR=NAMESPACE`. */
export interface ClientNamespaceRule {
  readonly cidr: Cidr;
  readonly namespace: string;
}

/** Where client namespaces come from, besides this node's pods. */
export interface ClientNamespaceOptions {
  readonly rules?: readonly ClientNamespaceRule[];
  /** Standalone mode: a client that is an endpoint is in its services' namespace. */
  readonly fromEndpoints?: boolean;
}

/**
 * The canonical text of a client address as transports give it (`::ffff:198.18.0.10` from a
 * dual-stack socket is `198.18.0.10`; an IPv6 zone id is dropped), or null.
 */
export function clientAddress(text: string): string | null {
  const zone = text.indexOf("%");
  const ip = parseIp(zone < 0 ? text : text.slice(0, zone));
  if (!ip) return null;
  if (ip.family === 6) {
    const b = ip.bytes;
    let mapped = b[10] === 0xff && b[11] === 0xff;
    for (let i = 0; i < 10 && mapped; i++) if (b[i] !== 0) mapped = false;
    if (mapped) return `${b[12]}.${b[13]}.${b[14]}.${b[15]}`;
  }
  return formatIp(ip);
}

/** A Linux `sockaddr_in`/`sockaddr_in6` at `buf[off..]` as address text, or null. */
export function sockaddrAddress(buf: Uint8Array, off: number): string | null {
  const family = buf[off] | (buf[off + 1] << 8);
  if (family === 2) return `${buf[off + 4]}.${buf[off + 5]}.${buf[off + 6]}.${buf[off + 7]}`;
  if (family !== 10) return null;
  const bytes = buf.slice(off + 8, off + 24);
  return clientAddress(formatIp({ family: 6, bytes }));
}

/**
 * Client namespaces and this node's pods.
 *
 * @example
 * ```ts
 * const clients = new ClientNamespaces({ rules: [{ cidr, namespace: "web" }] });
 * clients.setNodePods(new Map([["198.18.0.11", "default"]]));
 * clients.clientNamespace("198.18.0.11", zone); // "default"
 * ```
 */
export class ClientNamespaces implements NodePods {
  readonly #rules: readonly ClientNamespaceRule[];
  readonly #fromEndpoints: boolean;
  #pods: ReadonlyMap<string, string> = new Map();

  constructor(options: ClientNamespaceOptions = {}) {
    // Longest prefix first, so the most specific rule wins.
    this.#rules = [...options.rules ?? []].sort((a, b) => b.cidr.prefix - a.cidr.prefix);
    this.#fromEndpoints = options.fromEndpoints ?? false;
  }

  /** True when some source can name a client's namespace. */
  get any(): boolean {
    return this.#fromEndpoints || this.#rules.length > 0 || this.#pods.size > 0;
  }

  /** Replaces this node's pods: canonical IP -> namespace (one namespace per IP). */
  setNodePods(pods: ReadonlyMap<string, string>): void {
    this.#pods = pods;
  }

  /** Pods held. */
  get nodePodCount(): number {
    return this.#pods.size;
  }

  /** The namespace of this node's pod with this IP (canonical text). */
  namespaceOf(address: string): string | undefined {
    return this.#pods.get(address);
  }

  /** The namespace of the client at `address` (canonical text), or undefined when unknown. */
  clientNamespace(address: string, zone: Zone | null): string | undefined {
    const pod = this.#pods.get(address);
    if (pod !== undefined) return pod;
    if (this.#rules.length > 0) {
      const ip = parseIp(address);
      if (ip) { for (const r of this.#rules) if (cidrContains(r.cidr, ip)) return r.namespace; }
    }
    if (!this.#fromEndpoints || !zone?.endpointsAt) return undefined;
    let found: string | undefined;
    for (const key of zone.endpointsAt(address)) {
      const ns = key.slice(0, key.indexOf("/")).toLowerCase();
      if (found === undefined) found = ns;
      else if (found !== ns) return undefined;
    }
    return found;
  }
}
