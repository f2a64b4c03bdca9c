/**
 * Handing freed heap memory back to the system. glibc keeps what the runtime and libnftables
 * free inside its heap, fragmented, until `malloc_trim` releases the free pages: after the
 * initial sync at 10,000 services that is ~8 MiB of RSS for nothing.
 * @module
 */

const LIBC_SYMBOLS = {
  malloc_trim: { parameters: ["usize"], result: "i32", nonblocking: true, optional: true },
} as const;

let libc: Deno.DynamicLibrary<typeof LIBC_SYMBOLS> | null | undefined;

function openLibc(): typeof libc {
  try {
    // Queried, never requested: on a terminal a request would stop the daemon at a prompt.
    if (Deno.permissions.querySync({ name: "ffi" }).state !== "granted") return null;
    return Deno.dlopen("libc.so.6", LIBC_SYMBOLS);
  } catch {
    return null; // not glibc (musl): nothing to trim with
  }
}

/**
 * Releases glibc's free heap pages (off the event loop); false where that cannot be done (no
 * glibc, no FFI permission).
 */
export async function trimMalloc(): Promise<boolean> {
  if (libc === undefined) libc = openLibc();
  const trim = libc?.symbols.malloc_trim;
  if (!trim) return false;
  await trim(0n);
  return true;
}

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
    this.#trim = options.trim ?? trimMalloc;
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
