/**
 * What CoreDNS answers about the endpoints of ClusterIP services, read from the service's entry
 * when asked instead of kept as records: `<endpoint>.<service>.<ns>.svc.<zone>` (its hostname,
 * pod name or dashed IP) with A/AAAA and SRV, and PTR for the endpoint's IP. A zone of 10,000
 * services and 100,000 endpoints would otherwise hold ~200,000 more names (~270 bytes each);
 * these are asked rarely. Not in strict mode (zone.ts RecordOptions). Pure.
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

/** The ClusterIP service a ClusterIP endpoint's name (`<ep>.<svc>.<ns>.svc.<zone>`) is under. */
function clusterIpEntry(zone: Zone, key: string): { entry: ServiceEntry; label: string } | null {
  if (zone.options.strictSpec || !zone.services) return null;
  const suffix = `.svc.${zone.domain}`;
  if (!key.endsWith(suffix)) return null;
  const labels = key.slice(0, -suffix.length).split(".");
  if (labels.length !== 3) return null;
  const entry = zone.services.get(`${labels[2]}/${labels[1]}`);
  if (!entry || entry.service.headless || entry.service.type === "ExternalName") return null;
  return { entry, label: labels[0] };
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
  const found = clusterIpEntry(zone, key);
  if (!found) return null;
  const opts = recordOptions(zone.options);
  const eps = publishedEndpoints(found.entry).filter((ep) =>
    endpointLabel(ep, opts) === found.label
  );
  if (eps.length === 0) return null;
  const ttl = zone.options.ttl;
  const address = (ep: Endpoint, name: string) =>
    addressRecord(name, ep.address, ipFamilyOf(ep.address), ttl);
  const records: ResourceRecord[] = [];
  const additional: ResourceRecord[] = [];
  if (type === RRType.A || type === RRType.AAAA || type === RRType.ANY) {
    for (const ep of eps) {
      const rr = address(ep, owner);
      if (type === RRType.ANY || rr.type === type) records.push(rr);
    }
  }
  if (type === RRType.SRV || type === RRType.ANY) {
    // CoreDNS: one SRV per port the endpoint serves, target the endpoint's own name.
    const items: { ep: Endpoint; port: number }[] = [];
    for (const port of found.entry.ports) {
      for (const ep of eps) {
        const b = port.backends.find((x) => x.address === ep.address);
        if (b) items.push({ ep, port: b.port });
      }
    }
    const weight = coreDnsWeight(items.length);
    const ports = new Set<number>();
    for (const it of items) {
      if (ports.has(it.port)) continue;
      ports.add(it.port);
      records.push({
        name: owner,
        type: RRType.SRV,
        class: RRClass.IN,
        ttl,
        data: { priority: 0, weight, port: it.port, target: key },
      });
    }
    if (type === RRType.SRV) { for (const ep of eps) additional.push(address(ep, key)); }
  }
  return { records, additional };
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
