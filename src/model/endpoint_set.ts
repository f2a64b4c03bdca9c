/**
 * Endpoint sets as the sources keep them: the endpoints packed into one string, made into
 * {@link Endpoint} objects on each read. An endpoint object with its address string costs ~110
 * bytes in Deno's V8 (no pointer compression); its packed line ~25. At 100,000 endpoints that
 * is ~9 MB less, and only a changed service's resolution ever reads them. Pure.
 * @module
 */

import type { IpText } from "./ip.ts";
import type { Endpoint, EndpointPort, EndpointSet, IpFamily } from "./types.ts";
import { EMPTY_LIST } from "./types.ts";

// One line per endpoint: address, flags, nodeName, zone, hostname[, zone hints, node hints]
// [, podName], separated by tabs; hints are comma-joined (names of zones and nodes hold no
// commas).
const FIELD = "\t";
const LINE = "\n";
const LIST = ",";
const READY = 1, SERVING = 2, TERMINATING = 4, HAS_NODE = 8, HAS_ZONE = 16, HAS_HOST = 32;
const HAS_ZONE_HINTS = 64, HAS_NODE_HINTS = 128, HAS_POD = 256;
/** Flags are written as one character from "0" up. */
const FLAG_BASE = 48;

function packable(text: string | undefined): boolean {
  return text === undefined || (!text.includes(FIELD) && !text.includes(LINE));
}

function packableList(list: readonly string[] | undefined): boolean {
  return list === undefined || list.every((t) => packable(t) && !t.includes(LIST) && t !== "");
}

/** The endpoints as lines, or null when a text holds a separator (no valid object does). */
function pack(endpoints: readonly Endpoint[]): string | null {
  const lines: string[] = [];
  for (const ep of endpoints) {
    if (![ep.address, ep.nodeName, ep.zone, ep.hostname, ep.podName].every(packable)) {
      return null;
    }
    if (!packableList(ep.zoneHints) || !packableList(ep.nodeHints)) return null;
    const flags = (ep.ready ? READY : 0) | (ep.serving ? SERVING : 0) |
      (ep.terminating ? TERMINATING : 0) | (ep.nodeName !== undefined ? HAS_NODE : 0) |
      (ep.zone !== undefined ? HAS_ZONE : 0) | (ep.hostname !== undefined ? HAS_HOST : 0) |
      (ep.zoneHints !== undefined ? HAS_ZONE_HINTS : 0) |
      (ep.nodeHints !== undefined ? HAS_NODE_HINTS : 0) |
      (ep.podName !== undefined ? HAS_POD : 0);
    let line = ep.address + FIELD + String.fromCharCode(FLAG_BASE + flags) + FIELD +
      (ep.nodeName ?? "") + FIELD + (ep.zone ?? "") + FIELD + (ep.hostname ?? "");
    // Most endpoints have no hints: their lines stay as short as before.
    if (ep.zoneHints !== undefined || ep.nodeHints !== undefined) {
      line += FIELD + (ep.zoneHints ?? []).join(LIST) + FIELD + (ep.nodeHints ?? []).join(LIST);
    }
    // The pod name, when kept, comes last.
    if (ep.podName !== undefined) line += FIELD + ep.podName;
    lines.push(line);
  }
  return lines.join(LINE);
}

/** The endpoints of {@link pack}'s text, as new objects. */
function unpack(packed: string): Endpoint[] {
  const out: Endpoint[] = [];
  let at = 0;
  while (at < packed.length) {
    let end = packed.indexOf(LINE, at);
    if (end < 0) end = packed.length;
    const a = packed.indexOf(FIELD, at);
    // Packed from an Endpoint's address: canonical already.
    const address = packed.slice(at, a) as IpText;
    const flags = packed.charCodeAt(a + 1) - FLAG_BASE;
    const n = a + 3;
    const z = packed.indexOf(FIELD, n) + 1;
    const h = packed.indexOf(FIELD, z) + 1;
    const hinted = (flags & (HAS_ZONE_HINTS | HAS_NODE_HINTS)) !== 0;
    const hasPod = (flags & HAS_POD) !== 0;
    // With hints or a pod name the hostname ends at the next field; two hint fields follow,
    // then the pod name.
    const hEnd = hinted || hasPod ? packed.indexOf(FIELD, h) : end;
    const ep: {
      address: IpText;
      ready: boolean;
      serving: boolean;
      terminating: boolean;
      nodeName?: string;
      zone?: string;
      hostname?: string;
      zoneHints?: readonly string[];
      nodeHints?: readonly string[];
      podName?: string;
    } = {
      address,
      ready: (flags & READY) !== 0,
      serving: (flags & SERVING) !== 0,
      terminating: (flags & TERMINATING) !== 0,
    };
    if (flags & HAS_NODE) ep.nodeName = packed.slice(n, z - 1);
    if (flags & HAS_ZONE) ep.zone = packed.slice(z, h - 1);
    if (flags & HAS_HOST) ep.hostname = packed.slice(h, hEnd);
    let next = hEnd + 1;
    if (hinted) {
      const zh = next;
      const nh = packed.indexOf(FIELD, zh) + 1;
      const nhEnd = hasPod ? packed.indexOf(FIELD, nh) : end;
      const list = (text: string) => text === "" ? [] : text.split(LIST);
      if (flags & HAS_ZONE_HINTS) ep.zoneHints = list(packed.slice(zh, nh - 1));
      if (flags & HAS_NODE_HINTS) ep.nodeHints = list(packed.slice(nh, nhEnd));
      next = nhEnd + 1;
    }
    if (hasPod) ep.podName = packed.slice(next, end);
    out.push(ep);
    at = end + 1;
  }
  return out;
}

class PackedEndpointSet implements EndpointSet {
  readonly #packed: string;
  readonly triggerTime?: number;
  readonly addressFamily?: IpFamily;

  constructor(
    readonly namespace: string,
    readonly serviceName: string,
    readonly id: string,
    readonly ports: readonly EndpointPort[],
    packed: string,
    triggerTime: number | undefined,
    addressFamily: IpFamily | undefined,
  ) {
    this.#packed = packed;
    if (triggerTime !== undefined) this.triggerTime = triggerTime;
    if (addressFamily !== undefined) this.addressFamily = addressFamily;
  }

  /** New objects on each read: read once per use. */
  get endpoints(): readonly Endpoint[] {
    return this.#packed === "" ? EMPTY_LIST : unpack(this.#packed);
  }

  toJSON(): EndpointSet {
    const { namespace, serviceName, id, ports, endpoints } = this;
    return { namespace, serviceName, id, ports, endpoints };
  }
}

/**
 * An immutable endpoint set with its endpoints packed (see the module doc); a plain frozen
 * object when one of their texts cannot be packed.
 *
 * @example
 * ```ts
 * const set = endpointSet({ namespace: "default", serviceName: "web", id: "web-1", ports: [],
 *   endpoints: [{ address: "198.18.0.10", ready: true, serving: true, terminating: false }] });
 * set.endpoints[0].address; // "198.18.0.10"
 * ```
 */
export function endpointSet(fields: EndpointSet): EndpointSet {
  const packed = pack(fields.endpoints);
  if (packed === null) {
    // The model is immutable: the caller's list and endpoints are frozen copies here.
    const endpoints = Object.freeze(fields.endpoints.map((ep) => Object.freeze({ ...ep })));
    return Object.freeze({ ...fields, endpoints });
  }
  return Object.freeze(
    new PackedEndpointSet(
      fields.namespace,
      fields.serviceName,
      fields.id,
      fields.ports,
      packed,
      fields.triggerTime,
      fields.addressFamily,
    ),
  );
}
