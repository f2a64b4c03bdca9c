/**
 * Portable UDP transport on node:dgram (no unstable flag, no FFI): one event per packet, so it
 * is several times slower than udp_ffi.ts; used when FFI is not permitted or not available.
 * @module
 */

import dgram from "node:dgram";
import type { AllowList } from "./allow_list.ts";
import type { QueryHandler } from "./handler.ts";
import { LimitLog } from "./limit_log.ts";
import { type ResponseRateLimiter, slipReply } from "./rrl.ts";

/** Options of {@link NodeUdpServer.open}. */
export interface NodeUdpOptions {
  readonly hostname: string;
  readonly port: number;
  readonly handler: QueryHandler;
  readonly allow: AllowList;
  readonly onError: (message: string) => void;
  /** Where limit hits are counted and logged. Default: one over the handler's stats and onError. */
  readonly limitLog?: LimitLog;
  /** Response-rate limiting per source (`--dns-rrl`); absent: off. */
  readonly rrl?: ResponseRateLimiter;
}

/**
 * A UDP DNS listener on node:dgram.
 *
 * @example
 * ```ts
 * const udp = await NodeUdpServer.open({ hostname: "127.0.0.1", port: 0, handler, allow, onError });
 * console.log(udp.port);
 * await udp.stop();
 * ```
 */
export class NodeUdpServer {
  readonly #sock: dgram.Socket;
  readonly #port: number;
  #closed = false;

  private constructor(sock: dgram.Socket, port: number) {
    this.#sock = sock;
    this.#port = port;
  }

  /** Binds and starts serving; rejects with the address and the OS error. */
  static open(opts: NodeUdpOptions): Promise<NodeUdpServer> {
    const family = opts.hostname.includes(":") ? "udp6" : "udp4";
    const sock = dgram.createSocket({ type: family });
    return new Promise((resolve, reject) => {
      const onBindError = (e: Error) =>
        reject(
          new Error(`Cannot listen for DNS on UDP ${opts.hostname}:${opts.port}: ${e.message}`),
        );
      sock.once("error", onBindError);
      sock.bind(opts.port, opts.hostname, () => {
        sock.off("error", onBindError);
        sock.on("error", (e: Error) => opts.onError(`UDP socket error: ${e.message}`));
        const server = new NodeUdpServer(sock, sock.address().port);
        const limitLog = opts.limitLog ??
          new LimitLog({ stats: opts.handler.stats, warn: opts.onError });
        sock.on("message", (msg: Uint8Array, rinfo: { address: string; port: number }) => {
          const t0 = performance.now();
          const packet = new Uint8Array(msg.buffer, msg.byteOffset, msg.byteLength);
          const send = (bytes: Uint8Array | null) => {
            if (!bytes || server.#closed) return;
            sock.send(bytes, rinfo.port, rinfo.address, (e: Error | null) => {
              if (e) {
                opts.onError(`UDP send to ${rinfo.address}:${rinfo.port} failed: ${e.message}`);
              }
            });
            opts.handler.stats.latency((performance.now() - t0) / 1000);
          };
          const verdict = opts.rrl ? opts.rrl.check(rinfo.address, t0) : "send";
          if (verdict !== "send") {
            limitLog.hit(
              "rrl",
              rinfo.address,
              `more than ${opts.rrl!.rate} responses a second (--dns-rrl): ${
                verdict === "slip" ? "answered truncated" : "dropped"
              }`,
            );
            if (verdict === "slip") send(slipReply(packet, packet.length));
            return;
          }
          const outcome = opts.handler.handle(
            packet,
            opts.allow.allowsAddress(rinfo.address),
            true,
            rinfo.address,
          );
          const hit = opts.handler.takeLimitHit();
          if (hit) limitLog.hit(hit.limit, rinfo.address, hit.detail);
          if (outcome instanceof Promise) {
            outcome.then(send, (e) => opts.onError(`UDP answer failed: ${(e as Error).message}`));
          } else send(outcome);
        });
        resolve(server);
      });
    });
  }

  /** The bound port. */
  get port(): number {
    return this.#port;
  }

  /** Stops listening. */
  stop(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    return new Promise((resolve) => this.#sock.close(() => resolve()));
  }
}
