/**
 * An {@link NftExecutor} that talks to libnftables in this process through Deno FFI, instead of
 * spawning `nft` for every transaction (a spawn costs several milliseconds, most of a one-service
 * update). Same commands, same results, same {@link NftError}s as {@link NftCommandExecutor}.
 *
 * - One `nft_ctx` for the executor's life. A context is not thread-safe, so calls run one at a
 *   time through a promise queue.
 * - Library calls that talk to the kernel run on FFI's blocking thread pool (`nonblocking: true`):
 *   a big transaction (a cold load takes about a second) never stalls the event loop.
 * - A whole buffer is one atomic transaction, exactly like `nft -f`.
 * - Errors: for a buffer, libnftables prints neither the line number nor the failing line (it
 *   quotes the buffer's first line whatever failed). So when a transaction fails, the same text
 *   is checked once more from a temporary file in dry-run mode (`nft -c -f FILE`: the kernel
 *   validates the batch and commits nothing), which names the line as `nft -f -` does. Its
 *   location is used only when it reports the same reason as the failed run.
 * - Memory: nft's parse trees, its cache of the table (all elements, after a listing) and its
 *   output buffer stay with the context, and glibc keeps what was freed. After a call that moved
 *   a lot of text (a cold load, a full listing: hundreds of MB at 10,000 services) the context is
 *   replaced by a fresh one and `malloc_trim(0)` hands the freed memory back, as the exit of an
 *   `nft` process would.
 * - netlink talks to the network namespace of this process: in tests the process must itself run
 *   under `ip netns exec` (there is no argv prefix to point it elsewhere).
 * @module
 */

import { NftError, nftErrorFrom, type NftExecutor } from "./executor.ts";
import { type Family, TABLE_NAME } from "./ruleset.ts";
import { mallocTrim } from "../platform/libc.ts";

/** The library's soname (Debian/Ubuntu `libnftables1`, Fedora `nftables`). */
export const LIBNFTABLES = "libnftables.so.1";

/** `NFT_CTX_OUTPUT_JSON` (`nft -j`). */
const OUTPUT_JSON = 1 << 4;
/** `NFT_CTX_OUTPUT_TERSE` (`nft -t`). */
const OUTPUT_TERSE = 1 << 11;
/** nft's exit status for a failed command (`NFT_EXIT_FAILURE`), reported as the command would. */
const EXIT_FAILURE = 1;

const SYMBOLS = {
  nft_ctx_new: { parameters: ["u32"], result: "pointer" },
  nft_ctx_free: { parameters: ["pointer"], result: "void" },
  /** Freeing a context that cached a whole big table takes a while: off the event loop. */
  nft_ctx_free_async: {
    name: "nft_ctx_free",
    parameters: ["pointer"],
    result: "void",
    nonblocking: true,
  },
  nft_ctx_buffer_output: { parameters: ["pointer"], result: "i32" },
  nft_ctx_buffer_error: { parameters: ["pointer"], result: "i32" },
  nft_ctx_output_set_flags: { parameters: ["pointer", "u32"], result: "void" },
  nft_ctx_set_dry_run: { parameters: ["pointer", "bool"], result: "void" },
  nft_ctx_get_output_buffer: { parameters: ["pointer"], result: "pointer" },
  nft_ctx_get_error_buffer: { parameters: ["pointer"], result: "pointer" },
  nft_run_cmd_from_buffer: { parameters: ["pointer", "buffer"], result: "i32", nonblocking: true },
  nft_run_cmd_from_filename: {
    parameters: ["pointer", "buffer"],
    result: "i32",
    nonblocking: true,
  },
} as const;

type Lib = Deno.DynamicLibrary<typeof SYMBOLS>;
type Ctx = NonNullable<Deno.PointerValue>;

/** Text in plus text out of one call above which the context is replaced and memory trimmed. */
const BIG_CALL_CHARS = 1 << 20;

/** How to open libnftables. */
export interface LibExecutorOptions {
  /** Library name or path (default {@link LIBNFTABLES}, found through the loader's search path). */
  readonly path?: string;
  /**
   * Reject a call that has not returned after this long (default 120 s, as the command executor).
   * The library call itself cannot be interrupted: later calls wait until it returns.
   */
  readonly timeoutMs?: number;
}

/** What one library call returned: its status and what it wrote to its output and error. */
interface CallResult {
  readonly rc: number;
  readonly out: string;
  readonly err: string;
  /** Characters of text in and out, to tell big calls. */
  readonly chars: number;
}

const encoder = new TextEncoder();

/** `text` as a NUL-terminated UTF-8 C string. */
function cString(text: string): Uint8Array {
  return encoder.encode(`${text}\0`);
}

function readCString(p: Deno.PointerValue): string {
  return p === null ? "" : Deno.UnsafePointerView.getCString(p);
}

/** A context with buffered output and errors, or why there is none. */
function newContext(lib: Lib): Ctx | string {
  const ctx = lib.symbols.nft_ctx_new(0);
  if (ctx === null) return "nft_ctx_new() returned NULL";
  // Output and errors go to buffers read after each call, not to this process's stdio.
  if (
    lib.symbols.nft_ctx_buffer_output(ctx) !== 0 || lib.symbols.nft_ctx_buffer_error(ctx) !== 0
  ) {
    lib.symbols.nft_ctx_free(ctx);
    return "cannot buffer its output";
  }
  return ctx;
}

function ffiPermissionProblem(path: string): string | null {
  try {
    // Queried, never requested: on a terminal a request would stop the daemon at a prompt.
    const state = Deno.permissions.querySync(
      path.includes("/") ? { name: "ffi", path } : { name: "ffi" },
    ).state;
    return state === "granted" ? null : "FFI permission is not granted (run with --allow-ffi)";
  } catch (e) {
    return `Cannot query the FFI permission: ${(e as Error).message}`;
  }
}

function writeGranted(): boolean {
  try {
    return Deno.permissions.querySync({ name: "write" }).state === "granted";
  } catch {
    return false;
  }
}

/**
 * Why libnftables cannot be used from this process, or null when it can: checks the FFI
 * permission (without prompting) and loads the library once, creating no context and touching no
 * ruleset.
 */
export function libnftablesUnavailableReason(path: string = LIBNFTABLES): string | null {
  const permission = ffiPermissionProblem(path);
  if (permission) return `Cannot use libnftables: ${permission}`;
  try {
    Deno.dlopen(path, SYMBOLS).close();
    return null;
  } catch (e) {
    return `Cannot load ${JSON.stringify(path)} through FFI: ${(e as Error).message}`;
  }
}

/**
 * Runs nft transactions through libnftables, in this process's network namespace.
 *
 * @example
 * ```ts
 * const lib = NftLibExecutor.tryOpen();
 * if (!lib) console.warn(`using the nft command: ${NftLibExecutor.unavailableReason}`);
 * const nft = lib ?? new NftCommandExecutor();
 * await nft.apply("add table ip svcgate\n");
 * ```
 */
export class NftLibExecutor implements NftExecutor {
  /** Why the last {@link NftLibExecutor.tryOpen} returned null (null after a success). */
  static unavailableReason: string | null = null;

  readonly #lib: Lib;
  #ctx: Ctx | null;
  #contexts = 1;
  readonly #path: string;
  readonly #timeoutMs: number;
  #queue: Promise<void> = Promise.resolve();
  /** The C string of the call in flight: kept referenced until the library has returned. */
  #inFlight: Uint8Array | null = null;
  #closed = false;

  private constructor(lib: Lib, ctx: Ctx, path: string, timeoutMs: number) {
    this.#lib = lib;
    this.#ctx = ctx;
    this.#path = path;
    this.#timeoutMs = timeoutMs;
  }

  /**
   * Loads the library and creates a context; throws an Error saying why when it cannot (no
   * `--allow-ffi`, library missing, context allocation failed).
   */
  static open(options: LibExecutorOptions = {}): NftLibExecutor {
    const path = options.path ?? LIBNFTABLES;
    const permission = ffiPermissionProblem(path);
    if (permission) throw new Error(`Cannot use libnftables: ${permission}`);
    let lib: Lib;
    try {
      lib = Deno.dlopen(path, SYMBOLS);
    } catch (e) {
      throw new Error(`Cannot load ${JSON.stringify(path)} through FFI: ${(e as Error).message}`);
    }
    const ctx = newContext(lib);
    if (typeof ctx === "string") {
      lib.close();
      throw new Error(`Cannot create a libnftables context with ${JSON.stringify(path)}: ${ctx}`);
    }
    return new NftLibExecutor(lib, ctx, path, options.timeoutMs ?? 120_000);
  }

  /**
   * {@link NftLibExecutor.open}, or null when it cannot; the reason is then in
   * {@link NftLibExecutor.unavailableReason}.
   */
  static tryOpen(options: LibExecutorOptions = {}): NftLibExecutor | null {
    try {
      const executor = NftLibExecutor.open(options);
      NftLibExecutor.unavailableReason = null;
      return executor;
    } catch (e) {
      NftLibExecutor.unavailableReason = (e as Error).message;
      return null;
    }
  }

  /** The library this executor loaded. */
  get path(): string {
    return this.#path;
  }

  /** How many contexts this executor has created (one, plus one after each big call). */
  get contextsCreated(): number {
    return this.#contexts;
  }

  /** True while a library call is running. */
  get busy(): boolean {
    return this.#inFlight !== null;
  }

  async apply(script: string): Promise<void> {
    const what = "Applying an nft transaction";
    const r = await this.#serialize(what, script, async (ctx) => {
      const first = await this.#call(ctx, 0, "buffer", script);
      if (first.rc === 0) return first;
      const located = await this.#locate(ctx, script, first.err);
      return located ? { ...first, err: located } : first;
    });
    if (r.rc !== 0) throw nftErrorFrom(what, r.err, EXIT_FAILURE, script);
  }

  listTable(family: Family): Promise<string | null> {
    return this.#list(0, ["list", "table", family, TABLE_NAME]);
  }

  listSet(family: Family, kind: "set" | "map", name: string): Promise<string | null> {
    return this.#list(0, ["list", kind, family, TABLE_NAME, name]);
  }

  async listOutline(family: Family): Promise<string> {
    const items: unknown[] = [];
    const calls: [number, string[]][] = [
      [OUTPUT_TERSE, ["list", "sets", family]],
      [OUTPUT_TERSE, ["list", "maps", family]],
      [0, ["list", "chains", family]],
    ];
    for (const [flags, args] of calls) {
      const json = await this.#list(flags, args);
      const doc = json === null ? null : JSON.parse(json);
      if (doc && Array.isArray(doc.nftables)) items.push(...doc.nftables);
    }
    return JSON.stringify({ nftables: items });
  }

  /**
   * Frees the context and unloads the library once the calls already queued have returned.
   * Later calls reject.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#queue;
    if (this.#ctx !== null) this.#lib.symbols.nft_ctx_free(this.#ctx);
    this.#ctx = null;
    this.#lib.close();
  }

  async #list(flags: number, args: string[]): Promise<string | null> {
    // The command executor's wording (`-j` implied there too).
    const what = `Listing "nft ${flags & OUTPUT_TERSE ? "-t " : ""}${args.join(" ")}"`;
    const command = args.join(" ");
    const r = await this.#serialize(
      what,
      command,
      (ctx) => this.#call(ctx, OUTPUT_JSON | flags, "buffer", command),
    );
    if (r.rc === 0) return r.out;
    if (/No such file or directory/.test(r.err)) return null;
    throw nftErrorFrom(what, r.err, EXIT_FAILURE);
  }

  /**
   * The failed transaction's error text with its location (`FILE:LINE:COL: Error: …`), from a
   * dry run of the same text from a file; null when that cannot be had or says something else.
   */
  async #locate(ctx: Ctx, script: string, err: string): Promise<string | null> {
    if (!writeGranted()) return null;
    let file: string | null = null;
    try {
      file = await Deno.makeTempFile({ prefix: "svcgate-nft-", suffix: ".nft" });
      await Deno.writeTextFile(file, script);
      this.#lib.symbols.nft_ctx_set_dry_run(ctx, true);
      const check = await this.#call(ctx, 0, "file", file);
      if (check.rc === 0) return null;
      const again = nftErrorFrom("", check.err, EXIT_FAILURE, script);
      const before = nftErrorFrom("", err, EXIT_FAILURE, script);
      return again.line !== undefined && again.reason === before.reason ? check.err : null;
    } catch {
      return null;
    } finally {
      this.#lib.symbols.nft_ctx_set_dry_run(ctx, false);
      if (file !== null) await Deno.remove(file).catch(() => {});
    }
  }

  /** One library call: set the output flags, run, collect (and so rewind) output and errors. */
  async #call(
    ctx: Ctx,
    flags: number,
    from: "buffer" | "file",
    text: string,
  ): Promise<CallResult> {
    const lib = this.#lib.symbols;
    lib.nft_ctx_output_set_flags(ctx, flags);
    const arg = cString(text);
    this.#inFlight = arg;
    let rc: number;
    try {
      rc = from === "buffer"
        ? await lib.nft_run_cmd_from_buffer(ctx, arg)
        : await lib.nft_run_cmd_from_filename(ctx, arg);
    } finally {
      this.#inFlight = null;
    }
    // Reading a buffer rewinds it: both are read after every call, so nothing leaks into the
    // next call's output.
    const out = readCString(lib.nft_ctx_get_output_buffer(ctx));
    const err = readCString(lib.nft_ctx_get_error_buffer(ctx));
    return { rc, out, err, chars: text.length + out.length + err.length };
  }

  /**
   * After a big call: a fresh context in place of the one holding the call's cache and buffers,
   * and glibc's freed memory back to the system. Keeps the old context if no new one comes.
   */
  async #release(): Promise<void> {
    const fresh = newContext(this.#lib);
    if (typeof fresh !== "string") {
      const old = this.#ctx;
      this.#ctx = fresh;
      this.#contexts++;
      if (old !== null) await this.#lib.symbols.nft_ctx_free_async(old);
    }
    await mallocTrim();
  }

  /**
   * Runs `work` after every call queued before it. The caller's promise rejects after the time
   * limit; the queue still waits for the library to return.
   */
  #serialize<T extends CallResult>(
    what: string,
    text: string,
    work: (ctx: Ctx) => Promise<T>,
  ): Promise<T> {
    const refuse = (reason: string, at?: { line: number; lineText: string }) =>
      Promise.reject(new NftError(what, { stderr: "", exitCode: -1, reason, ...at }));
    if (this.#closed) return refuse("the libnftables executor is closed");
    const nul = text.indexOf("\0");
    if (nul >= 0) {
      const line = text.slice(0, nul).split("\n").length;
      return refuse("the text contains a NUL byte, where libnftables would stop reading", {
        line,
        lineText: text.split("\n")[line - 1],
      });
    }
    return new Promise<T>((resolve, reject) => {
      const run = async (): Promise<void> => {
        const ctx = this.#ctx;
        if (ctx === null) {
          reject(
            new NftError(what, { stderr: "", exitCode: -1, reason: "no libnftables context" }),
          );
          return;
        }
        const timer = setTimeout(() =>
          reject(
            new NftError(what, {
              stderr: "",
              exitCode: -1,
              reason: `libnftables did not return within ${this.#timeoutMs} ms ` +
                "(the call goes on; later calls wait for it)",
            }),
          ), this.#timeoutMs);
        try {
          const result = await work(ctx);
          resolve(result);
          if (result.chars >= BIG_CALL_CHARS) await this.#release();
        } catch (e) {
          reject(new NftError(what, { stderr: "", exitCode: -1, reason: (e as Error).message }));
        } finally {
          clearTimeout(timer);
        }
      };
      this.#queue = this.#queue.then(run);
    });
  }
}
