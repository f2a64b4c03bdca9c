/**
 * UDP first, and every TCP client in turn (issue 20). Before each TCP message the transport
 * calls {@link TurnBudget.due}, after it {@link TurnBudget.done}; when `due` says so it awaits
 * {@link TurnBudget.rest} first:
 * - every `pumpMs` of TCP work, the UDP queries queued meanwhile are answered at once,
 *   synchronously (the FFI transport's `pump`);
 * - after `turnMs` of TCP work or `turnMessages` messages, every TCP connection rests `restMs`
 *   (a timer): the runtime has nothing else to run, so it goes idle and polls its sockets. Without
 *   that, a client streaming 64 KB messages kept it busy: reading a socket that always has data
 *   needs no poll, and Deno's runtime (tokio, one thread) then polls the other sockets only every
 *   61 ticks, so new connections and other clients' queries waited 70-250 ms (p50) behind two
 *   streams. A zero-timeout poll on FFI's thread pool, cheaper, returned before the runtime went
 *   idle and did not help. The rest also caps what a TCP flood takes of the thread at about two
 *   thirds, and pipelined TCP at 64 queries a millisecond.
 * The counts reset only at a rest, never on a pause: on a busy machine a preempted process looks
 * paused. One message's own cost is bounded by the codec's parse budget (1-2 ms for the worst
 * 64 KB message). Measured reasons: src/dns/README.md.
 * @module
 */

/** Options of {@link TurnBudget}. */
export interface TurnBudgetOptions {
  /** Answers the UDP queries queued right now (FfiUdpServer.pump); absent on node:dgram. */
  readonly pumpUdp?: () => void;
  /** How long TCP rests after `turnMs` of work or `turnMessages` messages. Default 1 ms. */
  readonly restMs?: number;
  /** TCP work between two UDP pumps. Default 0.5 ms. */
  readonly pumpMs?: number;
  /** TCP work before resting. Default 2 ms. */
  readonly turnMs?: number;
  /** TCP messages before resting. Default 64. */
  readonly turnMessages?: number;
  /** Milliseconds on a monotonic clock. Default performance.now. */
  readonly now?: () => number;
}

/**
 * The budget of TCP work one engine shares across its connections.
 *
 * @example
 * ```ts
 * const budget = new TurnBudget({ pumpUdp: () => udp.pump() });
 * if (budget.due()) await budget.rest();
 * answer(message);
 * budget.done();
 * ```
 */
export class TurnBudget {
  readonly #pumpUdp: (() => void) | undefined;
  readonly #restMs: number;
  readonly #pumpMs: number;
  readonly #turnMs: number;
  readonly #turnMessages: number;
  readonly #now: () => number;
  /** TCP work (ms) and messages since the last yield. */
  #work = 0;
  #messages = 0;
  #start = 0;
  #sincePump = 0;
  #resting: Promise<void> | null = null;
  /** Times TCP rested, since start. */
  rests = 0;
  /** Times TCP work stopped to answer queued UDP queries, since start. */
  pumps = 0;

  constructor(opts: TurnBudgetOptions = {}) {
    this.#pumpUdp = opts.pumpUdp;
    this.#restMs = opts.restMs ?? 1;
    this.#pumpMs = opts.pumpMs ?? 0.5;
    this.#turnMs = opts.turnMs ?? 2;
    this.#turnMessages = opts.turnMessages ?? 64;
    this.#now = opts.now ?? (() => performance.now());
  }

  /**
   * Called before each TCP message: answers queued UDP when `pumpMs` of TCP work went by since
   * the last pump; true when the caller must await {@link rest} first.
   */
  due(): boolean {
    if (this.#pumpUdp && this.#sincePump >= this.#pumpMs) {
      this.#sincePump = 0;
      this.pumps++;
      this.#pumpUdp();
    }
    this.#start = this.#now();
    return this.#work >= this.#turnMs || this.#messages >= this.#turnMessages;
  }

  /** Called after each TCP message: counts its work. */
  done(): void {
    const spent = this.#now() - this.#start;
    this.#work += spent;
    this.#sincePump += spent;
    this.#messages++;
  }

  /** Rests `restMs`; connections that ask meanwhile share the same rest. */
  rest(): Promise<void> {
    if (this.#resting) return this.#resting;
    this.rests++;
    this.#resting = new Promise<void>((r) => setTimeout(r, this.#restMs)).finally(() => {
      this.#resting = null;
      this.#work = this.#messages = 0;
    });
    return this.#resting;
  }
}
