/**
 * IP addresses and CIDRs: parse, canonical text, containment, arithmetic. Pure.
 * @module
 */

import type { IpFamily } from "./types.ts";

/** A parsed IP address. */
export interface IpAddress {
  readonly family: IpFamily;
  /** 4 or 16 bytes, network order. */
  readonly bytes: Uint8Array;
}

declare const ipTextBrand: unique symbol;

/**
 * An IP address as its canonical text (what {@link formatIp} writes: dotted quad, RFC 5952 IPv6).
 * Only the parsers make one, so a value of this type was parsed once at the edge; readers take
 * its family with {@link ipFamilyOf} and never parse it again.
 */
export type IpText = string & { readonly [ipTextBrand]: true };

/** A parsed CIDR, with the network address (host bits cleared). */
export interface Cidr {
  readonly family: IpFamily;
  readonly network: bigint;
  readonly prefix: number;
  /** Canonical text, for example `198.19.0.0/16`. */
  readonly text: string;
}

const V4_PART = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;

function parseV4(text: string): Uint8Array | null {
  const parts = text.split(".");
  if (parts.length !== 4) return null;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    if (!V4_PART.test(parts[i])) return null;
    out[i] = Number(parts[i]);
  }
  return out;
}

function parseV6(text: string): Uint8Array | null {
  if (text.includes("%")) return null;
  let head = text;
  let tailV4: Uint8Array | null = null;
  const lastColon = text.lastIndexOf(":");
  if (text.indexOf(".", lastColon) !== -1) {
    tailV4 = parseV4(text.slice(lastColon + 1));
    if (!tailV4) return null;
    head = text.slice(0, lastColon + 1) + "0:0";
  }
  const halves = head.split("::");
  if (halves.length > 2) return null;
  const parseGroups = (s: string): number[] | null => {
    if (s === "") return [];
    const groups = s.split(":");
    const out: number[] = [];
    for (const g of groups) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return null;
      out.push(parseInt(g, 16));
    }
    return out;
  };
  const left = parseGroups(halves[0]);
  const right = halves.length === 2 ? parseGroups(halves[1]) : [];
  if (!left || !right) return null;
  const total = left.length + right.length;
  if (halves.length === 1 && total !== 8) return null;
  if (halves.length === 2 && total > 7) return null;
  const groups = [...left, ...new Array(8 - total).fill(0), ...right];
  const out = new Uint8Array(16);
  for (let i = 0; i < 8; i++) {
    out[2 * i] = groups[i] >> 8;
    out[2 * i + 1] = groups[i] & 0xff;
  }
  if (tailV4) out.set(tailV4, 12);
  return out;
}

/** Parses an IPv4 or IPv6 address; returns null when the text is not one. */
export function parseIp(text: string): IpAddress | null {
  if (text.includes(":")) {
    const bytes = parseV6(text);
    return bytes ? { family: 6, bytes } : null;
  }
  const bytes = parseV4(text);
  return bytes ? { family: 4, bytes } : null;
}

/** Formats an address as canonical text (RFC 5952 for IPv6). */
export function formatIp(ip: IpAddress): IpText {
  const b = ip.bytes;
  if (ip.family === 4) return `${b[0]}.${b[1]}.${b[2]}.${b[3]}` as IpText;
  const groups: number[] = [];
  for (let i = 0; i < 8; i++) groups.push((b[2 * i] << 8) | b[2 * i + 1]);
  // Longest run of two or more zero groups becomes "::".
  let bestStart = -1, bestLen = 0;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(":") as IpText;
  return `${hex.slice(0, bestStart).join(":")}::${
    hex.slice(bestStart + bestLen).join(":")
  }` as IpText;
}

/** Parses an address into its canonical text, or null when it is not one. */
export function canonicalIp(text: string): IpText | null {
  const ip = parseIp(text);
  return ip ? formatIp(ip) : null;
}

/** The family of a parsed address (canonical IPv4 text has no colon). */
export function ipFamilyOf(ip: IpText): IpFamily {
  return ip.includes(":") ? 6 : 4;
}

/** Address as an unsigned integer. */
export function ipToBigInt(ip: IpAddress): bigint {
  let n = 0n;
  for (const byte of ip.bytes) n = (n << 8n) | BigInt(byte);
  return n;
}

/** Integer back to an address of the given family. */
export function bigIntToIp(n: bigint, family: IpFamily): IpAddress {
  const len = family === 4 ? 4 : 16;
  const bytes = new Uint8Array(len);
  for (let i = len - 1; i >= 0; i--) {
    bytes[i] = Number(n & 0xffn);
    n >>= 8n;
  }
  return { family, bytes };
}

/** Number of bits in an address of the family. */
export function familyBits(family: IpFamily): number {
  return family === 4 ? 32 : 128;
}

/**
 * Parses a CIDR such as `198.19.0.0/16` or `2001:db8::/64`. Host bits must be zero when `strict`.
 * Returns an error string when the text is not a CIDR.
 */
export function parseCidr(text: string, strict = false): Cidr | string {
  const slash = text.indexOf("/");
  if (slash < 0) return `"${text}" is not a CIDR: missing "/prefix"`;
  const ip = parseIp(text.slice(0, slash));
  if (!ip) return `"${text}" is not a CIDR: address is invalid`;
  const prefixText = text.slice(slash + 1);
  const bits = familyBits(ip.family);
  if (!/^\d{1,3}$/.test(prefixText) || Number(prefixText) > bits) {
    return `"${text}" is not a CIDR: prefix is invalid`;
  }
  const prefix = Number(prefixText);
  const value = ipToBigInt(ip);
  const hostMask = (1n << BigInt(bits - prefix)) - 1n;
  if (strict && (value & hostMask) !== 0n) {
    return `"${text}" is not a CIDR: host bits are set`;
  }
  const network = value & ~hostMask & ((1n << BigInt(bits)) - 1n);
  return new ParsedCidr(
    ip.family,
    network,
    prefix,
    `${formatIp(bigIntToIp(network, ip.family))}/${prefix}`,
  );
}

/** A Cidr that serialises as its text (JSON has no bigint; fingerprints stringify services). */
class ParsedCidr implements Cidr {
  constructor(
    readonly family: IpFamily,
    readonly network: bigint,
    readonly prefix: number,
    readonly text: string,
  ) {}
  toJSON(): string {
    return this.text;
  }
}

/** Number of addresses in a CIDR. */
export function cidrSize(cidr: Cidr): bigint {
  return 1n << BigInt(familyBits(cidr.family) - cidr.prefix);
}

/** True when the address lies inside the CIDR. */
export function cidrContains(cidr: Cidr, ip: IpAddress | string): boolean {
  const addr = typeof ip === "string" ? parseIp(ip) : ip;
  if (!addr || addr.family !== cidr.family) return false;
  const bits = familyBits(cidr.family);
  const shift = BigInt(bits - cidr.prefix);
  return (ipToBigInt(addr) >> shift) === (cidr.network >> shift);
}

/** The reverse-lookup name of an address, without trailing dot (`4.3.2.1.in-addr.arpa`). */
export function reverseName(address: IpAddress | IpText): string {
  const ip = typeof address === "string" ? parseIp(address)! : address;
  if (ip.family === 4) {
    return `${ip.bytes[3]}.${ip.bytes[2]}.${ip.bytes[1]}.${ip.bytes[0]}.in-addr.arpa`;
  }
  const nibbles: string[] = [];
  for (let i = 15; i >= 0; i--) {
    nibbles.push((ip.bytes[i] & 0xf).toString(16), (ip.bytes[i] >> 4).toString(16));
  }
  return `${nibbles.join(".")}.ip6.arpa`;
}

/** Parses a reverse-lookup name (case-insensitive, no trailing dot) back to an address. */
export function parseReverseName(name: string): IpAddress | null {
  const lower = name.toLowerCase();
  if (lower.endsWith(".in-addr.arpa")) {
    const parts = lower.slice(0, -".in-addr.arpa".length).split(".");
    if (parts.length !== 4) return null;
    return parseIp(parts.reverse().join("."));
  }
  if (lower.endsWith(".ip6.arpa")) {
    const parts = lower.slice(0, -".ip6.arpa".length).split(".");
    if (parts.length !== 32 || !parts.every((p) => /^[0-9a-f]$/.test(p))) return null;
    const bytes = new Uint8Array(16);
    for (let i = 0; i < 16; i++) {
      bytes[15 - i] = parseInt(parts[2 * i], 16) | (parseInt(parts[2 * i + 1], 16) << 4);
    }
    return { family: 6, bytes };
  }
  return null;
}
