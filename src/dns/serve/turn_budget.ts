/**
 * UDP first (issue 20): TCP work runs in short stretches. Before each TCP message the transport
 * asks {@link TurnBudget.due}; every `pumpMs` of TCP work the UDP queries queued meanwhile are
 * answered at once, synchronously (the FFI transport's `pump`), and after `turnMs` of TCP work
 * without a break the connection awaits {@link TurnBudget.yieldTurn}, so timers, signals and the
 * other sockets get a turn of the event loop. One message's own cost is bounded by the codec's
 * parse budget (about 1-2 ms for the worst 64 KB message), so a UDP query waits at most about
 * `pumpMs` plus one message behind TCP work. Measured reasons: src/dns/README.md.
 * @module
 */

/** Options of {@link TurnBudget}. */
export interface TurnBudgetOptions {
  /** Answers the UDP queries queued right now (FfiUdpServer.pump); absent on node:dgram. */
  readonly pumpUdp?: () => void;
  /** One event-loop turn that passes through I/O (FfiUdpServer.yieldTurn), else setTimeout(0). */
  readonly yieldTurn?: () => Promise<void>;
  /** TCP work between two UDP pumps. Default 0.5 ms. */
  readonly pumpMs?: number;
  /** TCP work before yielding the event loop. Default 4 ms. */
  readonly turnMs?: number;
  /** Milliseconds on a monotonic clock. Default performance.now. */
  readonly now?: () => number;
}

/**
 * The budget of TCP work one engine shares across its connections. A stretch of TCP work starts
 * at the first message after the event loop turned (a zero-delay timer set at the stretch's start
 * has fired) or after a yield.
 *
 * @example
 * ```ts
 * const budget = new TurnBudget({ pumpUdp: () => udp.pump(), yieldTurn: () => udp.yieldTurn() });
 * if (budget.due()) await budget.yieldTurn();
 * ```
 */
export class TurnBudget {
  readonly #pumpUdp: (() => void) | undefined;
  readonly #yield: () => Promise<void>;
  readonly #pumpMs: number;
  readonly #turnMs: number;
  readonly #now: () => number;
  #inStretch = false;
  #stretchStart = 0;
  #lastPump = 0;
  #yielding: Promise<void> | null = null;
  readonly #endStretch = () => {
    this.#inStretch = false;
  };
  /** Times TCP work yielded the event loop, since start. */
  yields = 0;
  /** Times TCP work stopped to answer queued UDP queries, since start. */
  pumps = 0;

  constructor(opts: TurnBudgetOptions = {}) {
    this.#pumpUdp = opts.pumpUdp;
    this.#yield = opts.yieldTurn ?? (() => new Promise((r) => setTimeout(r, 0)));
    this.#pumpMs = opts.pumpMs ?? 0.5;
    this.#turnMs = opts.turnMs ?? 4;
    this.#now = opts.now ?? (() => performance.now());
  }

  /**
   * Called before each TCP message: pumps UDP when `pumpMs` of TCP work went by since the last
   * pump; true when the caller must await {@link yieldTurn} first.
   */
  due(): boolean {
    const now = this.#now();
    if (!this.#inStretch) {
      this.#inStretch = true;
      this.#stretchStart = this.#lastPump = now;
      // Fires only once the event loop turns: then the next message starts a fresh stretch.
      setTimeout(this.#endStretch, 0);
    }
    if (this.#pumpUdp && now - this.#lastPump >= this.#pumpMs) {
      this.#lastPump = now;
      this.pumps++;
      this.#pumpUdp();
    }
    return now - this.#stretchStart >= this.#turnMs;
  }

  /** Gives the event loop a turn; connections that ask meanwhile share the same turn. */
  yieldTurn(): Promise<void> {
    if (this.#yielding) return this.#yielding;
    this.yields++;
    this.#yielding = this.#yield().finally(() => {
      this.#yielding = null;
      this.#inStretch = false;
    });
    return this.#yielding;
  }
}
