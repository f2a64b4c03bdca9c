/**
 * Parsed model values written as text in tests: the model holds addresses and CIDRs parsed once
 * (IpText, Cidr), and a test's literal goes through the same parser, failing loudly when it is not
 * an address.
 * @module
 */

import { canonicalIp, type Cidr, type IpText, parseCidr } from "../../src/model/ip.ts";

/** An address literal as the parsers would hold it. */
export function ip(text: string): IpText {
  const parsed = canonicalIp(text);
  if (parsed === null) throw new Error(`Test literal "${text}" is not an IP address`);
  return parsed;
}

/** Several address literals. */
export function ips(...texts: string[]): IpText[] {
  return texts.map(ip);
}

/** A CIDR literal as the parsers would hold it. */
export function cidr(text: string): Cidr {
  const parsed = parseCidr(text);
  if (typeof parsed === "string") throw new Error(`Test literal: ${parsed}`);
  return parsed;
}
