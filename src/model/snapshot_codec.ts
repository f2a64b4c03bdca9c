/**
 * A snapshot as text and back: what svcgate saves in `--state-dir` after each committed sync so
 * that, after a restart, DNS answers at once from what the kernel table (adopted, still in place)
 * routes. Pure: text in, text out; the file I/O is src/daemon/saved_snapshot.ts.
 *
 * The text is a header line and a JSON body:
 *
 * ```
 * svcgate-snapshot 1 0.1.0 1733540000000 1f2e3d4c5b6a7 10000
 * {"namespaces":[...],"services":[[{...Service...},[["web-abc",[["http","TCP",8080]],[[...endpoint...]],4]],fingerprint],...]}
 * ```
 *
 * (magic, format, the svcgate version that wrote it, when, a 53-bit hash of the body, services).
 * Services keep their model fields, endpoint sets and fingerprint, so decoding rebuilds the
 * entries the source made (snapshot.ts restoredServiceEntry), without resolving or hashing again. A body whose hash does not match (a torn or damaged file), a header of another format
 * or svcgate version, or a body that does not have the model's shape is refused with a message.
 * @module
 */

import { entrySets, restoredServiceEntry, type ServiceEntry, type Snapshot } from "./snapshot.ts";
import { PersistentMap } from "./persistent_map.ts";
import { hash53 } from "./hash.ts";
import { canonicalIp, type Cidr, type IpText, parseCidr } from "./ip.ts";
import { endpointSet } from "./endpoint_set.ts";
import type { Endpoint, EndpointPort, EndpointSet, IpFamily, Protocol, Service } from "./types.ts";

/** The first word of a saved snapshot. */
export const SNAPSHOT_MAGIC = "svcgate-snapshot";
/** The body's layout; a reader refuses any other. */
export const SNAPSHOT_FORMAT = 1;

/** What a decode found. */
export type DecodedSnapshot =
  | { readonly ok: true; readonly snapshot: Snapshot; readonly savedAt: number }
  | {
    readonly ok: false;
    /** `foreign`: another format or svcgate version; `corrupt`: not a whole, valid snapshot. */
    readonly kind: "foreign" | "corrupt";
    readonly error: string;
  };

type EncodedEndpoint = (string | number | string[] | null)[];
type EncodedSet = [string, [string, Protocol, number][], EncodedEndpoint[], IpFamily | null];

const READY = 1, SERVING = 2, TERMINATING = 4;

function encodeEndpoint(e: Endpoint): EncodedEndpoint {
  const flags = (e.ready ? READY : 0) | (e.serving ? SERVING : 0) |
    (e.terminating ? TERMINATING : 0);
  const out: EncodedEndpoint = [
    e.address,
    flags,
    e.nodeName ?? null,
    e.zone ?? null,
    e.hostname ?? null,
    e.zoneHints ? [...e.zoneHints] : null,
    e.nodeHints ? [...e.nodeHints] : null,
    e.podName ?? null,
  ];
  // Most endpoints have only an address and flags: trailing nulls are left out.
  while (out.length > 2 && out[out.length - 1] === null) out.pop();
  return out;
}

/** The sets of an entry; one set made of its endpoints when it was not built from sets. */
function setsOf(entry: ServiceEntry): readonly EndpointSet[] {
  const sets = entrySets(entry);
  if (sets) return sets;
  const ports: EndpointPort[] = (entry.endpointPorts ?? []).map((p) => ({
    name: p.servicePort.name,
    protocol: p.servicePort.protocol,
    port: p.servicePort.port,
  }));
  const s = entry.service;
  return [{
    namespace: s.namespace,
    serviceName: s.name,
    id: `${s.name}-saved`,
    ports,
    endpoints: entry.endpoints,
  }];
}

/** Services encoded per step of {@link encodeSnapshotSteps} (~2-5 ms each at 10 endpoints). */
const ENCODE_STEP = 100;

/**
 * The text of a snapshot: its services (model fields and endpoint sets) and namespaces. `version`
 * is the svcgate version writing it, `savedAt` epoch milliseconds. A generator: it yields every
 * few hundred services so the caller can give the event loop a turn (DNS may answer on this
 * thread), and returns the text. Every save encodes every service: a WeakMap cache of each
 * entry's text grew the heap by gigabytes under churn (daemon/saved_snapshot.ts).
 *
 * @example
 * ```ts
 * const steps = encodeSnapshotSteps(snapshot, VERSION, Date.now());
 * let r = steps.next();
 * while (!r.done) r = steps.next();
 * const text = r.value;
 * ```
 */
export function* encodeSnapshotSteps(
  snapshot: Snapshot,
  version: string,
  savedAt: number,
): Generator<void, string> {
  const services: string[] = [];
  let sinceYield = 0;
  for (const entry of snapshot.services.values()) {
    const sets: EncodedSet[] = setsOf(entry).map((set) => [
      set.id,
      set.ports.map((p) => [p.name, p.protocol, p.port]),
      set.endpoints.map(encodeEndpoint),
      set.addressFamily ?? null,
    ]);
    const text = JSON.stringify([entry.service, sets, entry.fingerprint]);
    if (++sinceYield >= ENCODE_STEP) {
      sinceYield = 0;
      yield;
    }
    services.push(text);
  }
  const body = `{"namespaces":${JSON.stringify([...snapshot.namespaces].sort())},"services":[${
    services.join(",")
  }]}`;
  yield;
  const hash = hash53(body).toString(16);
  return `${SNAPSHOT_MAGIC} ${SNAPSHOT_FORMAT} ${version} ${savedAt} ${hash} ${services.length}\n${body}`;
}

/** {@link encodeSnapshotSteps} in one call. */
export function encodeSnapshot(snapshot: Snapshot, version: string, savedAt: number): string {
  const steps = encodeSnapshotSteps(snapshot, version, savedAt);
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
  }
}

/** Thrown inside decoding for a body without the model's shape; caught in {@link decodeSnapshot}. */
class ShapeError extends Error {}

function need(ok: boolean, what: string): void {
  if (!ok) throw new ShapeError(what);
}

const isString = (v: unknown): v is string => typeof v === "string";
const isStrings = (v: unknown): v is string[] => Array.isArray(v) && v.every(isString);
const PROTOCOLS = new Set(["TCP", "UDP", "SCTP"]);
const ADDRESS = /^[0-9a-f.:]{2,39}$/;

function ip(text: unknown, where: string): IpText {
  need(isString(text), `${where}: an address must be a string, got ${JSON.stringify(text)}`);
  const canonical = canonicalIp(text as string);
  need(canonical === text, `${where}: ${JSON.stringify(text)} is not a canonical IP address`);
  return canonical!;
}

function decodeEndpoint(raw: unknown, where: string): Endpoint {
  need(Array.isArray(raw) && raw.length >= 2, `${where}: an endpoint must be an array`);
  const a = raw as unknown[];
  const flags = a[1];
  need(Number.isInteger(flags), `${where}: endpoint flags must be an integer`);
  // Written from parsed addresses and under the body's hash: a shape check, not a parse (parsing
  // 100,000 addresses again took ~0.8 s of a restart at 10,000 services).
  need(
    isString(a[0]) && ADDRESS.test(a[0] as string),
    `${where}: ${JSON.stringify(a[0])} is not an address`,
  );
  const e: {
    -readonly [K in keyof Endpoint]: Endpoint[K];
  } = {
    address: a[0] as IpText,
    ready: ((flags as number) & READY) !== 0,
    serving: ((flags as number) & SERVING) !== 0,
    terminating: ((flags as number) & TERMINATING) !== 0,
  };
  const text = (i: number, key: "nodeName" | "zone" | "hostname" | "podName") => {
    if (a[i] === null || a[i] === undefined) return;
    need(isString(a[i]), `${where}: endpoint ${key} must be a string`);
    e[key] = a[i] as string;
  };
  text(2, "nodeName");
  text(3, "zone");
  text(4, "hostname");
  for (const [i, key] of [[5, "zoneHints"], [6, "nodeHints"]] as const) {
    if (a[i] === null || a[i] === undefined) continue;
    need(isStrings(a[i]), `${where}: endpoint ${key} must be a list of strings`);
    e[key] = a[i] as string[];
  }
  text(7, "podName");
  return e;
}

function decodeService(raw: unknown, where: string): Service {
  need(typeof raw === "object" && raw !== null && !Array.isArray(raw), `${where}: not an object`);
  const s = raw as Record<string, unknown>;
  need(isString(s.namespace) && isString(s.name), `${where}: namespace and name must be strings`);
  need(isString(s.type), `${where}: type must be a string`);
  need(Array.isArray(s.ports), `${where}: ports must be a list`);
  for (const p of s.ports as unknown[]) {
    const port = p as Record<string, unknown>;
    need(
      typeof p === "object" && p !== null && isString(port.name) &&
        PROTOCOLS.has(port.protocol as string) && Number.isInteger(port.port),
      `${where}: a port must have a name, a protocol and a number`,
    );
  }
  for (const key of ["clusterIPs", "externalIPs", "loadBalancerIPs"] as const) {
    need(Array.isArray(s[key]), `${where}: ${key} must be a list`);
    (s[key] as unknown[]).forEach((t) => ip(t, `${where} ${key}`));
  }
  need(isStrings(s.loadBalancerSourceRanges), `${where}: loadBalancerSourceRanges`);
  // CIDRs are written as their text (Cidr.toJSON): parsed again here, at the edge.
  const ranges: Cidr[] = (s.loadBalancerSourceRanges as string[]).map((t) => {
    const c = parseCidr(t);
    need(typeof c !== "string", `${where}: ${c}`);
    return c as Cidr;
  });
  return { ...s, loadBalancerSourceRanges: ranges } as unknown as Service;
}

function decodeSet(raw: unknown, service: Service, where: string): EndpointSet {
  need(
    Array.isArray(raw) && raw.length === 4,
    `${where}: an endpoint set must be [id, ports, endpoints, family]`,
  );
  const [id, ports, endpoints, family] = raw as unknown[];
  need(isString(id), `${where}: the set id must be a string`);
  need(
    Array.isArray(ports) && Array.isArray(endpoints),
    `${where}: ports and endpoints must be lists`,
  );
  need(family === null || family === 4 || family === 6, `${where}: address family must be 4 or 6`);
  const setWhere = `${where} set ${JSON.stringify(id)}`;
  return endpointSet({
    namespace: service.namespace,
    serviceName: service.name,
    id: id as string,
    ports: (ports as unknown[]).map((p) => {
      need(
        Array.isArray(p) && isString(p[0]) && PROTOCOLS.has(p[1]) && Number.isInteger(p[2]),
        `${setWhere}: a port must be [name, protocol, number]`,
      );
      const [name, protocol, port] = p as [string, Protocol, number];
      return { name, protocol, port };
    }),
    endpoints: (endpoints as unknown[]).map((e, i) =>
      decodeEndpoint(e, `${setWhere} endpoint ${i}`)
    ),
    ...(family === null ? {} : { addressFamily: family as IpFamily }),
  });
}

/**
 * The snapshot in a text of {@link encodeSnapshot}, written by svcgate `version`; its version
 * number is 0 (it was committed by another process). Never throws.
 *
 * @example
 * ```ts
 * const r = decodeSnapshot(text, VERSION);
 * if (!r.ok) log.warn(r.error);
 * ```
 */
export function decodeSnapshot(text: string, version: string): DecodedSnapshot {
  const nl = text.indexOf("\n");
  const header = (nl < 0 ? text.slice(0, 200) : text.slice(0, nl)).split(" ");
  if (header[0] !== SNAPSHOT_MAGIC || header.length !== 6) {
    return {
      ok: false,
      kind: "corrupt",
      error: "it does not start with a svcgate snapshot header",
    };
  }
  const [, format, writer, savedAtText, hash, countText] = header;
  if (format !== String(SNAPSHOT_FORMAT) || writer !== version) {
    return {
      ok: false,
      kind: "foreign",
      error: `it was written by svcgate ${JSON.stringify(writer)} in format ${
        JSON.stringify(format)
      }; this is svcgate "${version}", format ${SNAPSHOT_FORMAT}`,
    };
  }
  if (nl < 0) return { ok: false, kind: "corrupt", error: "it ends after its header" };
  const body = text.slice(nl + 1);
  if (hash53(body).toString(16) !== hash) {
    return {
      ok: false,
      kind: "corrupt",
      error: "its content does not match the hash in its header (torn or damaged)",
    };
  }
  try {
    const doc = JSON.parse(body) as { namespaces?: unknown; services?: unknown };
    need(isStrings(doc.namespaces), "namespaces must be a list of strings");
    need(Array.isArray(doc.services), "services must be a list");
    const raw = doc.services as unknown[];
    need(
      String(raw.length) === countText,
      `it holds ${raw.length} services, its header says ${countText}`,
    );
    const entries: [string, ServiceEntry][] = [];
    raw.forEach((item, i) => {
      need(
        Array.isArray(item) && item.length === 3 && Number.isSafeInteger(item[2]),
        `service ${i}: must be [service, sets, fingerprint]`,
      );
      const [s, sets, fingerprint] = item as [unknown, unknown, number];
      const service = decodeService(s, `service ${i}`);
      const where = `service ${i} (${service.namespace}/${service.name})`;
      need(Array.isArray(sets), `${where}: sets must be a list`);
      const entry = restoredServiceEntry(
        service,
        (sets as unknown[]).map((set) => decodeSet(set, service, where)),
        fingerprint,
      );
      entries.push([entry.key, entry]);
    });
    return {
      ok: true,
      savedAt: Number(savedAtText),
      snapshot: {
        version: 0,
        services: PersistentMap.from(entries),
        namespaces: new Set(doc.namespaces as string[]),
      },
    };
  } catch (e) {
    const why = e instanceof ShapeError
      ? e.message
      : e instanceof SyntaxError
      ? `its body is not JSON: ${e.message}`
      : `cannot read it: ${(e as Error).message}`;
    return { ok: false, kind: "corrupt", error: why };
  }
}

/**
 * The part of a saved snapshot the kernel still routes: services whose every ClusterIP is in
 * `routedVips` (the adopted table's), plus those without one (headless, ExternalName: their
 * answers are not VIPs). Also returns how many were left out. So a restored name never resolves
 * to a VIP that does not route, even when the newest commits never reached the file.
 */
export function routedOnly(
  snapshot: Snapshot,
  routedVips: ReadonlySet<string>,
): { readonly snapshot: Snapshot; readonly dropped: readonly string[] } {
  const dropped: string[] = [];
  let services = snapshot.services instanceof PersistentMap
    ? snapshot.services as PersistentMap<ServiceEntry>
    : PersistentMap.from(snapshot.services);
  snapshot.services.forEach((entry, key) => {
    const s = entry.service;
    if (s.headless || s.type === "ExternalName") return;
    if (s.clusterIPs.every((vip) => routedVips.has(vip))) return;
    dropped.push(key);
    services = services.delete(key);
  });
  return { snapshot: { ...snapshot, services }, dropped };
}
