/**
 * svcgate as the node's resolver (issue 15), at the edge: who may recurse by default (loopback,
 * the cluster CIDRs and every address of the node, the bind address included, re-read every few
 * seconds) and the upstreams (`--upstream`, else the node's resolv.conf minus svcgate itself,
 * re-read when the file changes). DnsServer pushes each change to its engines.
 * @module
 */

import type { Cidr } from "../../model/ip.ts";
import type { Logger } from "../../observe/log.ts";
import { readKernelFile } from "../../platform/libc.ts";
import { nodeAllowList, ownAddresses, sameCidrs } from "./host_addresses.ts";
import { fileStamp, HostWatch, interfaceAddresses } from "./host_watch.ts";
import {
  chooseResolvConf,
  isMountPoint,
  noUpstreamMessage,
  parseResolvConfFile,
  SYSTEMD_RESOLV_CONF,
  upstreamsOf,
  upstreamText,
} from "./resolv_conf.ts";
import { parseUpstream, type Upstream } from "./upstream.ts";

/** What the node's resolver is configured with. */
export interface NodeResolverOptions {
  readonly bind: { readonly hostname: string; readonly port: number };
  /** The allow-list given (`--dns-allow-recursion`, or loopback and `--cluster-cidr`). */
  readonly allowRecursion: readonly Cidr[];
  /** Add every address of the node to it, following changes (the default of `svcgate run`). */
  readonly allowNodeAddresses: boolean;
  /** `--upstream`: these and never the resolv.conf. */
  readonly upstreams?: readonly string[];
  /** `--resolv-conf`; default: systemd-resolved's file when it exists, else /etc/resolv.conf. */
  readonly resolvConfPath?: string;
  /** Fail when the resolv.conf leaves no upstream (`svcgate run`); else warn and forward nothing. */
  readonly requireUpstreams: boolean;
  readonly log: Logger;
  /** Poll period of the addresses and the file. Default 2000 ms. */
  readonly pollMs?: number;
}

/** A change to push to the engines. */
export interface ResolverChange {
  readonly allow?: readonly Cidr[];
  readonly upstreams?: readonly Upstream[];
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

function etcResolvMounted(): boolean {
  try {
    // Through libc: Deno gives /proc paths only to --allow-all, which the shipped flags are not.
    return isMountPoint(readKernelFile("/proc/self/mountinfo"), "/etc/resolv.conf");
  } catch {
    return false;
  }
}

/**
 * The allow-list and upstreams now, and a watch that reports their changes.
 *
 * @example
 * ```ts
 * const node = await NodeResolver.open({ bind, allowRecursion, allowNodeAddresses: true, requireUpstreams: true, log });
 * node.watch((change) => engines.forEach((e) => e.apply(change)));
 * ```
 */
export class NodeResolver {
  readonly #opts: NodeResolverOptions;
  /** The resolv.conf read for upstreams and search domains. */
  readonly resolvConfPath: string;
  allow: readonly Cidr[];
  upstreams: readonly Upstream[];
  #stamp = "";
  #addresses: readonly string[];
  #watch: HostWatch | null = null;

  private constructor(
    opts: NodeResolverOptions,
    path: string,
    addresses: readonly string[],
    upstreams: readonly Upstream[],
  ) {
    this.#opts = opts;
    this.resolvConfPath = path;
    this.#addresses = addresses;
    this.allow = opts.allowNodeAddresses
      ? nodeAllowList(opts.allowRecursion, [opts.bind.hostname, ...addresses])
      : [...opts.allowRecursion];
    this.upstreams = upstreams;
  }

  /** Reads the node once. Throws the one line `svcgate run` fails with when nothing to forward to. */
  static async open(opts: NodeResolverOptions): Promise<NodeResolver> {
    const path = chooseResolvConf({
      ...(opts.resolvConfPath ? { flag: opts.resolvConfPath } : {}),
      systemdExists: await exists(SYSTEMD_RESOLV_CONF),
      etcMounted: etcResolvMounted(),
    });
    const found = interfaceAddresses();
    if (typeof found === "string") {
      opts.log.warn("cannot read the node's addresses: only the bind address is its own", {
        error: found,
      });
    }
    const addresses = typeof found === "string" ? [] : found;
    let upstreams: Upstream[] = [];
    let stamp = "";
    if (opts.upstreams) {
      for (const text of opts.upstreams) {
        const u = parseUpstream(text);
        if (typeof u === "string") throw new Error(u);
        upstreams.push(u);
      }
    } else {
      stamp = await fileStamp(path);
      let text: string | null = null;
      try {
        text = await Deno.readTextFile(path);
      } catch (e) {
        if (opts.requireUpstreams) throw new Error(noUpstreamMessage(path, (e as Error).message));
        opts.log.warn("no upstream resolvers: cannot read resolv.conf", {
          path,
          error: (e as Error).message,
        });
      }
      if (text !== null) {
        const read = NodeResolver.#read(opts, path, text, addresses);
        if (read.upstreams.length === 0 && opts.requireUpstreams) {
          throw new Error(noUpstreamMessage(path, read));
        }
        upstreams = [...read.upstreams];
      }
    }
    const node = new NodeResolver(opts, path, addresses, upstreams);
    node.#stamp = stamp;
    return node;
  }

  static #read(
    opts: NodeResolverOptions,
    path: string,
    text: string,
    addresses: readonly string[],
  ) {
    const conf = parseResolvConfFile(text, path);
    for (const w of conf.warnings) opts.log.warn(w);
    return upstreamsOf(conf, {
      port: opts.bind.port,
      addresses: ownAddresses(opts.bind.hostname, addresses),
    });
  }

  /** Starts watching; `apply` gets each change (already logged). */
  watch(apply: (change: ResolverChange) => void): void {
    const o = this.#opts;
    const log = o.log;
    this.#watch = new HostWatch({
      ...(o.pollMs !== undefined ? { intervalMs: o.pollMs } : {}),
      warn: (msg, fields) => log.warn(msg, fields),
      ...(o.allowNodeAddresses
        ? {
          onAddresses: (addresses: string[]) => {
            this.#addresses = addresses;
            const allow = nodeAllowList(o.allowRecursion, [o.bind.hostname, ...addresses]);
            if (sameCidrs(allow, this.allow)) return;
            this.allow = allow;
            log.info("DNS recursion follows the node's addresses", {
              allowed: allow.map((c) => c.text).join(","),
            });
            apply({ allow });
          },
        }
        : {}),
      ...(o.upstreams ? {} : {
        resolvConf: {
          path: this.resolvConfPath,
          onChange: (text: string) => {
            const read = NodeResolver.#read(o, this.resolvConfPath, text, this.#addresses);
            if (read.upstreams.length === 0) {
              log.warn(
                `${noUpstreamMessage(this.resolvConfPath, read)}; keeping the previous upstreams`,
                { upstreams: upstreamText(this.upstreams) },
              );
              return;
            }
            const before = upstreamText(this.upstreams);
            const after = upstreamText(read.upstreams);
            if (before === after) return;
            this.upstreams = read.upstreams;
            log.info("DNS upstreams changed", { file: this.resolvConfPath, before, after });
            apply({ upstreams: read.upstreams });
          },
        },
      }),
    });
    this.#watch.start(this.#addresses, this.#stamp);
  }

  /** Stops watching. */
  stop(): void {
    this.#watch?.stop();
  }
}
