/**
 * Who may recurse: the CIDRs allowed to have names outside svcgate's zones forwarded, checked
 * against socket addresses (raw `sockaddr` bytes on the FFI path, text on the others) without
 * allocating on the hot path. Pure.
 * @module
 */

import { bigIntToIp, type Cidr, parseIp } from "../../model/ip.ts";

/** The 4 bytes at `buf[off..]` as an unsigned 32-bit number (network order). */
function u32At(buf: Uint8Array, off: number): number {
  return ((buf[off] << 24) | (buf[off + 1] << 16) | (buf[off + 2] << 8) | buf[off + 3]) >>> 0;
}

/**
 * CIDRs allowed to recurse, checked against raw socket addresses without allocating.
 *
 * @example
 * ```ts
 * new AllowList([parseCidr("127.0.0.0/8") as Cidr]).allowsAddress("127.0.0.1"); // true
 * ```
 */
export class AllowList {
  #v4: { net: number; mask: number }[] = [];
  #v6: { bytes: Uint8Array; prefix: number }[] = [];

  constructor(cidrs: readonly Cidr[]) {
    this.replace(cidrs);
  }

  /**
   * Allows exactly these CIDRs from now on (the node's addresses changed); the transports hold
   * this object, so they see the new list at their next packet.
   */
  replace(cidrs: readonly Cidr[]): void {
    const v4: { net: number; mask: number }[] = [];
    const v6: { bytes: Uint8Array; prefix: number }[] = [];
    for (const c of cidrs) {
      const bytes = bigIntToIp(c.network, c.family).bytes;
      if (c.family === 4) {
        const mask = c.prefix === 0 ? 0 : (0xffffffff << (32 - c.prefix)) >>> 0;
        v4.push({ net: (u32At(bytes, 0) & mask) >>> 0, mask });
      } else {
        v6.push({ bytes, prefix: c.prefix });
      }
    }
    this.#v4 = v4;
    this.#v6 = v6;
  }

  /** True when the IPv4 address (as an unsigned 32-bit number) is inside a v4 CIDR. */
  allowsV4(addr: number): boolean {
    for (const c of this.#v4) if (((addr & c.mask) >>> 0) === c.net) return true;
    return false;
  }

  /** True when the 16 bytes at `buf[off..]` are an allowed IPv6 address (v4-mapped ones as v4). */
  allowsV6(buf: Uint8Array, off: number): boolean {
    let mapped = true;
    for (let i = 0; i < 10; i++) if (buf[off + i] !== 0) mapped = false;
    if (mapped && buf[off + 10] === 0xff && buf[off + 11] === 0xff) {
      return this.allowsV4(u32At(buf, off + 12));
    }
    for (const c of this.#v6) {
      let ok = true;
      const full = c.prefix >> 3;
      for (let i = 0; i < full; i++) {
        if (buf[off + i] !== c.bytes[i]) {
          ok = false;
          break;
        }
      }
      if (!ok) continue;
      const rest = c.prefix & 7;
      if (rest > 0) {
        const mask = (0xff << (8 - rest)) & 0xff;
        if ((buf[off + full] & mask) !== (c.bytes[full] & mask)) continue;
      }
      return true;
    }
    return false;
  }

  /** Checks a Linux `sockaddr_in`/`sockaddr_in6` at `buf[off..]`. */
  allowsSockaddr(buf: Uint8Array, off: number): boolean {
    const family = buf[off] | (buf[off + 1] << 8);
    if (family === 2) return this.allowsV4(u32At(buf, off + 4));
    if (family === 10) return this.allowsV6(buf, off + 8);
    return false;
  }

  /** Checks an address in text form (an IPv6 zone id, `%eth0`, is ignored). */
  allowsAddress(text: string): boolean {
    const zone = text.indexOf("%");
    const ip = parseIp(zone < 0 ? text : text.slice(0, zone));
    if (!ip) return false;
    return ip.family === 4 ? this.allowsV4(u32At(ip.bytes, 0)) : this.allowsV6(ip.bytes, 0);
  }
}
