/**
 * Test fixtures for DNS: services and endpoint sets covering every record kind, built into a
 * real snapshot through the real ModelStore and into a zone through the production zone builder
 * (zone_index.ts buildZone); and an upstream that answers forwarded questions itself. Used by
 * the unit tests in src/dns, by tests/dns and by the DNS benchmarks.
 * @module
 */

import type { Cidr } from "../../src/model/ip.ts";
import type { Snapshot } from "../../src/model/snapshot.ts";
import { ModelStore } from "../../src/model/store.ts";
import { testService } from "./test_service.ts";
import type { Endpoint, EndpointSet, Service, ServicePort } from "../../src/model/types.ts";
import { decodeMessage } from "../../src/dns/codec/decode.ts";
import { encodeMessage } from "../../src/dns/codec/encode.ts";
import {
  type Message,
  queryMessage,
  Rcode,
  type RData,
  type ResourceRecord,
  RRClass,
  RRType,
} from "../../src/dns/codec/records.ts";
import { DnsCache } from "../../src/dns/serve/dns_cache.ts";
import {
  Forwarder,
  parseUpstream,
  type Upstream,
  type UpstreamTransport,
} from "../../src/dns/serve/upstream.ts";
import type { Zone, ZoneOptions } from "../../src/dns/zone/zone.ts";
import { buildZone } from "../../src/dns/zone/zone_index.ts";
import { cidr, ip } from "./model_values.ts";
export { cidr } from "./model_values.ts";

/** A Service with Kubernetes' defaults, overridden by `over`. */
export function makeService(over: Partial<Service> & Pick<Service, "namespace" | "name">): Service {
  return testService(`${over.namespace}/${over.name}`, { ports: [], ...over });
}

/** A service port. */
export function port(
  name: string,
  protocol: ServicePort["protocol"],
  p: number,
  target: number = p,
): ServicePort {
  return { name, protocol, port: p, targetPort: target };
}

/** A ready endpoint. */
export function ep(address: string, over: Partial<Endpoint> = {}): Endpoint {
  return { address: ip(address), ready: true, serving: true, terminating: false, ...over };
}

/** An endpoint set. */
export function endpointSet(
  namespace: string,
  serviceName: string,
  ports: EndpointSet["ports"],
  endpoints: Endpoint[],
  id = `${serviceName}-slice`,
): EndpointSet {
  return { namespace, serviceName, id, ports, endpoints };
}

/** Reverse zones of the fixture: service CIDRs (v4 and a v6 /112) and the pod CIDR. */
export const FIXTURE_REVERSE_CIDRS: readonly Cidr[] = [
  cidr("198.19.0.0/16"),
  cidr("198.18.0.0/16"),
  cidr("2001:db8:ffff::/112"),
];

/** Zone options of the fixture cluster: `cluster.local`, TTL 30, its reverse zones, serial 1. */
export const FIXTURE_ZONE_OPTIONS: ZoneOptions = {
  clusterDomain: "cluster.local",
  ttl: 30,
  reverseCidrs: FIXTURE_REVERSE_CIDRS,
  serial: 1,
};

/**
 * The zone of a snapshot (the fixture cluster by default), built by the production builder with
 * the fixture's options, `over` replacing any of them.
 */
export function fixtureZone(
  snapshot: Snapshot = fixtureSnapshot(),
  over: Partial<ZoneOptions> = {},
): Zone {
  return buildZone(snapshot, { ...FIXTURE_ZONE_OPTIONS, ...over });
}

/**
 * The fixture cluster:
 * - web.default: dual-stack ClusterIP, named ports http/TCP 80 and dns/UDP 53, one unnamed-free
 * - api.prod: ClusterIP with port grpc
 * - plain.default: ClusterIP with one unnamed port (no SRV)
 * - db.default: headless; db-0 (v4 + v6), db-1, one without hostname, one not ready
 * - db-alt.default: headless selecting db-0's IPv4 too (two PTRs)
 * - empty.default: headless, no ready endpoint (NXDOMAIN)
 * - early.default: headless with publishNotReadyAddresses
 * - ext.default: ExternalName example.org; alias.default: ExternalName to web.default
 * - pending.default: ClusterIP without an allocated IP (NODATA)
 * - named.default: ClusterIP whose endpoints have a hostname (named-0) or none (CoreDNS answers
 *   both names and their PTRs)
 * - portless.default: headless whose Service lists no ports but whose slice does (CoreDNS takes
 *   SRV ports from the slice); one IPv6 endpoint whose dashed label ends in "-" (`2001:db8:1::`)
 */
export function fixtureSnapshot(): Snapshot {
  const store = new ModelStore();
  for (const put of Object.values(FIXTURE_SERVICES)) put(store);
  store.setNamespaces(FIXTURE_NAMESPACES);
  return store.commit().snapshot;
}

/** Namespaces the fixture cluster lists (kube-system holds no service). */
export const FIXTURE_NAMESPACES: readonly string[] = ["default", "prod", "kube-system"];

/** How each service of the fixture cluster (and its endpoints) is put into a store, by key. */
export const FIXTURE_SERVICES: Readonly<Record<string, (store: ModelStore) => void>> = {
  "default/web": (store) => {
    store.setService(makeService({
      namespace: "default",
      name: "web",
      clusterIPs: [ip("198.19.0.10"), ip("2001:db8:ffff::10")],
      ports: [port("http", "TCP", 80, 8080), port("dns", "UDP", 53)],
    }));
    store.setEndpointSet(
      endpointSet("default", "web", [{ name: "http", protocol: "TCP", port: 8080 }, {
        name: "dns",
        protocol: "UDP",
        port: 53,
      }], [ep("198.18.0.50")]),
    );
  },
  "prod/api": (store) =>
    store.setService(makeService({
      namespace: "prod",
      name: "api",
      clusterIPs: [ip("198.19.0.20")],
      ports: [port("grpc", "TCP", 9000)],
    })),
  "default/plain": (store) =>
    store.setService(makeService({
      namespace: "default",
      name: "plain",
      clusterIPs: [ip("198.19.0.30")],
      ports: [port("", "TCP", 8000)],
    })),
  "default/db": (store) => {
    store.setService(makeService({
      namespace: "default",
      name: "db",
      headless: true,
      ports: [port("pg", "TCP", 5432)],
    }));
    store.setEndpointSet(
      endpointSet("default", "db", [{ name: "pg", protocol: "TCP", port: 5432 }], [
        ep("198.18.0.101", { hostname: "db-0" }),
        ep("198.18.0.102", { hostname: "db-1" }),
        ep("198.18.0.103"),
        ep("198.18.0.104", { hostname: "db-3", ready: false }),
      ], "db-v4"),
    );
    store.setEndpointSet(
      endpointSet("default", "db", [{ name: "pg", protocol: "TCP", port: 5432 }], [
        ep("2001:db8::a1", { hostname: "db-0" }),
      ], "db-v6"),
    );
  },
  "default/db-alt": (store) => {
    store.setService(makeService({
      namespace: "default",
      name: "db-alt",
      headless: true,
      ports: [port("pg", "TCP", 5432)],
    }));
    store.setEndpointSet(
      endpointSet("default", "db-alt", [{ name: "pg", protocol: "TCP", port: 5432 }], [
        ep("198.18.0.101", { hostname: "db-0" }),
      ]),
    );
  },
  "default/empty": (store) => {
    store.setService(makeService({ namespace: "default", name: "empty", headless: true }));
    store.setEndpointSet(
      endpointSet("default", "empty", [], [ep("198.18.0.120", { ready: false })]),
    );
  },
  "default/early": (store) => {
    store.setService(makeService({
      namespace: "default",
      name: "early",
      headless: true,
      publishNotReadyAddresses: true,
    }));
    store.setEndpointSet(
      endpointSet("default", "early", [], [ep("198.18.0.110", { ready: false })]),
    );
  },
  "default/ext": (store) =>
    store.setService(makeService({
      namespace: "default",
      name: "ext",
      type: "ExternalName",
      externalName: "example.org",
    })),
  "default/alias": (store) =>
    store.setService(makeService({
      namespace: "default",
      name: "alias",
      type: "ExternalName",
      externalName: "web.default.svc.cluster.local.",
    })),
  "default/named": (store) => {
    store.setService(makeService({
      namespace: "default",
      name: "named",
      clusterIPs: [ip("198.19.0.40")],
      ports: [port("http", "TCP", 80, 8080)],
    }));
    store.setEndpointSet(
      endpointSet("default", "named", [{ name: "http", protocol: "TCP", port: 8080 }], [
        ep("198.18.0.60", { hostname: "named-0" }),
        ep("198.18.0.61"),
        ep("198.18.0.62", { ready: false }),
      ]),
    );
  },
  "default/portless": (store) => {
    store.setService(makeService({ namespace: "default", name: "portless", headless: true }));
    store.setEndpointSet(
      endpointSet("default", "portless", [{ name: "http", protocol: "TCP", port: 8080 }], [
        ep("198.18.0.70", { hostname: "p-0" }),
      ], "portless-v4"),
    );
    store.setEndpointSet(
      endpointSet("default", "portless", [{ name: "http", protocol: "TCP", port: 8080 }], [
        ep("2001:db8:1::"),
      ], "portless-v6"),
    );
  },
  "default/pending": (store) =>
    store.setService(
      makeService({ namespace: "default", name: "pending", ports: [port("http", "TCP", 80)] }),
    ),
};

/** A snapshot with `count` ClusterIP services `svc<i>.bench` (for benchmarks and load tests). */
export function manyServicesSnapshot(count: number, namespace = "bench"): Snapshot {
  const store = new ModelStore();
  for (let i = 0; i < count; i++) {
    store.setService(makeService({
      namespace,
      name: `svc${i}`,
      clusterIPs: [ip(`198.19.${(i >> 8) & 0xff}.${i & 0xff}`)],
      ports: [port("http", "TCP", 80)],
    }));
  }
  store.setNamespaces([namespace, "default"]);
  return store.commit().snapshot;
}

/** A headless service `big.default` with `count` ready endpoints (for truncation tests). */
export function bigHeadlessSnapshot(count: number): Snapshot {
  const store = new ModelStore();
  store.setService(makeService({
    namespace: "default",
    name: "big",
    headless: true,
    ports: [port("http", "TCP", 80)],
  }));
  const eps: Endpoint[] = [];
  for (let i = 0; i < count; i++) eps.push(ep(`198.18.${1 + (i >> 8)}.${i & 0xff}`));
  store.setEndpointSet(
    endpointSet("default", "big", [{ name: "http", protocol: "TCP", port: 80 }], eps),
  );
  store.setNamespaces(["default"]);
  return store.commit().snapshot;
}

/** The address {@link EchoUpstream} answers every question with. */
export const ECHO_ADDRESS = "198.18.9.9";

/**
 * An upstream transport that answers every question itself with one A record of
 * {@link ECHO_ADDRESS} (TTL 60), after a random delay of up to `maxDelayMs` (0: at once).
 */
export class EchoUpstream implements UpstreamTransport {
  constructor(readonly maxDelayMs = 0) {}

  async exchange(_s: Upstream, packet: Uint8Array): Promise<Uint8Array> {
    if (this.maxDelayMs > 0) {
      await new Promise((r) => setTimeout(r, Math.random() * this.maxDelayMs));
    }
    const d = decodeMessage(packet);
    if (!d.ok) throw new Error(d.error);
    const q = d.message.questions[0];
    const m: Message = {
      ...d.message,
      qr: true,
      ra: true,
      answers: [{
        name: q.name,
        type: RRType.A,
        class: RRClass.IN,
        ttl: 60,
        data: { address: ECHO_ADDRESS },
      }],
      edns: undefined,
    };
    return encodeMessage(m);
  }

  close(): void {}
}

/** A forwarder to one upstream (198.18.0.53) that is an {@link EchoUpstream}, cache on a stopped clock. */
export function echoForwarder(maxDelayMs = 0): Forwarder {
  return new Forwarder({
    upstreams: [parseUpstream("198.18.0.53") as Upstream],
    transport: new EchoUpstream(maxDelayMs),
    cache: new DnsCache({ now: () => 0 }),
  });
}

/**
 * An upstream resolver for the names it is given (A records, TTL 60, and an example.org SOA in
 * negative answers): a known name with no record of the asked type is NODATA, anything else
 * NXDOMAIN, a name in `failing` SERVFAIL. Remembers every question asked, lower case.
 */
export class MapUpstream implements UpstreamTransport {
  readonly asked: string[] = [];
  constructor(
    readonly names: Readonly<Record<string, string>>,
    readonly failing: readonly string[] = [],
  ) {}

  exchange(_s: Upstream, packet: Uint8Array): Promise<Uint8Array> {
    const d = decodeMessage(packet);
    if (!d.ok) throw new Error(d.error);
    const q = d.message.questions[0];
    const key = q.name.toLowerCase().replace(/\.$/, "");
    this.asked.push(`${key} ${q.type}`);
    const address = this.names[key];
    const soa = record("example.org", RRType.SOA, {
      mname: "ns.example.org",
      rname: "hostmaster.example.org",
      serial: 1,
      refresh: 7200,
      retry: 1800,
      expire: 86400,
      minimum: 60,
    }, 60);
    const m: Message = {
      ...d.message,
      qr: true,
      ra: true,
      rcode: this.failing.includes(key)
        ? Rcode.SERVFAIL
        : address === undefined
        ? Rcode.NXDOMAIN
        : Rcode.NOERROR,
      answers: address !== undefined && q.type === RRType.A
        ? [record(q.name, RRType.A, { address }, 60)]
        : [],
      authority: address !== undefined && q.type === RRType.A ? [] : [soa],
      edns: undefined,
    };
    return Promise.resolve(encodeMessage(m));
  }

  close(): void {}
}

/** A forwarder to one upstream that is a {@link MapUpstream} (cache on a stopped clock). */
export function mapForwarder(upstream: MapUpstream): Forwarder {
  return new Forwarder({
    upstreams: [parseUpstream("198.18.0.53") as Upstream],
    transport: upstream,
    cache: new DnsCache({ now: () => 0 }),
  });
}

/** A record of class IN. */
export function record(name: string, type: number, data: RData, ttl = 30): ResourceRecord {
  return { name, type, class: RRClass.IN, ttl, data };
}

/** An upstream resolver's reply to `www.example.org A` (ID 1, RA set), `over` replacing any field. */
export function upstreamReply(over: Partial<Message> = {}): Message {
  const q = { name: "www.example.org", type: RRType.A, class: RRClass.IN };
  return queryMessage([q], { id: 1, qr: true, ra: true, ...over });
}
