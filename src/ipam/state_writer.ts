/**
 * Serialised saves of the IPAM state for a long-running owner (standalone mode's source): at most
 * one write in flight, the newest state wins, and a failed write is retried with backoff (100 ms
 * doubling to 10 s) so a full disk or a read-only remount never stops allocation.
 * @module
 */

import type { Logger } from "../observe/log.ts";
import type { MetricsRegistry } from "../observe/metrics.ts";
import type { IpamState } from "./state.ts";
import { saveIpamState } from "./state_file.ts";
import { METRICS } from "../observe/metrics_catalogue.ts";

/**
 * Saves states to `<dir>/ipam.json` in the background, one at a time.
 *
 * @example
 * ```ts
 * const writer = new StateWriter("/var/lib/svcgate", log, metrics);
 * if (result.stateChanged) writer.save(result.state);
 * await writer.flush(); // at shutdown
 * ```
 */
export class StateWriter {
  #pending: IpamState | null = null;
  #running: Promise<void> | null = null;
  constructor(
    private readonly dir: string,
    private readonly log: Logger,
    private readonly metrics: MetricsRegistry,
  ) {}

  /** Queues this state; a state queued earlier and not yet written is dropped. Never throws. */
  save(state: IpamState): void {
    this.#pending = state;
    this.#running ??= this.#drain();
  }

  async #drain(): Promise<void> {
    let delayMs = 100;
    while (this.#pending) {
      const state = this.#pending;
      this.#pending = null;
      try {
        await saveIpamState(this.dir, state);
        delayMs = 100;
      } catch (e) {
        this.metrics.of(METRICS.ipamSaveFailures)
          .inc();
        this.log.error("cannot save VIP allocations; retrying", { dir: this.dir, error: e });
        this.#pending ??= state;
        await new Promise((r) => setTimeout(r, delayMs));
        delayMs = Math.min(delayMs * 2, 10_000);
      }
    }
    this.#running = null;
  }

  /** Resolves once every queued state is written. */
  async flush(): Promise<void> {
    while (this.#running) await this.#running;
  }
}
