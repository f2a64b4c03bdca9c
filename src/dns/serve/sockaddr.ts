/**
 * Linux `sockaddr_in`/`sockaddr_in6` bytes (as recvmmsg fills them) to what the transports need:
 * the address as text, for logs, and a cheap per-source key, for response-rate limiting. Pure.
 * @module
 */

import { formatIp } from "../../model/ip.ts";

const AF_INET = 2, AF_INET6 = 10;

/** The address of the `sockaddr` at `buf[off..]` as text (`198.18.0.10`, `2001:db8::a`). */
export function sockaddrText(buf: Uint8Array, off: number): string {
  const family = buf[off] | (buf[off + 1] << 8);
  if (family === AF_INET) return formatIp({ family: 4, bytes: buf.subarray(off + 4, off + 8) });
  if (family === AF_INET6) return formatIp({ family: 6, bytes: buf.subarray(off + 8, off + 24) });
  return `(address family ${family})`;
}

/**
 * A key per source address of the `sockaddr` at `buf[off..]`: the IPv4 address as a number
 * (no allocation), an IPv6 one as text.
 */
export function sockaddrKey(buf: Uint8Array, off: number): number | string {
  const family = buf[off] | (buf[off + 1] << 8);
  if (family === AF_INET) {
    return ((buf[off + 4] << 24) | (buf[off + 5] << 16) | (buf[off + 6] << 8) | buf[off + 7]) >>>
      0;
  }
  return sockaddrText(buf, off);
}
