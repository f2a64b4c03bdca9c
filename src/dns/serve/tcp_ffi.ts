/**
 * A TCP listener and its connections over libc through Deno FFI, for the two cases Deno.listen
 * cannot serve: a listening socket inherited from systemd (socket activation: `LISTEN_FDS`,
 * inherited_sockets.ts) and one that shares its port with another process (`SO_REUSEPORT`,
 * `--reuse-port`). Deno 2.9.6 has no way to adopt a descriptor (Deno.listen takes an address
 * only; node:net's `listen({ fd })` reaches `TCP.open`, which Deno does not implement) and
 * offers `reusePort` only behind `--unstable-net`. Measured reasons: src/dns/README.md.
 *
 * One `epoll` instance serves the listener and every connection: edge-triggered readiness, with
 * `epoll_wait` on FFI's blocking thread pool (a `nonblocking` symbol), so waiting never blocks
 * the event loop. A connection is a non-blocking socket read with `recv` and written with `send`
 * (MSG_NOSIGNAL), and offers what TcpConnection uses of a Deno.Conn (read, write, close).
 * Linux only (x86_64/aarch64); needs `--allow-ffi`.
 * @module
 */

import { parseIp } from "../../model/ip.ts";
import { sockaddrText } from "./sockaddr.ts";
import { openLibc } from "./libc.ts";

const SYMBOLS = {
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  setsockopt: { parameters: ["i32", "i32", "i32", "buffer", "u32"], result: "i32" },
  bind: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  listen: { parameters: ["i32", "i32"], result: "i32" },
  getsockname: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  accept4: { parameters: ["i32", "buffer", "buffer", "i32"], result: "i32" },
  recv: { parameters: ["i32", "buffer", "usize", "i32"], result: "isize" },
  send: { parameters: ["i32", "buffer", "usize", "i32"], result: "isize" },
  epoll_create1: { parameters: ["i32"], result: "i32" },
  epoll_ctl: { parameters: ["i32", "i32", "i32", "buffer"], result: "i32" },
  epoll_wait: { parameters: ["i32", "buffer", "i32", "i32"], result: "i32", nonblocking: true },
  eventfd: { parameters: ["u32", "i32"], result: "i32" },
  write: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  close: { parameters: ["i32"], result: "i32" },
  fcntl: { parameters: ["i32", "i32", "i32"], result: "i32" },
  __errno_location: { parameters: [], result: "pointer" },
  strerror: { parameters: ["i32"], result: "pointer" },
} as const;

type Libc = Deno.DynamicLibrary<typeof SYMBOLS>;
let libc: Libc | null = null;

function lib(): Libc {
  if (libc) return libc;
  const opened = openLibc(SYMBOLS, "FFI TCP");
  if (typeof opened === "string") throw new Error(opened);
  return libc = opened;
}

const AF_INET = 2, AF_INET6 = 10;
const SOCK_STREAM = 1, SOCK_NONBLOCK = 0x800, SOCK_CLOEXEC = 0x80000;
const SOL_SOCKET = 1, SO_REUSEADDR = 2, SO_REUSEPORT = 15;
const MSG_DONTWAIT = 0x40, MSG_NOSIGNAL = 0x4000;
const EAGAIN = 11, EINTR = 4, ECONNABORTED = 103;
const EPOLLIN = 0x1, EPOLLOUT = 0x4, EPOLLERR = 0x8, EPOLLHUP = 0x10, EPOLLRDHUP = 0x2000;
const EPOLLET = 0x80000000;
const EPOLL_CTL_ADD = 1;
/** fcntl: get and set the file status flags (O_NONBLOCK is SOCK_NONBLOCK's value). */
const F_GETFL = 3, F_SETFL = 4;
const BACKLOG = 1024;
/** x86_64 packs `struct epoll_event` (12 bytes); aarch64 aligns its 64-bit data (16 bytes). */
const EV_SIZE = Deno.build.arch === "x86_64" ? 12 : 16;
const EV_DATA = Deno.build.arch === "x86_64" ? 4 : 8;
const MAX_EVENTS = 128;
/** Writes up to this size are copied into a fixed buffer first: small typed arrays may live on
 * V8's heap, and an FFI call must get an address that stays put. */
const COPY_BELOW = 4096;

function errno(l: Libc): number {
  return new Int32Array(Deno.UnsafePointerView.getArrayBuffer(l.symbols.__errno_location()!, 4))[0];
}

function osError(l: Libc): string {
  const e = errno(l);
  const p = l.symbols.strerror(e);
  return `${p ? Deno.UnsafePointerView.getCString(p) : "error"} (errno ${e})`;
}

interface Waiting {
  readable: boolean;
  writable: boolean;
  onReadable: (() => void) | null;
  onWritable: (() => void) | null;
}

/** One epoll instance and its wait loop, shared by a listener and its connections. */
class Poller {
  readonly #l: Libc;
  readonly #epfd: number;
  readonly #wakeFd: number;
  readonly #events = new Uint8Array(new ArrayBuffer(EV_SIZE * MAX_EVENTS));
  readonly #ev = new Uint8Array(new ArrayBuffer(128));
  readonly #fds = new Map<number, Waiting>();
  #closed = false;
  readonly done: Promise<void>;

  constructor(l: Libc) {
    this.#l = l;
    this.#epfd = l.symbols.epoll_create1(SOCK_CLOEXEC);
    if (this.#epfd < 0) throw new Error(`epoll_create1 failed: ${osError(l)}`);
    this.#wakeFd = l.symbols.eventfd(0, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (this.#wakeFd < 0) {
      l.symbols.close(this.#epfd);
      throw new Error(`eventfd failed: ${osError(l)}`);
    }
    this.#add(this.#wakeFd, EPOLLIN);
    this.done = this.#loop();
  }

  #add(fd: number, events: number): void {
    const dv = new DataView(this.#ev.buffer);
    dv.setUint32(0, events >>> 0, true);
    dv.setBigUint64(EV_DATA, BigInt(fd), true);
    if (this.#l.symbols.epoll_ctl(this.#epfd, EPOLL_CTL_ADD, fd, this.#ev) !== 0) {
      throw new Error(`epoll_ctl(ADD ${fd}) failed: ${osError(this.#l)}`);
    }
  }

  /** Watches `fd` (edge-triggered) until {@link forget}. */
  watch(fd: number): void {
    this.#add(fd, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET);
    this.#fds.set(fd, { readable: true, writable: true, onReadable: null, onWritable: null });
  }

  /** Stops watching `fd` (before it is closed), waking whatever waits on it. */
  forget(fd: number): void {
    const w = this.#fds.get(fd);
    this.#fds.delete(fd);
    w?.onReadable?.();
    w?.onWritable?.();
  }

  /** Resolves once `fd` may be readable (at once if an edge arrived since the last wait). */
  readable(fd: number): Promise<void> {
    const w = this.#fds.get(fd);
    if (!w || w.readable) {
      if (w) w.readable = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => (w.onReadable = resolve));
  }

  /** Resolves once `fd` may be writable. */
  writable(fd: number): Promise<void> {
    const w = this.#fds.get(fd);
    if (!w || w.writable) {
      if (w) w.writable = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => (w.onWritable = resolve));
  }

  async #loop(): Promise<void> {
    const dv = new DataView(this.#events.buffer);
    while (!this.#closed) {
      const n = await this.#l.symbols.epoll_wait(this.#epfd, this.#events, MAX_EVENTS, -1);
      if (n < 0) {
        // EINTR (the pool thread's errno is not ours to read): wait again after a pause.
        await new Promise((r) => setTimeout(r, 5));
        continue;
      }
      for (let i = 0; i < n; i++) {
        const events = dv.getUint32(i * EV_SIZE, true);
        const fd = Number(dv.getBigUint64(i * EV_SIZE + EV_DATA, true));
        const w = this.#fds.get(fd);
        if (!w) continue;
        if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
          const wake = w.onReadable;
          w.onReadable = null;
          if (wake) wake();
          else w.readable = true;
        }
        if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) {
          const wake = w.onWritable;
          w.onWritable = null;
          if (wake) wake();
          else w.writable = true;
        }
      }
    }
  }

  /** Ends the loop and closes the epoll instance (watched descriptors are their owners'). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const one = new Uint8Array(new ArrayBuffer(128));
    one[0] = 1;
    this.#l.symbols.write(this.#wakeFd, one, 8n);
    await this.done;
    for (const fd of [...this.#fds.keys()]) this.forget(fd);
    this.#l.symbols.close(this.#epfd);
    this.#l.symbols.close(this.#wakeFd);
  }
}

/** One accepted connection: what TcpConnection uses of a Deno.Conn. */
export class FfiTcpConn {
  readonly #l: Libc;
  readonly #poller: Poller;
  readonly #fd: number;
  readonly #scratch = new Uint8Array(new ArrayBuffer(COPY_BELOW));
  #closed = false;

  constructor(l: Libc, poller: Poller, fd: number) {
    this.#l = l;
    this.#poller = poller;
    this.#fd = fd;
    poller.watch(fd);
  }

  /** Reads into `p`; null at the peer's end of stream. Rejects once closed or on a reset. */
  async read(p: Uint8Array): Promise<number | null> {
    for (;;) {
      if (this.#closed) throw new Deno.errors.BadResource("the connection is closed");
      const n = Number(this.#l.symbols.recv(this.#fd, p, BigInt(p.length), MSG_DONTWAIT));
      if (n > 0) return n;
      if (n === 0) return p.length === 0 ? 0 : null;
      const e = errno(this.#l);
      if (e === EINTR) continue;
      if (e !== EAGAIN) throw new Error(`recv failed: ${osError(this.#l)}`);
      await this.#poller.readable(this.#fd);
    }
  }

  /** Writes part of `p`, waiting for room; returns how many bytes went. */
  async write(p: Uint8Array): Promise<number> {
    for (;;) {
      if (this.#closed) throw new Deno.errors.BadResource("the connection is closed");
      let src = p;
      if (p.length <= COPY_BELOW) {
        this.#scratch.set(p);
        src = this.#scratch.subarray(0, p.length);
      }
      const n = Number(
        this.#l.symbols.send(this.#fd, src, BigInt(src.length), MSG_DONTWAIT | MSG_NOSIGNAL),
      );
      if (n >= 0) return n;
      const e = errno(this.#l);
      if (e === EINTR) continue;
      if (e !== EAGAIN) throw new Error(`send failed: ${osError(this.#l)}`);
      await this.#poller.writable(this.#fd);
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#poller.forget(this.#fd);
    this.#l.symbols.close(this.#fd);
  }
}

/**
 * A listening TCP socket served through FFI: opened here (with SO_REUSEPORT) or inherited.
 *
 * @example
 * ```ts
 * const listener = FfiTcpListener.open("198.18.0.1", 53, { reusePort: true });
 * const { conn, address } = await listener.accept();
 * ```
 */
export class FfiTcpListener {
  readonly #l: Libc;
  readonly #fd: number;
  readonly #poller: Poller;
  readonly #port: number;
  readonly #sa = new Uint8Array(new ArrayBuffer(128));
  readonly #saLen = new Uint8Array(new ArrayBuffer(128));
  #closed = false;

  private constructor(l: Libc, fd: number, port: number) {
    this.#l = l;
    this.#fd = fd;
    this.#port = port;
    this.#poller = new Poller(l);
    this.#poller.watch(fd);
  }

  /** Binds and listens on `hostname:port`; throws naming the address and the OS error. */
  static open(hostname: string, port: number, options: { reusePort: boolean }): FfiTcpListener {
    const l = lib();
    const fd = openListeningSocket(hostname, port, options.reusePort, "DNS");
    return new FfiTcpListener(l, fd, boundPort(l, fd));
  }

  /**
   * Serves a listening socket this process inherited (socket activation). The descriptor stays
   * open on close: its owner (systemd) keeps the queue for the next process.
   */
  static adopt(fd: number): FfiTcpListener {
    const l = lib();
    // systemd passes it blocking: an accept4() with nothing queued would hold the event loop.
    const flags = l.symbols.fcntl(fd, F_GETFL, 0);
    if (flags < 0 || l.symbols.fcntl(fd, F_SETFL, flags | SOCK_NONBLOCK) !== 0) {
      throw new Error(`Cannot make the inherited TCP socket ${fd} non-blocking: ${osError(l)}`);
    }
    return new FfiTcpListener(l, fd, boundPort(l, fd));
  }

  get port(): number {
    return this.#port;
  }

  /** The next connection and its peer's address. Rejects once closed. */
  async accept(): Promise<{ conn: FfiTcpConn; address: string }> {
    const s = this.#l.symbols;
    for (;;) {
      if (this.#closed) throw new Deno.errors.BadResource("the listener is closed");
      new DataView(this.#saLen.buffer).setUint32(0, 128, true);
      const fd = s.accept4(this.#fd, this.#sa, this.#saLen, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd >= 0) {
        return {
          conn: new FfiTcpConn(this.#l, this.#poller, fd),
          address: sockaddrText(this.#sa, 0),
        };
      }
      const e = errno(this.#l);
      if (e === EINTR || e === ECONNABORTED) continue;
      if (e !== EAGAIN) throw new Error(`accept4 failed: ${osError(this.#l)}`);
      await this.#poller.readable(this.#fd);
    }
  }

  /**
   * Stops accepting. An inherited descriptor is left open (it is systemd's; its queue waits for
   * the next process); one this listener opened is closed. Connections close on their own.
   */
  close(options: { closeFd: boolean }): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#poller.forget(this.#fd);
    if (options.closeFd) this.#l.symbols.close(this.#fd);
  }

  /** Ends the wait loop once every connection is closed. */
  shutdown(): Promise<void> {
    return this.#poller.close();
  }
}

function boundPort(l: Libc, fd: number): number {
  const got = new Uint8Array(new ArrayBuffer(128));
  const len = new Uint8Array(new ArrayBuffer(128), 0, 4);
  new DataView(len.buffer).setUint32(0, 128, true);
  if (l.symbols.getsockname(fd, got, len) !== 0) {
    throw new Error(`getsockname(${fd}) failed: ${osError(l)}`);
  }
  return (got[2] << 8) | got[3];
}

/**
 * A non-blocking listening TCP socket on `hostname:port` (SO_REUSEADDR, and SO_REUSEPORT when
 * asked), as a descriptor: for this file's listener, and for node:http's `listen({ fd })`, which
 * serves a descriptor in Deno 2.9.6 (src/daemon/http_listener.ts). Throws naming the address
 * (`what` listens) and the OS error.
 */
export function openListeningSocket(
  hostname: string,
  port: number,
  reusePort: boolean,
  what: string,
): number {
  const l = lib();
  const s = l.symbols;
  const where = `${hostname}:${port}`;
  const ip = parseIp(hostname.replace(/^\[|\]$/g, ""));
  if (!ip) {
    throw new Error(
      `Cannot listen for ${what} on TCP ${where}: "${hostname}" is not an IP address`,
    );
  }
  const family = ip.family === 4 ? AF_INET : AF_INET6;
  const fd = s.socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    throw new Error(`Cannot listen for ${what} on TCP ${where}: socket() failed: ${osError(l)}`);
  }
  const fail = (step: string) => {
    const err = osError(l);
    s.close(fd);
    return new Error(`Cannot listen for ${what} on TCP ${where}: ${step} failed: ${err}`);
  };
  const one = new Uint8Array(new ArrayBuffer(128), 0, 4);
  new DataView(one.buffer).setInt32(0, 1, true);
  // As Deno.listen (and every server): a restart may bind while old connections linger.
  if (s.setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, one, 4) !== 0) throw fail("SO_REUSEADDR");
  if (reusePort && s.setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, one, 4) !== 0) {
    throw fail("SO_REUSEPORT");
  }
  const sa = new Uint8Array(new ArrayBuffer(128), 0, family === AF_INET ? 16 : 28);
  sa[0] = family;
  sa[2] = port >> 8;
  sa[3] = port & 0xff;
  sa.set(ip.bytes, family === AF_INET ? 4 : 8);
  if (s.bind(fd, sa, sa.length) !== 0) throw fail("bind()");
  if (s.listen(fd, BACKLOG) !== 0) throw fail("listen()");
  return fd;
}
