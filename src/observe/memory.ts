/**
 * Handing freed heap memory back to the system. glibc keeps what the runtime and libnftables
 * free inside its heap, fragmented, until `malloc_trim` releases the free pages: after the
 * initial sync at 10,000 services that is ~8 MiB of RSS for nothing.
 * @module
 */

import { mallocTrim } from "../platform/libc.ts";

/**
 * Trims once work has been quiet for `quietMs` (a sync's garbage is freed by then), or at the
 * latest `maxDelayMs` after the first unsettled piece of work, so constant churn still trims.
 */
export class MallocTrimmer {
  readonly #quietMs: number;
  readonly #maxDelayMs: number;
  readonly #trim: () => Promise<unknown>;
  #timer: ReturnType<typeof setTimeout> | null = null;
  #firstPending = 0;
  #stopped = false;

  constructor(
    options: {
      readonly quietMs?: number;
      readonly maxDelayMs?: number;
      readonly trim?: () => Promise<unknown>;
    } = {},
  ) {
    this.#quietMs = options.quietMs ?? 1_000;
    this.#maxDelayMs = options.maxDelayMs ?? 30_000;
    this.#trim = options.trim ?? mallocTrim;
  }

  /** Notes that work was done (a sync committed); the trim waits for quiet. */
  workDone(now = performance.now()): void {
    if (this.#stopped) return;
    if (this.#timer === null) this.#firstPending = now;
    else clearTimeout(this.#timer);
    const wait = Math.min(this.#quietMs, this.#firstPending + this.#maxDelayMs - now);
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.#trim().catch(() => {});
    }, Math.max(0, wait));
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
  }
}
