/**
 * Who may recurse: the CIDRs allowed to have names outside svcgate's zones forwarded, checked
 * against socket addresses (raw `sockaddr` bytes on the FFI path, text on the others) without
 * allocating on the hot path. Pure.
 * @module
 */

import { bigIntToIp, type Cidr } from "../../model/ip.ts";

/**
 * CIDRs allowed to recurse, checked against raw socket addresses without allocating.
 *
 * @example
 * ```ts
 * new AllowList([parseCidr("127.0.0.0/8") as Cidr]).allowsAddress("127.0.0.1"); // true
 * ```
 */
export class AllowList {
  readonly #v4: { net: number; mask: number }[] = [];
  readonly #v6: { bytes: Uint8Array; prefix: number }[] = [];

  constructor(readonly cidrs: readonly Cidr[]) {
    for (const c of cidrs) {
      const bytes = bigIntToIp(c.network, c.family).bytes;
      if (c.family === 4) {
        const mask = c.prefix === 0 ? 0 : (0xffffffff << (32 - c.prefix)) >>> 0;
        const net = ((bytes[0] << 24) | (bytes[1] << 16) | (bytes[2] << 8) | bytes[3]) >>> 0;
        this.#v4.push({ net: (net & mask) >>> 0, mask });
      } else {
        this.#v6.push({ bytes, prefix: c.prefix });
      }
    }
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
      return this.allowsV4(
        ((buf[off + 12] << 24) | (buf[off + 13] << 16) | (buf[off + 14] << 8) | buf[off + 15]) >>>
          0,
      );
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
    if (family === 2) {
      return this.allowsV4(
        ((buf[off + 4] << 24) | (buf[off + 5] << 16) | (buf[off + 6] << 8) | buf[off + 7]) >>> 0,
      );
    }
    if (family === 10) return this.allowsV6(buf, off + 8);
    return false;
  }

  /** Checks an address in text form. */
  allowsAddress(text: string): boolean {
    const v4 = /^(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
    if (v4) return this.allowsV4(((+v4[1] << 24) | (+v4[2] << 16) | (+v4[3] << 8) | +v4[4]) >>> 0);
    return this.#v6Text(text);
  }

  #v6Text(text: string): boolean {
    const cidrBytes = (() => {
      const halves = text.replace(/%.*$/, "").split("::");
      if (halves.length > 2) return null;
      const words = (s: string): number[] | null => {
        if (s === "") return [];
        const out: number[] = [];
        for (const part of s.split(":")) {
          if (part.includes(".")) {
            const p = part.split(".").map(Number);
            if (p.length !== 4 || p.some((x) => !(x >= 0 && x <= 255))) return null;
            out.push((p[0] << 8) | p[1], (p[2] << 8) | p[3]);
          } else {
            if (!/^[0-9a-fA-F]{1,4}$/.test(part)) return null;
            out.push(parseInt(part, 16));
          }
        }
        return out;
      };
      const l = words(halves[0]), r = halves.length === 2 ? words(halves[1]) : [];
      if (!l || !r) return null;
      const fill = 8 - l.length - r.length;
      if (fill < 0 || (halves.length === 1 && fill !== 0)) return null;
      const all = [...l, ...new Array(halves.length === 2 ? fill : 0).fill(0), ...r];
      const b = new Uint8Array(16);
      all.forEach((w, i) => {
        b[2 * i] = w >> 8;
        b[2 * i + 1] = w & 0xff;
      });
      return b;
    })();
    return cidrBytes ? this.allowsV6(cidrBytes, 0) : false;
  }
}
