/**
 * The edge that watches the node for DNS (issue 15): its interface addresses (who may recurse by
 * default, host_addresses.ts) and its resolv.conf (the upstreams, resolv_conf.ts), polled every
 * few seconds, as CoreDNS's `reload` polls its Corefile. A change is handed to the callbacks; a
 * failed poll is logged once per kind of failure and retried at the next tick, never thrown.
 * @module
 */

/** What the watcher reports to. */
export interface HostWatchOptions {
  /** Poll period. Default 2000 ms. */
  readonly intervalMs?: number;
  /** The node's addresses changed (all of them, in interface order). Omit to not watch them. */
  readonly onAddresses?: (addresses: string[]) => void;
  /** The file to watch and what to do with its new text. Omit to not watch a file. */
  readonly resolvConf?: { readonly path: string; readonly onChange: (text: string) => void };
  readonly warn: (msg: string, fields?: Record<string, unknown>) => void;
}

/** The node's interface addresses (Deno.networkInterfaces), or the reason they cannot be read. */
export function interfaceAddresses(): string[] | string {
  try {
    return Deno.networkInterfaces().map((i) => i.address);
  } catch (e) {
    return (e as Error).message;
  }
}

/**
 * Polls the node's addresses and a resolv.conf.
 *
 * @example
 * ```ts
 * const watch = new HostWatch({ onAddresses: (a) => dns.setNodeAddresses(a), warn: log.warn });
 * watch.start(initialAddresses, initialStat);
 * ```
 */
export class HostWatch {
  readonly #opts: HostWatchOptions;
  #timer: ReturnType<typeof setInterval> | undefined;
  #addresses = "";
  #fileStamp = "";
  #polling = false;
  #warned = new Set<string>();

  constructor(options: HostWatchOptions) {
    this.#opts = options;
  }

  /**
   * Starts polling; `addresses` and the file's current stamp ({@link fileStamp}) are what the
   * caller already used, so only later changes are reported.
   */
  start(addresses: readonly string[], stamp: string): void {
    this.#addresses = [...addresses].join(",");
    this.#fileStamp = stamp;
    this.#timer = setInterval(() => void this.poll(), this.#opts.intervalMs ?? 2000);
    Deno.unrefTimer(this.#timer);
  }

  /** One poll (the timer calls it; tests may too). */
  async poll(): Promise<void> {
    if (this.#polling) return;
    this.#polling = true;
    try {
      const on = this.#opts.onAddresses;
      if (on) {
        const now = interfaceAddresses();
        if (typeof now === "string") this.#warnOnce("addresses", now);
        else if (now.join(",") !== this.#addresses) {
          this.#addresses = now.join(",");
          on(now);
        }
      }
      const file = this.#opts.resolvConf;
      if (file) {
        const stamp = await fileStamp(file.path);
        if (stamp !== this.#fileStamp) {
          this.#fileStamp = stamp;
          if (stamp === "") this.#warnOnce("resolv.conf", `cannot read ${file.path}`);
          else {
            this.#warned.delete("resolv.conf");
            file.onChange(await Deno.readTextFile(file.path));
          }
        }
      }
    } catch (e) {
      this.#warnOnce("poll", (e as Error).message);
    } finally {
      this.#polling = false;
    }
  }

  #warnOnce(kind: string, error: string): void {
    if (this.#warned.has(kind)) return;
    this.#warned.add(kind);
    this.#opts.warn("cannot watch the node for DNS; retrying", { what: kind, error });
  }

  /** Stops polling. */
  stop(): void {
    clearInterval(this.#timer);
  }
}

/**
 * What identifies a version of a file: modification time, size and inode (a rename over it, as
 * editors and resolvconf do, changes the inode); "" when it cannot be read.
 */
export async function fileStamp(path: string): Promise<string> {
  try {
    const s = await Deno.stat(path);
    return `${s.mtime?.getTime() ?? 0}:${s.size}:${s.ino ?? 0}`;
  } catch {
    return "";
  }
}
