/**
 * What CoreDNS answers beyond the spec and svcgate reads from the service's entry when asked,
 * instead of keeping it as records: SRV at the bare service name (one per port, or per endpoint
 * and port when headless) and at every endpoint's name; for the endpoints of ClusterIP services
 * their names `<endpoint>.<service>.<ns>.svc.<zone>` (hostname, pod name or dashed IP) with
 * A/AAAA, and PTR for their IPs. As records these cost ~60 bytes an endpoint more at 10,000
 * ClusterIP services x 10 endpoints (src/dns/README.md), and clients ask them rarely. They are
 * never precomputed (the fast path holds only a name's own record types), so they cannot go
 * stale. Not in strict mode (zone.ts RecordOptions). Pure.
 * @module
 */

import { formatIp, ipFamilyOf, type IpText, parseReverseName } from "../../model/ip.ts";
import { publishedEndpoints, type ServiceEntry } from "../../model/snapshot.ts";
import type { Endpoint } from "../../model/types.ts";
import { isValidName } from "../codec/names.ts";
import { type ResourceRecord, RRClass, RRType } from "../codec/records.ts";
import { coreDnsWeight } from "../zone/service_records.ts";
import {
  addressRecord,
  endpointLabel,
  nameRecord,
  recordOptions,
  type Zone,
} from "../zone/zone.ts";

/** Records found for one name: its records of the asked type, and the SRV targets' addresses. */
export interface EndpointFind {
  readonly records: ResourceRecord[];
  readonly additional: ResourceRecord[];
}

/**
 * The service a name of `labels` labels before `.svc.<zone>` is under (2: the service's own name,
 * 3: an endpoint's), and the label before the service's; null when strict or none.
 */
function serviceOf(
  zone: Zone,
  key: string,
  labels: 2 | 3,
): { entry: ServiceEntry; first: string } | null {
  if (zone.options.strictSpec || !zone.services) return null;
  const suffix = `.svc.${zone.domain}`;
  if (!key.endsWith(suffix)) return null;
  const parts = key.slice(0, -suffix.length).split(".");
  if (parts.length !== labels) return null;
  const entry = zone.services.get(`${parts[labels - 1]}/${parts[labels - 2]}`);
  if (!entry || entry.service.type === "ExternalName") return null;
  return { entry, first: parts[0] };
}

/**
 * The service an endpoint's name (`<ep>.<svc>.<ns>.svc.<zone>`) is under, with its published
 * endpoints of that name; headless services' only when `headless` (their names are records).
 */
function endpointsNamed(
  zone: Zone,
  key: string,
  headless: boolean,
): { entry: ServiceEntry; eps: Endpoint[] } | null {
  const found = serviceOf(zone, key, 3);
  if (!found || (found.entry.service.headless && !headless)) return null;
  const opts = recordOptions(zone.options);
  const eps = publishedEndpoints(found.entry).filter((ep) =>
    endpointLabel(ep, opts) === found.first
  );
  return eps.length > 0 ? { entry: found.entry, eps } : null;
}

/**
 * CoreDNS's SRV at an endpoint's name (canonical `key`, owner `owner`): one per port the
 * endpoint serves, the target its own name, its addresses as additional records. Null when the
 * name is no endpoint's.
 */
export function endpointSrvRecords(zone: Zone, key: string, owner: string): EndpointFind | null {
  const found = endpointsNamed(zone, key, true);
  if (!found) return null;
  const { entry, eps } = found;
  const ttl = zone.options.ttl;
  // Headless services without ports take them from the endpoints (as the bare-name SRV).
  const ports = entry.service.headless && entry.service.ports.length === 0
    ? entry.endpointPorts ?? []
    : entry.ports;
  const items: number[] = [];
  for (const port of ports) {
    for (const ep of eps) {
      const b = port.backends.find((x) => x.address === ep.address);
      if (b) items.push(b.port);
    }
  }
  const weight = coreDnsWeight(items.length);
  const records: ResourceRecord[] = [];
  for (const port of new Set(items)) {
    records.push({
      name: owner,
      type: RRType.SRV,
      class: RRClass.IN,
      ttl,
      data: { priority: 0, weight, port, target: key },
    });
  }
  const additional = records.length === 0
    ? []
    : eps.map((ep) => addressRecord(key, ep.address, ipFamilyOf(ep.address), ttl));
  return { records, additional };
}

/**
 * CoreDNS's SRV at a service's bare name (canonical `key`, `<svc>.<ns>.svc.<zone>`; owner
 * `owner`): a ClusterIP service's one per port (named or not) with the service's name as target,
 * a headless service's one per endpoint and port (its ports from the EndpointSlices when the
 * Service lists none), with CoreDNS's weights (100 shared over every address and port) and the
 * targets' addresses as additional records. Null when the name is no service's.
 */
export function serviceSrvRecords(zone: Zone, key: string, owner: string): EndpointFind | null {
  const found = serviceOf(zone, key, 2);
  if (!found) return null;
  const entry = found.entry;
  const svc = entry.service;
  const ttl = zone.options.ttl;
  const records: ResourceRecord[] = [];
  const additional: ResourceRecord[] = [];
  const srv = (weight: number, port: number, target: string): ResourceRecord => ({
    name: owner,
    type: RRType.SRV,
    class: RRClass.IN,
    ttl,
    data: { priority: 0, weight, port, target },
  });
  if (!svc.headless) {
    if (svc.clusterIPs.length === 0 || svc.ports.length === 0) return null;
    const weight = coreDnsWeight(svc.ports.length * svc.clusterIPs.length);
    for (const port of new Set(svc.ports.map((p) => p.port))) records.push(srv(weight, port, key));
    for (const vip of svc.clusterIPs) {
      additional.push(addressRecord(key, vip, ipFamilyOf(vip), ttl));
    }
    return { records, additional };
  }
  const opts = recordOptions(zone.options);
  const eps = publishedEndpoints(entry);
  const ports = svc.ports.length === 0 ? entry.endpointPorts ?? [] : entry.ports;
  // Endpoint by endpoint, each endpoint's ports in turn, as CoreDNS walks them.
  const portsOf = ports.map((p) => new Map(p.backends.map((b) => [b.address, b.port])));
  const items: { host: string; port: number; ep: Endpoint }[] = [];
  for (const ep of eps) {
    const host = `${endpointLabel(ep, opts)}.${key}`;
    if (!isValidName(host)) continue;
    for (const byAddress of portsOf) {
      const port = byAddress.get(ep.address);
      if (port !== undefined) items.push({ host, port, ep });
    }
  }
  const weight = coreDnsWeight(items.length);
  const targets = new Set<string>();
  const hosts = new Map<string, Set<IpText>>();
  for (const it of items) {
    const id = `${it.host}|${it.port}`;
    if (!targets.has(id)) {
      targets.add(id);
      records.push(srv(weight, it.port, it.host));
    }
    const set = hosts.get(it.host) ?? new Set<IpText>();
    hosts.set(it.host, set.add(it.ep.address));
  }
  for (const [host, set] of hosts) {
    for (const a of set) additional.push(addressRecord(host, a, ipFamilyOf(a), ttl));
  }
  return records.length > 0 ? { records, additional } : null;
}

/**
 * The records of a ClusterIP endpoint's name asked with `type` (canonical `key`, owner as
 * `owner`): null when no published endpoint of that service has this name (NXDOMAIN); an empty
 * list for another type (NODATA).
 */
export function endpointNameRecords(
  zone: Zone,
  key: string,
  type: number,
  owner: string,
): EndpointFind | null {
  const found = endpointsNamed(zone, key, false);
  if (!found) return null;
  if (type === RRType.SRV) return endpointSrvRecords(zone, key, owner);
  const ttl = zone.options.ttl;
  const records: ResourceRecord[] = [];
  if (type === RRType.A || type === RRType.AAAA || type === RRType.ANY) {
    for (const ep of found.eps) {
      const rr = addressRecord(owner, ep.address, ipFamilyOf(ep.address), ttl);
      if (type === RRType.ANY || rr.type === type) records.push(rr);
    }
  }
  if (type === RRType.ANY) records.push(...endpointSrvRecords(zone, key, owner)?.records ?? []);
  return { records, additional: [] };
}

/**
 * PTR records for a reverse name (`key`, canonical) naming an endpoint of ClusterIP services,
 * one per service (CoreDNS: `<ep>.<svc>.<ns>.svc.<zone>`), owner `owner`. Headless services'
 * endpoints are zone records already.
 */
export function endpointPtrRecords(zone: Zone, key: string, owner: string): ResourceRecord[] {
  if (zone.options.strictSpec || !zone.services || !zone.endpointsAt) return [];
  if (!key.endsWith(".arpa")) return [];
  const ip = parseReverseName(key);
  if (!ip) return [];
  const address: IpText = formatIp(ip);
  const opts = recordOptions(zone.options);
  const out: ResourceRecord[] = [];
  for (const serviceKey of zone.endpointsAt(address)) {
    const entry = zone.services.get(serviceKey);
    if (!entry || entry.service.headless || entry.service.type === "ExternalName") continue;
    const ep = publishedEndpoints(entry).find((e) => e.address === address);
    if (!ep) continue;
    const svc = entry.service;
    const target = `${endpointLabel(ep, opts)}.${svc.name}.${svc.namespace}.svc.${zone.domain}`
      .toLowerCase();
    if (!isValidName(target)) continue;
    out.push(nameRecord(owner, RRType.PTR, target, zone.options.ttl));
  }
  return out;
}
