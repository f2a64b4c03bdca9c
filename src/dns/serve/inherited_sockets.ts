/**
 * Socket activation: the DNS sockets systemd (a `.socket` unit, or `systemd-socket-activate`)
 * opened and passed to this process, by sd_listen_fds(3)'s protocol: `LISTEN_PID` is this
 * process, `LISTEN_FDS` descriptors start at 3, `LISTEN_FDNAMES` optionally names them. systemd
 * keeps them open while svcgate restarts, so queries wait in the kernel's queues instead of being
 * refused. The parsing is pure ({@link parseListenFds}); {@link takeInheritedSockets} reads the
 * environment and asks the kernel what each descriptor is.
 * @module
 */

import { canonicalIp } from "../../model/ip.ts";
import { sockaddrText } from "./sockaddr.ts";
import { openLibc } from "./libc.ts";

/** The first descriptor sd_listen_fds passes. */
export const SD_LISTEN_FDS_START = 3;

/** The descriptors passed to this process. */
export interface ListenFds {
  readonly fds: readonly { readonly fd: number; readonly name: string | null }[];
}

/**
 * What the sd_listen_fds variables say: null when nothing was passed to this process (no
 * `LISTEN_FDS`, or `LISTEN_PID` names another process, as sd_listen_fds), an error message when
 * they are malformed. Pure.
 *
 * @example
 * ```ts
 * parseListenFds({ LISTEN_PID: "42", LISTEN_FDS: "2", LISTEN_FDNAMES: "dns:dns-tcp" }, 42);
 * // { fds: [{ fd: 3, name: "dns" }, { fd: 4, name: "dns-tcp" }] }
 * ```
 */
export function parseListenFds(
  env: {
    readonly LISTEN_PID?: string;
    readonly LISTEN_FDS?: string;
    readonly LISTEN_FDNAMES?: string;
  },
  pid: number,
): ListenFds | null | string {
  if (env.LISTEN_FDS === undefined || env.LISTEN_PID === undefined) return null;
  if (!/^\d+$/.test(env.LISTEN_PID)) return `LISTEN_PID="${env.LISTEN_PID}" is not a process id`;
  if (Number(env.LISTEN_PID) !== pid) return null;
  if (!/^\d+$/.test(env.LISTEN_FDS) || Number(env.LISTEN_FDS) > 64) {
    return `LISTEN_FDS="${env.LISTEN_FDS}" is not a count of descriptors (0-64)`;
  }
  const count = Number(env.LISTEN_FDS);
  const names = env.LISTEN_FDNAMES === undefined ? null : env.LISTEN_FDNAMES.split(":");
  if (names && names.length !== count) {
    return `LISTEN_FDNAMES="${env.LISTEN_FDNAMES}" names ${names.length} descriptors, LISTEN_FDS="${env.LISTEN_FDS}"`;
  }
  return {
    fds: Array.from({ length: count }, (_, i) => ({
      fd: SD_LISTEN_FDS_START + i,
      name: names ? names[i] : null,
    })),
  };
}

/** What the kernel says of one passed descriptor. */
export interface SocketFacts {
  readonly fd: number;
  readonly name: string | null;
  readonly type: "udp" | "tcp" | "other";
  /** For TCP: listening (accept() works). */
  readonly listening: boolean;
  /** Bound address and port; null when not an IP socket. */
  readonly address: string | null;
  readonly port: number;
}

/**
 * The UDP and TCP sockets to serve DNS on `bind`, among the passed ones; throws a message naming
 * the descriptor and what is wrong with it. Pure.
 */
export function chooseDnsSockets(
  sockets: readonly SocketFacts[],
  bind: { readonly hostname: string; readonly port: number },
): { readonly udpFd: number; readonly tcpFd: number | null } {
  const want = canonicalIp(bind.hostname.replace(/^\[|\]$/g, ""));
  const label = (s: SocketFacts) => `descriptor ${s.fd}${s.name ? ` ("${s.name}")` : ""}`;
  let udp: SocketFacts | null = null, tcp: SocketFacts | null = null;
  for (const s of sockets) {
    if (s.type === "other" || (s.type === "tcp" && !s.listening)) {
      throw new Error(
        `Cannot use the socket passed as ${
          label(s)
        } (LISTEN_FDS): svcgate takes one UDP socket and one listening TCP socket for DNS`,
      );
    }
    if (s.address === null || canonicalIp(s.address) !== want || s.port !== bind.port) {
      throw new Error(
        `Cannot use the socket passed as ${
          label(s)
        } (LISTEN_FDS): it is bound to ${s.address}:${s.port}, --dns-bind-address is ${bind.hostname}:${bind.port}`,
      );
    }
    if (s.type === "udp") {
      if (udp) throw new Error(`Cannot use ${label(s)} (LISTEN_FDS): a second UDP socket`);
      udp = s;
    } else {
      if (tcp) throw new Error(`Cannot use ${label(s)} (LISTEN_FDS): a second TCP socket`);
      tcp = s;
    }
  }
  if (!udp) throw new Error("Cannot use socket activation (LISTEN_FDS): no UDP socket was passed");
  return { udpFd: udp.fd, tcpFd: tcp?.fd ?? null };
}

const SYMBOLS = {
  getsockopt: { parameters: ["i32", "i32", "i32", "buffer", "buffer"], result: "i32" },
  getsockname: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  fcntl: { parameters: ["i32", "i32", "i32"], result: "i32" },
} as const;

const SOL_SOCKET = 1, SO_TYPE = 3, SO_ACCEPTCONN = 30, SO_PROTOCOL = 38;
const SOCK_STREAM = 1, SOCK_DGRAM = 2, IPPROTO_TCP = 6, IPPROTO_UDP = 17;
const F_SETFD = 2, FD_CLOEXEC = 1;

/** What the kernel says of `fd` (libc through FFI). */
function inspect(
  lib: Deno.DynamicLibrary<typeof SYMBOLS>,
  fd: number,
  name: string | null,
): SocketFacts {
  const s = lib.symbols;
  const value = new Uint8Array(new ArrayBuffer(128));
  const len = new Uint8Array(new ArrayBuffer(128), 0, 4);
  const int = (opt: number): number | null => {
    new DataView(len.buffer).setUint32(0, 4, true);
    return s.getsockopt(fd, SOL_SOCKET, opt, value, len) === 0
      ? new DataView(value.buffer).getInt32(0, true)
      : null;
  };
  const type = int(SO_TYPE), protocol = int(SO_PROTOCOL), accepting = int(SO_ACCEPTCONN);
  new DataView(len.buffer).setUint32(0, 128, true);
  const named = s.getsockname(fd, value, len) === 0;
  const family = value[0] | (value[1] << 8);
  const ip = named && (family === 2 || family === 10);
  // Not handed on to nft or conntrack children (sd_listen_fds sets it too).
  s.fcntl(fd, F_SETFD, FD_CLOEXEC);
  return {
    fd,
    name,
    type: type === SOCK_DGRAM && protocol === IPPROTO_UDP
      ? "udp"
      : type === SOCK_STREAM && protocol === IPPROTO_TCP
      ? "tcp"
      : "other",
    listening: accepting === 1,
    address: ip ? sockaddrText(value, 0) : null,
    port: ip ? (value[2] << 8) | value[3] : 0,
  };
}

/**
 * The DNS sockets passed by systemd, or null without socket activation. Unsets the variables (as
 * sd_listen_fds(1) does) so no child sees them. Throws a message naming what is wrong: bad
 * variables, a descriptor that is not a DNS socket on `bind`, or no FFI to serve them with.
 *
 * @example
 * ```ts
 * const inherited = takeInheritedSockets({ hostname: "169.254.20.10", port: 53 });
 * ```
 */
export function takeInheritedSockets(
  bind: { readonly hostname: string; readonly port: number },
): { readonly udpFd: number; readonly tcpFd: number | null } | null {
  const env = {
    LISTEN_PID: Deno.env.get("LISTEN_PID"),
    LISTEN_FDS: Deno.env.get("LISTEN_FDS"),
    LISTEN_FDNAMES: Deno.env.get("LISTEN_FDNAMES"),
  };
  const parsed = parseListenFds(env, Deno.pid);
  for (const k of ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"]) Deno.env.delete(k);
  if (parsed === null || (typeof parsed !== "string" && parsed.fds.length === 0)) return null;
  if (typeof parsed === "string") throw new Error(`Cannot use socket activation: ${parsed}`);
  const lib = openLibc(SYMBOLS, "Socket activation");
  if (typeof lib === "string") {
    throw new Error(
      `Cannot use the sockets passed by systemd (LISTEN_FDS): FFI is needed to serve them (--allow-ffi): ${lib}`,
    );
  }
  try {
    return chooseDnsSockets(parsed.fds.map((f) => inspect(lib, f.fd, f.name)), bind);
  } finally {
    lib.close();
  }
}
