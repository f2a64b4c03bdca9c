/**
 * Exponential backoff with jitter for reconnecting to the API server. Pure: the caller passes
 * the random source and does the waiting.
 * @module
 */

/** Settings of {@link Backoff}. */
export interface BackoffOptions {
  /** First delay before jitter, in ms. Default 500. */
  readonly initialMs?: number;
  /** Largest delay before jitter, in ms. Default 30 000 (as client-go's reflector). */
  readonly maxMs?: number;
  /** Growth per failure. Default 2. */
  readonly factor?: number;
  /** Returns a number in [0, 1); default Math.random. */
  readonly random?: () => number;
}

/**
 * Delays grow `initialMs * factor^n` up to `maxMs`; each is jittered into [d/2, d) so that many
 * nodes reconnecting after an API outage do not arrive in lockstep.
 *
 * @example
 * ```ts
 * const b = new Backoff({ initialMs: 500, maxMs: 30_000 });
 * const wait = b.next(); // 250..500 ms, then 500..1000, ...
 * b.reset();            // after a success
 * ```
 */
export class Backoff {
  readonly #initial: number;
  readonly #max: number;
  readonly #factor: number;
  readonly #random: () => number;
  #attempt = 0;

  constructor(opts: BackoffOptions = {}) {
    this.#initial = opts.initialMs ?? 500;
    this.#max = opts.maxMs ?? 30_000;
    this.#factor = opts.factor ?? 2;
    this.#random = opts.random ?? Math.random;
    if (!(this.#initial > 0) || !(this.#max >= this.#initial) || !(this.#factor >= 1)) {
      throw new Error(
        `Cannot use backoff initialMs=${this.#initial} maxMs=${this.#max} factor=${this.#factor}: ` +
          "need 0 < initialMs <= maxMs and factor >= 1",
      );
    }
  }

  /** Failures since the last reset. */
  get attempts(): number {
    return this.#attempt;
  }

  /** The delay before the next attempt, in ms; grows with each call. */
  next(): number {
    const base = Math.min(this.#max, this.#initial * this.#factor ** this.#attempt);
    if (base < this.#max) this.#attempt++;
    return Math.round(base / 2 + (base / 2) * this.#random());
  }

  /** Back to the initial delay. */
  reset(): void {
    this.#attempt = 0;
  }
}
