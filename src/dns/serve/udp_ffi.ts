/**
 * UDP transport over libc through Deno FFI: batched `recvmmsg`/`sendmmsg` on a non-blocking
 * socket, woken by `poll` running on FFI's blocking thread pool. One event-loop turn and two
 * syscalls serve up to 64 queries, instead of one turn and two syscalls per query. Linux only
 * (x86_64/aarch64 struct layouts); needs `--allow-ffi`. The portable fallback is udp_node.ts.
 * @module
 */

import { parseIp } from "../../model/ip.ts";
import { openLibc } from "./libc.ts";
import type { AllowList } from "./allow_list.ts";
import type { QueryHandler } from "./handler.ts";
import { LimitLog } from "./limit_log.ts";
import { type ResponseRateLimiter, slipReply } from "./rrl.ts";
import { sockaddrKey, sockaddrText } from "./sockaddr.ts";
import { sockaddrAddress } from "../answer/client_namespace.ts";

const SYMBOLS = {
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  setsockopt: { parameters: ["i32", "i32", "i32", "buffer", "u32"], result: "i32" },
  bind: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  connect: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  getsockname: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  recvmmsg: { parameters: ["i32", "buffer", "u32", "i32", "usize"], result: "i32" },
  sendmmsg: { parameters: ["i32", "buffer", "u32", "i32"], result: "i32" },
  sendto: { parameters: ["i32", "buffer", "usize", "i32", "buffer", "u32"], result: "isize" },
  poll: { parameters: ["buffer", "u64", "i32"], result: "i32", nonblocking: true },
  eventfd: { parameters: ["u32", "i32"], result: "i32" },
  write: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  close: { parameters: ["i32"], result: "i32" },
  __errno_location: { parameters: [], result: "pointer" },
  strerror: { parameters: ["i32"], result: "pointer" },
} as const;

type Libc = Deno.DynamicLibrary<typeof SYMBOLS>;

let libc: Libc | null = null;
let loadError: string | null = null;

function load(): Libc | null {
  if (libc || loadError) return libc;
  const opened = openLibc(SYMBOLS, "FFI UDP");
  if (typeof opened === "string") loadError = opened;
  else libc = opened;
  return libc;
}

/** Whether the FFI transport can run here; when not, why. */
export function ffiAvailability(): { ok: true } | { ok: false; reason: string } {
  try {
    const state = Deno.permissions.querySync({ name: "ffi" }).state;
    if (state !== "granted") {
      return { ok: false, reason: "FFI permission is not granted (run with --allow-ffi)" };
    }
  } catch (e) {
    return { ok: false, reason: `Cannot query the FFI permission: ${(e as Error).message}` };
  }
  return load() ? { ok: true } : { ok: false, reason: loadError ?? "libc could not be loaded" };
}

const AF_INET = 2, AF_INET6 = 10;
const SOCK_DGRAM = 2, SOCK_NONBLOCK = 0x800, SOCK_CLOEXEC = 0x80000;
const SOL_SOCKET = 1,
  SO_REUSEPORT = 15,
  SO_RCVBUF = 8,
  SO_SNDBUF = 7,
  SO_RCVBUFFORCE = 33,
  SO_SNDBUFFORCE = 32;
const MSG_DONTWAIT = 0x40;
const EAGAIN = 11, EINTR = 4;
const POLLIN = 1;

/** Queries served per recvmmsg call. */
const BATCH = 64;
/** Receive slot: large enough for any sane query (bigger ones arrive truncated -> FORMERR). */
const RSZ = 4096;
/** Send slot: the largest UDP reply svcgate sends (its advertised EDNS size). */
const SSZ = 1232;
const NAME = 32;
const HDR = 64;
/** Batches drained per wake-up before yielding to the event loop (TCP, timers, messages). */
const MAX_BATCHES_PER_TURN = 16;

/** The `sockaddr_in`/`sockaddr_in6` to bind, or an error quoting the hostname. */
function parseBind(
  hostname: string,
  port: number,
): { family: number; sockaddr: Uint8Array } | string {
  const ip = parseIp(hostname.replace(/^\[|\]$/g, ""));
  if (!ip) return `"${hostname}" is not an IP address`;
  const sa = new Uint8Array(28);
  sa[0] = ip.family === 4 ? AF_INET : AF_INET6;
  sa[2] = port >> 8;
  sa[3] = port & 0xff;
  if (ip.family === 4) {
    sa.set(ip.bytes, 4);
    return { family: AF_INET, sockaddr: sa.subarray(0, 16) };
  }
  sa.set(ip.bytes, 8);
  return { family: AF_INET6, sockaddr: sa };
}

/** Socket buffers of `bytes` each way; FORCE works as root (past rmem_max), else capped. */
function deepBuffers(lib: Libc, fd: number, bytes: number): void {
  const s = lib.symbols;
  const opt = new Uint8Array(new ArrayBuffer(128), 0, 4);
  new DataView(opt.buffer).setInt32(0, bytes, true);
  if (s.setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, opt, 4) !== 0) {
    s.setsockopt(fd, SOL_SOCKET, SO_RCVBUF, opt, 4);
  }
  if (s.setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, opt, 4) !== 0) {
    s.setsockopt(fd, SOL_SOCKET, SO_SNDBUF, opt, 4);
  }
}

/** Options of {@link FfiUdpServer.open}. */
export interface FfiUdpOptions {
  readonly hostname: string;
  readonly port: number;
  /** Set SO_REUSEPORT so several workers can share the port. */
  readonly reusePort: boolean;
  readonly handler: QueryHandler;
  readonly allow: AllowList;
  /** Called for unexpected socket errors (the loop keeps going). */
  readonly onError: (message: string) => void;
  /** Where limit hits are counted and logged. Default: one over the handler's stats and onError. */
  readonly limitLog?: LimitLog;
  /** Response-rate limiting per source (`--dns-rrl`); absent: off. */
  readonly rrl?: ResponseRateLimiter;
}

/**
 * A UDP DNS listener on a raw socket.
 *
 * @example
 * ```ts
 * const udp = FfiUdpServer.open({ hostname: "127.0.0.1", port: 5353, reusePort: false, handler, allow, onError });
 * const done = udp.run();
 * udp.stop(); await done;
 * ```
 */
export class FfiUdpServer {
  readonly #lib: Libc;
  readonly #fd: number;
  readonly #efd: number;
  readonly #opts: FfiUdpOptions;
  readonly #limitLog: LimitLog;
  readonly #port: number;
  readonly #errno: Int32Array;
  // One arena keeps every buffer off the V8 heap and at a fixed address while calls use it.
  readonly #arena: Uint8Array;
  readonly #recv: Uint8Array[] = [];
  readonly #send: Uint8Array;
  readonly #sendBase: number;
  readonly #names: Uint8Array;
  readonly #namesBase: number;
  readonly #sendNamesBase: number;
  readonly #rhdr: Uint8Array;
  readonly #shdr: Uint8Array;
  readonly #rdv: DataView;
  readonly #sdv: DataView;
  readonly #siov: DataView;
  readonly #pollfds: Uint8Array;
  readonly #wake: Uint8Array;
  readonly #noFds = new Uint8Array(new ArrayBuffer(128));
  #running = false;
  #closed = false;
  /** Reading stopped (stop(), or pause() of an inherited socket); replies may still go out. */
  #paused = false;
  /** False for a socket inherited from systemd: it stays open for the next process. */
  readonly #ownsFd: boolean;

  private constructor(
    lib: Libc,
    fd: number,
    efd: number,
    port: number,
    opts: FfiUdpOptions,
    ownsFd = true,
  ) {
    this.#lib = lib;
    this.#ownsFd = ownsFd;
    this.#fd = fd;
    this.#efd = efd;
    this.#port = port;
    this.#opts = opts;
    this.#limitLog = opts.limitLog ??
      new LimitLog({ stats: opts.handler.stats, warn: opts.onError });
    const errnoPtr = lib.symbols.__errno_location();
    this.#errno = new Int32Array(Deno.UnsafePointerView.getArrayBuffer(errnoPtr!, 4));

    const sizes = {
      recv: BATCH * RSZ,
      send: BATCH * SSZ,
      names: BATCH * NAME,
      sendNames: BATCH * NAME,
      rhdr: BATCH * HDR,
      shdr: BATCH * HDR,
      riov: BATCH * 16,
      siov: BATCH * 16,
      poll: 16,
      wake: 8,
    };
    let total = 0;
    const offs: Record<string, number> = {};
    for (const [k, v] of Object.entries(sizes)) {
      offs[k] = total;
      total += (v + 63) & ~63;
    }
    const buffer = new ArrayBuffer(total);
    this.#arena = new Uint8Array(buffer);
    const base = BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(this.#arena)));
    const ptr = (k: string, extra = 0) => base + BigInt(offs[k] + extra);
    for (let i = 0; i < BATCH; i++) {
      this.#recv.push(new Uint8Array(buffer, offs.recv + i * RSZ, RSZ));
    }
    this.#send = new Uint8Array(buffer, offs.send, BATCH * SSZ);
    this.#sendBase = 0;
    this.#names = this.#arena;
    this.#namesBase = offs.names;
    this.#sendNamesBase = offs.sendNames;
    this.#rhdr = new Uint8Array(buffer, offs.rhdr, BATCH * HDR);
    this.#shdr = new Uint8Array(buffer, offs.shdr, BATCH * HDR);
    this.#rdv = new DataView(buffer, offs.rhdr, BATCH * HDR);
    this.#sdv = new DataView(buffer, offs.shdr, BATCH * HDR);
    const riov = new DataView(buffer, offs.riov, BATCH * 16);
    this.#siov = new DataView(buffer, offs.siov, BATCH * 16);
    for (let i = 0; i < BATCH; i++) {
      riov.setBigUint64(i * 16, ptr("recv", i * RSZ), true);
      riov.setBigUint64(i * 16 + 8, BigInt(RSZ), true);
      this.#siov.setBigUint64(i * 16, ptr("send", i * SSZ), true);
      // struct msghdr: name, namelen, iov, iovlen, control, controllen, flags; then msg_len.
      this.#rdv.setBigUint64(i * HDR, ptr("names", i * NAME), true);
      this.#rdv.setUint32(i * HDR + 8, NAME, true);
      this.#rdv.setBigUint64(i * HDR + 16, ptr("riov", i * 16), true);
      this.#rdv.setBigUint64(i * HDR + 24, 1n, true);
      this.#sdv.setBigUint64(i * HDR, ptr("sendNames", i * NAME), true);
      this.#sdv.setBigUint64(i * HDR + 16, ptr("siov", i * 16), true);
      this.#sdv.setBigUint64(i * HDR + 24, 1n, true);
    }
    this.#pollfds = new Uint8Array(buffer, offs.poll, 16);
    const pdv = new DataView(buffer, offs.poll, 16);
    pdv.setInt32(0, fd, true);
    pdv.setInt16(4, POLLIN, true);
    pdv.setInt32(8, efd, true);
    pdv.setInt16(12, POLLIN, true);
    this.#wake = new Uint8Array(buffer, offs.wake, 8);
    this.#wake[0] = 1;
  }

  /** Opens and binds the socket; throws an error naming the address and the OS error. */
  static open(opts: FfiUdpOptions): FfiUdpServer {
    const lib = load();
    if (!lib) throw new Error(loadError ?? "libc could not be loaded");
    const s = lib.symbols;
    const where = `${opts.hostname}:${opts.port}`;
    const bind = parseBind(opts.hostname, opts.port);
    if (typeof bind === "string") throw new Error(`Cannot listen for DNS on UDP ${where}: ${bind}`);
    const errnoView = new Int32Array(
      Deno.UnsafePointerView.getArrayBuffer(s.__errno_location()!, 4),
    );
    const osError = () => {
      const e = errnoView[0];
      const p = s.strerror(e);
      return `${p ? Deno.UnsafePointerView.getCString(p) : "error"} (errno ${e})`;
    };
    const fd = s.socket(bind.family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      throw new Error(`Cannot listen for DNS on UDP ${where}: socket() failed: ${osError()}`);
    }
    const opt = new Uint8Array(new ArrayBuffer(128), 0, 4);
    const setInt = (level: number, name: number, value: number) => {
      new DataView(opt.buffer).setInt32(0, value, true);
      return s.setsockopt(fd, level, name, opt, 4);
    };
    if (opts.reusePort && setInt(SOL_SOCKET, SO_REUSEPORT, 1) !== 0) {
      const err = osError();
      s.close(fd);
      throw new Error(`Cannot listen for DNS on UDP ${where}: SO_REUSEPORT failed: ${err}`);
    }
    // Deep buffers absorb bursts while JavaScript is busy.
    deepBuffers(lib, fd, 4 << 20);
    const sa = new Uint8Array(new ArrayBuffer(128), 0, bind.sockaddr.length);
    sa.set(bind.sockaddr);
    if (s.bind(fd, sa, sa.length) !== 0) {
      const err = osError();
      s.close(fd);
      throw new Error(`Cannot listen for DNS on UDP ${where}: bind() failed: ${err}`);
    }
    const got = new Uint8Array(new ArrayBuffer(128));
    const gotLen = new Uint8Array(new ArrayBuffer(128), 0, 4);
    new DataView(gotLen.buffer).setUint32(0, 128, true);
    s.getsockname(fd, got, gotLen);
    const port = (got[2] << 8) | got[3];
    const efd = s.eventfd(0, 0x800 | 0x80000);
    if (efd < 0) {
      const err = osError();
      s.close(fd);
      throw new Error(`Cannot listen for DNS on UDP ${where}: eventfd() failed: ${err}`);
    }
    return new FfiUdpServer(lib, fd, efd, port, opts);
  }

  /**
   * Serves a UDP socket this process inherited from systemd (socket activation,
   * inherited_sockets.ts). It is never closed here: queries keep queueing in it for the next
   * process while this one stops.
   */
  static adopt(fd: number, opts: FfiUdpOptions): FfiUdpServer {
    const lib = load();
    if (!lib) throw new Error(loadError ?? "libc could not be loaded");
    const s = lib.symbols;
    const got = new Uint8Array(new ArrayBuffer(128));
    const gotLen = new Uint8Array(new ArrayBuffer(128), 0, 4);
    new DataView(gotLen.buffer).setUint32(0, 128, true);
    s.getsockname(fd, got, gotLen);
    // Queries wait here while svcgate restarts: ~2 s of 2,000 qps took more than the default
    // 208 KiB (tests/dns/restart_e2e_test.ts lost 72% of them); 8 MiB holds ~9,000 queries.
    deepBuffers(lib, fd, 8 << 20);
    const efd = s.eventfd(0, 0x800 | 0x80000);
    if (efd < 0) throw new Error(`Cannot serve the inherited UDP socket ${fd}: eventfd() failed`);
    return new FfiUdpServer(lib, fd, efd, (got[2] << 8) | got[3], opts, false);
  }

  /**
   * Leaves the SO_REUSEPORT group for new queries and keeps answering those already queued:
   * `connect()` to its own address makes the socket "connected", and Linux then gives every new
   * datagram to the group's unconnected sockets (the next process's), while this one's queue
   * stays readable and replies with an explicit address still go out. False (and nothing done)
   * when the socket is not in a group.
   */
  leaveGroup(): boolean {
    if (this.#closed || !this.#opts.reusePort || !this.#ownsFd) return false;
    const s = this.#lib.symbols;
    const own = new Uint8Array(new ArrayBuffer(128));
    const len = new Uint8Array(new ArrayBuffer(128), 0, 4);
    new DataView(len.buffer).setUint32(0, 128, true);
    if (s.getsockname(this.#fd, own, len) !== 0) return false;
    const size = new DataView(len.buffer).getUint32(0, true);
    // A wildcard address: connect to loopback instead (no one sends from our own port there).
    if (own[0] === AF_INET && own[4] === 0 && own[5] === 0 && own[6] === 0 && own[7] === 0) {
      own.set([127, 0, 0, 1], 4);
    } else if (own[0] === AF_INET6 && own.subarray(8, 24).every((b) => b === 0)) {
      own[23] = 1;
    }
    if (s.connect(this.#fd, own, size) !== 0) {
      this.#opts.onError(
        `leaving the SO_REUSEPORT group: connect failed with errno ${this.#errno[0]}`,
      );
      return false;
    }
    return true;
  }

  /**
   * Stops reading; replies to forwarded questions still go out until {@link stop}. For an
   * inherited socket: what is not read stays queued for the next process.
   */
  pause(): void {
    if (this.#paused || this.#closed) return;
    this.#paused = true;
    this.#lib.symbols.write(this.#efd, this.#wake, 8n);
  }

  /** The bound port (useful after binding port 0). */
  get port(): number {
    return this.#port;
  }

  /** Serves until {@link stop}. Never throws for one bad packet or one socket error. */
  async run(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    const s = this.#lib.symbols;
    try {
      while (!this.#closed && !this.#paused) {
        const r = await s.poll(this.#pollfds, 2n, -1);
        if (this.#closed || this.#paused) break;
        if (r < 0) {
          // The errno of the pool thread is not ours to read; back off briefly and retry.
          await new Promise((res) => setTimeout(res, 10));
          continue;
        }
        for (let b = 0; b < MAX_BATCHES_PER_TURN && !this.#closed && !this.#paused; b++) {
          const n = this.#batch();
          if (n < BATCH) break;
        }
      }
    } finally {
      this.#running = false;
      if (this.#closed) this.#release();
    }
  }

  /**
   * Answers whatever is queued right now, synchronously (up to `maxBatches` batches). Long
   * synchronous work (a zone build) calls this between slices so UDP queries are not left
   * waiting for the event loop, which runs timers before I/O completions.
   */
  pump(maxBatches = 4): number {
    if (this.#closed || this.#paused) return 0;
    let total = 0;
    for (let b = 0; b < maxBatches; b++) {
      const n = this.#batch();
      total += n;
      if (n < BATCH) break;
    }
    return total;
  }

  /**
   * An event-loop turn that passes through I/O completions: a zero-length `poll` on FFI's thread
   * pool. (A `setTimeout(0)` turn runs timers first, and a chain of them can starve I/O.)
   */
  async yieldTurn(): Promise<void> {
    await this.#lib.symbols.poll(this.#noFds, 0n, 0);
  }

  /** Receives and answers one batch; returns how many packets arrived. */
  #batch(): number {
    const s = this.#lib.symbols;
    const rdv = this.#rdv;
    for (let i = 0; i < BATCH; i++) rdv.setUint32(i * HDR + 8, NAME, true);
    const n = s.recvmmsg(this.#fd, this.#rhdr, BATCH, MSG_DONTWAIT, 0n);
    if (n <= 0) {
      if (n < 0) {
        const e = this.#errno[0];
        if (e !== EAGAIN && e !== EINTR) this.#opts.onError(`recvmmsg failed with errno ${e}`);
      }
      return 0;
    }
    const t0 = performance.now();
    const handler = this.#opts.handler;
    const allow = this.#opts.allow;
    const rrl = this.#opts.rrl;
    const names = this.#names;
    const sdv = this.#sdv;
    const siov = this.#siov;
    let out = 0;
    for (let i = 0; i < n; i++) {
      const len = rdv.getUint32(i * HDR + 56, true);
      const nameOff = this.#namesBase + i * NAME;
      const q = this.#recv[i];
      let m: number;
      let allowed = false;
      const verdict = rrl ? rrl.check(sockaddrKey(names, nameOff), t0) : "send";
      if (verdict !== "send") {
        this.#limitLog.hit(
          "rrl",
          sockaddrText(names, nameOff),
          `more than ${rrl!.rate} responses a second (--dns-rrl): ${
            verdict === "slip" ? "answered truncated" : "dropped"
          }`,
        );
        const slip = verdict === "slip" ? slipReply(q, len) : null;
        if (!slip) continue;
        this.#send.set(slip, out * SSZ);
        m = slip.length;
      } else {
        allowed = allow.allowsSockaddr(names, nameOff);
        m = handler.fast(q, len, this.#send, this.#sendBase + out * SSZ, true, allowed);
      }
      if (m < 0) {
        const client = sockaddrAddress(names, nameOff);
        const outcome = handler.general(q.slice(0, len), allowed, true, client);
        const hit = handler.takeLimitHit();
        if (hit) this.#limitLog.hit(hit.limit, sockaddrText(names, nameOff), hit.detail);
        if (outcome === null) continue;
        if (outcome instanceof Promise) {
          const addr = names.slice(nameOff, nameOff + NAME);
          const addrLen = rdv.getUint32(i * HDR + 8, true);
          const start = t0;
          outcome.then((bytes) => {
            if (bytes) this.#sendOne(bytes, addr, addrLen);
            handler.stats.latency((performance.now() - start) / 1000);
          }, (e) => this.#opts.onError(`forwarding failed: ${(e as Error).message}`));
          continue;
        }
        if (outcome.length > SSZ) continue;
        this.#send.set(outcome, out * SSZ);
        m = outcome.length;
      }
      siov.setUint32(out * 16 + 8, m, true);
      const sendNameOff = this.#sendNamesBase + out * NAME;
      for (let k = 0; k < 28; k++) names[sendNameOff + k] = names[nameOff + k];
      sdv.setUint32(out * HDR + 8, rdv.getUint32(i * HDR + 8, true), true);
      out++;
    }
    if (out > 0) {
      let sent = s.sendmmsg(this.#fd, this.#shdr, out, MSG_DONTWAIT);
      if (sent >= 0 && sent < out) {
        // Socket buffer full: try the rest once, then let the clients retry.
        const more = s.sendmmsg(
          this.#fd,
          this.#shdr.subarray(sent * HDR),
          out - sent,
          MSG_DONTWAIT,
        );
        if (more > 0) sent += more;
      }
      if (sent < 0) {
        const e = this.#errno[0];
        if (e !== EAGAIN) this.#opts.onError(`sendmmsg failed with errno ${e}`);
        sent = 0;
      }
      if (sent < out) handler.stats.counters.dropped += out - sent;
      handler.stats.latency((performance.now() - t0) / 1000, out);
    }
    return n;
  }

  #sendOne(bytes: Uint8Array, addr: Uint8Array, addrLen: number): void {
    if (this.#closed) return;
    // Copy into a fresh ArrayBuffer: the call reads it synchronously.
    const buf = new Uint8Array(new ArrayBuffer(Math.max(bytes.length, 128)));
    buf.set(bytes);
    const sa = new Uint8Array(new ArrayBuffer(128));
    sa.set(addr.subarray(0, 28));
    const r = this.#lib.symbols.sendto(
      this.#fd,
      buf,
      BigInt(bytes.length),
      MSG_DONTWAIT,
      sa,
      addrLen,
    );
    if (Number(r) < 0) this.#opts.onError(`sendto failed with errno ${this.#errno[0]}`);
  }

  /** Stops the loop (it closes the socket when it exits; an inherited one stays open). */
  stop(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#lib.symbols.write(this.#efd, this.#wake, 8n);
    if (!this.#running) this.#release();
  }

  #release(): void {
    if (this.#ownsFd) this.#lib.symbols.close(this.#fd);
    this.#lib.symbols.close(this.#efd);
  }
}
