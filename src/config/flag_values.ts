/**
 * Flag values from text: durations as Go writes them, sizes, `IP:PORT`, CIDR lists, upstreams,
 * `CIDR=NAMESPACE` lists and label lists. Each returns the value, or null or the problem as text.
 * Pure.
 * @module
 */

import { type Cidr, parseCidr, parseIp } from "../model/ip.ts";
import type { ClientNamespace, HostPort } from "./flags.ts";

/** Parses a size in bytes: `1048576`, `512KiB`, `16MiB` or `1GiB`. */
export function parseSize(text: string): number | null {
  const m = text.match(/^(\d+)(B|KiB|MiB|GiB)?$/);
  if (!m) return null;
  return Number(m[1]) * { B: 1, KiB: 1024, MiB: 2 ** 20, GiB: 2 ** 30 }[m[2] ?? "B"]!;
}

/** Parses `IP:PORT` or `[IPv6]:PORT`. */
export function parseHostPort(text: string): HostPort | string {
  const m = text.match(/^\[([^\]]+)\]:(\d+)$/) ?? text.match(/^([^:]+):(\d+)$/);
  if (!m) return "expected IP:PORT or [IPv6]:PORT";
  if (!parseIp(m[1])) return `"${m[1]}" is not an IP address`;
  const port = Number(m[2]);
  if (port < 0 || port > 65535) return `${port} is not a port (0-65535)`;
  return { hostname: m[1], port };
}

export function parseCidrList(text: string): readonly Cidr[] | string {
  if (text === "") return [];
  const out: Cidr[] = [];
  for (const part of text.split(",")) {
    const cidr = parseCidr(part.trim());
    if (typeof cidr === "string") return cidr.replace(/^"[^"]*" is not a CIDR: /, "");
    out.push(cidr);
  }
  return out;
}

export function parseUpstream(text: string): string | null {
  const hp = parseHostPort(text);
  if (typeof hp !== "string") return text.startsWith("[") ? text : `${hp.hostname}:${hp.port}`;
  const ip = parseIp(text);
  if (!ip) return null;
  return ip.family === 6 ? `[${text}]:53` : `${text}:53`;
}

const NAMESPACE = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/** Parses `CIDR=NAMESPACE[,...]`; returns the problem as text. */
export function parseClientNamespaces(text: string): ClientNamespace[] | string {
  if (text === "") return [];
  const out: ClientNamespace[] = [];
  for (const part of text.split(",")) {
    const item = part.trim();
    const eq = item.indexOf("=");
    if (eq < 0) return `"${item}" is not CIDR=NAMESPACE`;
    const cidr = parseCidr(item.slice(0, eq).trim());
    if (typeof cidr === "string") return cidr;
    const namespace = item.slice(eq + 1).trim();
    if (!NAMESPACE.test(namespace)) {
      return `"${namespace}" is not a namespace name (lower-case letters, digits and "-", at most 63)`;
    }
    out.push({ cidr, namespace });
  }
  return out;
}

/** `KEY=VALUE[,KEY=VALUE...]` (as kubelet's --node-labels) into a record, or why not. */
export function parseLabels(text: string): Record<string, string> | string {
  const out: Record<string, string> = {};
  if (text === "") return out;
  for (const part of text.split(",")) {
    const eq = part.indexOf("=");
    const key = eq < 0 ? part : part.slice(0, eq);
    if (
      eq < 0 ||
      !/^([a-z0-9]([-a-z0-9.]*[a-z0-9])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/.test(key)
    ) {
      return `"${part}" is not KEY=VALUE with a label key`;
    }
    const v = part.slice(eq + 1);
    if (!/^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$/.test(v)) {
      return `"${v}" is not a label value (letters, digits, "-", "_", ".")`;
    }
    out[key] = v;
  }
  return out;
}
