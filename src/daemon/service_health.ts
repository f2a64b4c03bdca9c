/**
 * Health checks for external load balancers, as kube-proxy's ServiceHealthServer
 * (pkg/proxy/healthcheck/service_health.go): every LoadBalancer service with
 * externalTrafficPolicy Local has an HTTP server on its `healthCheckNodePort` that answers 200
 * while this node has ready endpoints of the service and the proxy is healthy, else 503, so the
 * load balancer sends traffic only to nodes that keep it. Servers come and go with the services;
 * a port another process holds is logged and counted, never fatal, and tried again on each sync.
 *
 * {@link healthCheckOf} and {@link serviceHealthBody} are pure; {@link ServiceHealthServers} owns
 * the listeners.
 * @module
 */

import { type Cidr, cidrContains } from "../model/ip.ts";
import { changedServiceKeys, type ServiceEntry, type Snapshot } from "../model/snapshot.ts";
import type { ServiceKey } from "../model/types.ts";
import type { Logger } from "../observe/log.ts";
import type { MetricsRegistry } from "../observe/metrics.ts";
import { METRICS } from "../observe/metrics_catalogue.ts";
import { EMPTY_SNAPSHOT } from "../model/snapshot.ts";

/** One service's health check: its port and this node's ready endpoints. */
export interface HealthCheck {
  readonly port: number;
  /** Distinct addresses of this node's ready endpoints, over every port (kube-proxy counts IPs). */
  readonly localEndpoints: number;
}

/**
 * The health check a service has on this node, or null when it has none. Terminating endpoints
 * do not count, even serving ones: a node whose pods are all going away fails its check, as in
 * kube-proxy, so the load balancer moves on before they are gone.
 *
 * @example
 * ```ts
 * healthCheckOf(entry, "node-a"); // { port: 30300, localEndpoints: 2 }
 * ```
 */
export function healthCheckOf(entry: ServiceEntry, nodeName: string): HealthCheck | null {
  const svc = entry.service;
  if (
    entry.ownedByOtherProxy || svc.healthCheckNodePort === undefined ||
    svc.type !== "LoadBalancer" || svc.externalTrafficPolicy !== "Local"
  ) return null;
  const local = new Set<string>();
  for (const rp of entry.ports) {
    for (const b of rp.backends) if (b.ready && b.nodeName === nodeName) local.add(b.address);
  }
  return { port: svc.healthCheckNodePort, localEndpoints: local.size };
}

/** kube-proxy's body, byte for byte (a tab-indented JSON object). */
export function serviceHealthBody(
  namespace: string,
  name: string,
  localEndpoints: number,
  proxyHealthy: boolean,
): string {
  return [
    "{",
    '\t"service": {',
    `\t\t"namespace": ${JSON.stringify(namespace)},`,
    `\t\t"name": ${JSON.stringify(name)}`,
    "\t},",
    `\t"localEndpoints": ${localEndpoints},`,
    `\t"serviceProxyHealthy": ${proxyHealthy}`,
    "}",
  ].join("\n");
}

/** Options of {@link ServiceHealthServers}. */
export interface ServiceHealthOptions {
  readonly nodeName: string;
  /**
   * `--nodeport-addresses`: the servers listen on this node's addresses inside them; empty means
   * every address (0.0.0.0, as kube-proxy).
   */
  readonly nodePortAddresses: readonly Cidr[];
  /** The proxy's own health, read per request (kube-proxy's serviceProxyHealthy). */
  readonly proxyHealthy: () => boolean;
  readonly log: Logger;
  readonly metrics: MetricsRegistry;
  /** This host's addresses (default: its interfaces'); injected by tests. */
  readonly localAddresses?: () => string[];
}

interface Instance {
  readonly key: ServiceKey;
  port: number;
  localEndpoints: number;
  servers: Deno.HttpServer[];
}

/**
 * The health check servers of the services in the published snapshot.
 *
 * @example
 * ```ts
 * const servers = new ServiceHealthServers({ nodeName, nodePortAddresses: [], proxyHealthy, log,
 *   metrics });
 * servers.sync(snapshot); // after each publish
 * await servers.stop();
 * ```
 */
export class ServiceHealthServers {
  readonly #o: ServiceHealthOptions;
  readonly #wanted = new Map<ServiceKey, Instance>();
  #seen: Snapshot = EMPTY_SNAPSHOT;
  #stopped = false;

  constructor(options: ServiceHealthOptions) {
    this.#o = options;
  }

  /** Services with a health check and whether it listens: `{"default/web": {port, listening}}`. */
  status(): Record<string, { port: number; localEndpoints: number; listening: boolean }> {
    const out: Record<string, { port: number; localEndpoints: number; listening: boolean }> = {};
    for (const [key, i] of [...this.#wanted].sort(([a], [b]) => a < b ? -1 : 1)) {
      out[key] = {
        port: i.port,
        localEndpoints: i.localEndpoints,
        listening: i.servers.length > 0,
      };
    }
    return out;
  }

  /**
   * Brings the servers to a snapshot: only the services changed since the last one are looked
   * at; servers that could not listen before are tried again. Never throws.
   */
  sync(snapshot: Snapshot): void {
    if (this.#stopped) return;
    const keys = changedServiceKeys(this.#seen, snapshot);
    this.#seen = snapshot;
    for (const key of keys) {
      const entry = snapshot.services.get(key);
      const check = entry ? healthCheckOf(entry, this.#o.nodeName) : null;
      const have = this.#wanted.get(key);
      if (have && (!check || check.port !== have.port)) {
        this.#close(have, check ? "port changed" : "service has no health check any more");
        this.#wanted.delete(key);
      }
      if (!check) continue;
      const instance = this.#wanted.get(key);
      if (instance) instance.localEndpoints = check.localEndpoints;
      else {
        this.#wanted.set(key, {
          key,
          port: check.port,
          localEndpoints: check.localEndpoints,
          servers: [],
        });
      }
    }
    for (const instance of this.#wanted.values()) {
      if (instance.servers.length === 0) this.#open(instance);
    }
    this.#o.metrics.of(METRICS.serviceHealthServers).set(
      [...this.#wanted.values()].filter((i) => i.servers.length > 0).length,
    );
  }

  /** Closes every server. */
  async stop(): Promise<void> {
    this.#stopped = true;
    const all = [...this.#wanted.values()].flatMap((i) => i.servers);
    this.#wanted.clear();
    await Promise.allSettled(all.map((s) => s.shutdown()));
  }

  #addresses(): string[] {
    if (this.#o.nodePortAddresses.length === 0) return ["0.0.0.0"];
    const local = this.#o.localAddresses?.() ??
      Deno.networkInterfaces().map((n) => n.address);
    return [...new Set(local)].filter((a) =>
      this.#o.nodePortAddresses.some((c) => cidrContains(c, a))
    )
      .sort();
  }

  #open(instance: Instance): void {
    const slash = instance.key.indexOf("/");
    const namespace = instance.key.slice(0, slash), name = instance.key.slice(slash + 1);
    const handler = () => {
      const healthy = this.#o.proxyHealthy();
      const ok = instance.localEndpoints > 0 && healthy;
      return new Response(serviceHealthBody(namespace, name, instance.localEndpoints, healthy), {
        status: ok ? 200 : 503,
        headers: { "content-type": "application/json", "x-content-type-options": "nosniff" },
      });
    };
    const addresses = this.#addresses();
    if (addresses.length === 0) return; // no address of this node in --nodeport-addresses
    const servers: Deno.HttpServer[] = [];
    for (const hostname of addresses) {
      try {
        servers.push(Deno.serve({ hostname, port: instance.port, onListen: () => {} }, handler));
      } catch (e) {
        // Another process (or another service) holds the port: close what opened, try again on
        // the next sync, as kube-proxy does.
        for (const s of servers) void s.shutdown();
        this.#o.metrics.of(METRICS.serviceHealthListenFailures).inc();
        this.#o.log.error("cannot start a service health check; will retry on the next sync", {
          service: instance.key,
          address: `${hostname.includes(":") ? `[${hostname}]` : hostname}:${instance.port}`,
          error: e as Error,
        });
        return;
      }
    }
    instance.servers = servers;
    this.#o.log.info("service health check listening", {
      service: instance.key,
      port: instance.port,
      addresses: addresses.join(","),
    });
  }

  #close(instance: Instance, why: string): void {
    for (const s of instance.servers) void s.shutdown();
    if (instance.servers.length > 0) {
      this.#o.log.info("service health check closed", {
        service: instance.key,
        port: instance.port,
        why,
      });
    }
    instance.servers = [];
  }
}
