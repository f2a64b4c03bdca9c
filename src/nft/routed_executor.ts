/**
 * An {@link NftExecutor} that keeps small calls in process and sends big ones to `nft` in a child.
 *
 * Why: libnftables (lib_executor.ts) saves a process spawn on every small transaction, which is
 * most of a one-service update. But for a big one, a cold load of 10,000 services (7.5 MB of
 * text) or a full listing of the table, nft builds parse trees and caches of several hundred MB;
 * in process that is the daemon's own peak memory, and glibc gives it back only partly (figures:
 * README.md, Executors). In an `nft` child the same work ends with the child. Both executors give the same results and the same
 * {@link NftError}s, so callers cannot tell which one ran.
 *
 * Routing: a transaction of at least `bigScriptBytes` and every full table listing go to the
 * child; the rest (steady-state changes, one set, the outline) stay in process. When the `nft`
 * command cannot run at all (not installed, not permitted), everything stays in process from
 * then on.
 * @module
 */

import type { Logger } from "../observe/log.ts";
import { silentLogger } from "../observe/log.ts";
import { NftError, type NftExecutor } from "./executor.ts";
import type { Family } from "./ruleset.ts";

/**
 * Transactions from this size on run in the child by default: ~80 services' worth of text (even
 * 500-service batches in process raised the cold start's peak RSS; README.md).
 */
export const BIG_SCRIPT_BYTES = 64 * 1024;

/** Options of {@link RoutedExecutor}. */
export interface RoutedExecutorOptions {
  /** Small calls: libnftables in process. */
  readonly small: NftExecutor;
  /** Big calls: the `nft` command. */
  readonly big: NftExecutor;
  readonly bigScriptBytes?: number;
  readonly log?: Logger;
}

/**
 * Routes nft calls by size.
 *
 * @example
 * ```ts
 * const nft = new RoutedExecutor({ small: NftLibExecutor.open(), big: new NftCommandExecutor() });
 * await nft.apply(coldLoad); // runs `nft -f -`
 * await nft.apply(oneService); // runs in process
 * ```
 */
export class RoutedExecutor implements NftExecutor {
  readonly #small: NftExecutor;
  #big: NftExecutor | null;
  readonly #threshold: number;
  readonly #log: Logger;

  constructor(options: RoutedExecutorOptions) {
    this.#small = options.small;
    this.#big = options.big;
    this.#threshold = options.bigScriptBytes ?? BIG_SCRIPT_BYTES;
    this.#log = options.log ?? silentLogger;
  }

  apply(script: string): Promise<void> {
    if (script.length < this.#threshold) return this.#small.apply(script);
    return this.#viaBig((big) => big.apply(script), () => this.#small.apply(script));
  }

  listTable(family: Family): Promise<string | null> {
    return this.#viaBig((big) => big.listTable(family), () => this.#small.listTable(family));
  }

  listSet(family: Family, kind: "set" | "map", name: string): Promise<string | null> {
    return this.#small.listSet(family, kind, name);
  }

  listOutline(family: Family): Promise<string> {
    return this.#small.listOutline(family);
  }

  async #viaBig<T>(
    run: (big: NftExecutor) => Promise<T>,
    inProcess: () => Promise<T>,
  ): Promise<T> {
    const big = this.#big;
    if (!big) return inProcess();
    try {
      return await run(big);
    } catch (e) {
      // Exit code -1: the command never ran (NftCommandExecutor's spawn failure), unlike nft
      // refusing the transaction, which the in-process library would refuse as well.
      if (!(e instanceof NftError) || e.exitCode !== -1) throw e;
      this.#big = null;
      this.#log.warn("cannot run the nft command; big nft calls now run in process", {
        error: e.reason,
      });
      return inProcess();
    }
  }
}
