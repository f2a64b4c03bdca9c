/**
 * The few libc calls svcgate makes through FFI outside the DNS socket path (dns/serve/udp_ffi.ts
 * has its own table): releasing heap pages, telling this process's threads from other processes,
 * and reading and writing kernel tunables under /proc and /sys, which Deno grants only under
 * --allow-all while the shipped flags grant FFI. Every function answers null or false where FFI
 * is not granted or libc is not glibc, and never prompts for a permission.
 * @module
 */

const SYMBOLS = {
  malloc_trim: { parameters: ["usize"], result: "i32", nonblocking: true, optional: true },
  tgkill: { parameters: ["i32", "i32", "i32"], result: "i32", optional: true },
  open: { parameters: ["buffer", "i32"], result: "i32" },
  read: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  write: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  close: { parameters: ["i32"], result: "i32" },
  __errno_location: { parameters: [], result: "pointer" },
  strerror: { parameters: ["i32"], result: "pointer" },
} as const;

type Libc = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

let loaded: Libc | null | undefined;

/** libc's symbols, or null without FFI permission or glibc. */
function libc(): Libc | null {
  if (loaded !== undefined) return loaded;
  loaded = null;
  try {
    // Queried, never requested: on a terminal a request would stop the daemon at a prompt.
    if (Deno.permissions.querySync({ name: "ffi" }).state !== "granted") return null;
    loaded = Deno.dlopen("libc.so.6", SYMBOLS).symbols;
  } catch {
    // not glibc (musl): callers fall back or do without
  }
  return loaded;
}

const O_RDONLY = 0, O_WRONLY = 1, O_CLOEXEC = 0o2000000;
/** The most a kernel file may hold here (a sysctl is bytes, mountinfo kilobytes). */
const MAX_KERNEL_FILE = 4 * 2 ** 20;

function errnoText(c: Libc): string {
  const errno = new Deno.UnsafePointerView(c.__errno_location()!).getInt32();
  const text = c.strerror(errno);
  return text ? new Deno.UnsafePointerView(text).getCString() : `errno ${errno}`;
}

function cString(text: string): Uint8Array<ArrayBuffer> {
  return new TextEncoder().encode(`${text}\0`) as Uint8Array<ArrayBuffer>;
}

/**
 * Releases glibc's free heap pages (off the event loop); false where that cannot be done (no
 * glibc, no FFI permission).
 */
export async function mallocTrim(): Promise<boolean> {
  const trim = libc()?.malloc_trim;
  if (!trim) return false;
  await trim(0n);
  return true;
}

/**
 * Whether `tid` is a thread of this process: tgkill(pid, tid, 0) delivers nothing and succeeds
 * only for a thread of this thread group. Null when it cannot be asked.
 */
export function isThreadOfThisProcess(tid: number): boolean | null {
  const tgkill = libc()?.tgkill;
  return tgkill ? tgkill(Deno.pid, tid, 0) === 0 : null;
}

/**
 * Reads a small kernel file (a sysctl, a module parameter, mountinfo): its text, through libc when FFI is
 * granted, else through Deno (which asks for --allow-all under /proc and /sys). Throws with the
 * path and the system's reason.
 */
export function readKernelFile(path: string): string {
  const c = libc();
  if (!c) return Deno.readTextFileSync(path);
  const fd = c.open(cString(path), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw new Error(`Cannot open ${path} for reading: ${errnoText(c)}`);
  try {
    // Until end of file: /proc files say size 0 and come in pieces (mountinfo is several).
    const parts: Uint8Array[] = [];
    let total = 0;
    for (;;) {
      const buf = new Uint8Array(65536);
      const n = Number(c.read(fd, buf, BigInt(buf.length)));
      if (n < 0) throw new Error(`Cannot read ${path}: ${errnoText(c)}`);
      if (n === 0) break;
      parts.push(buf.subarray(0, n));
      total += n;
      if (total > MAX_KERNEL_FILE) {
        throw new Error(`Cannot read ${path}: over ${MAX_KERNEL_FILE} bytes`);
      }
    }
    const all = new Uint8Array(total);
    let at = 0;
    for (const p of parts) {
      all.set(p, at);
      at += p.length;
    }
    return new TextDecoder().decode(all);
  } finally {
    c.close(fd);
  }
}

/** Writes a small kernel file in one write(2), as `echo VALUE > PATH`; throws as above. */
export function writeKernelFile(path: string, text: string): void {
  const c = libc();
  if (!c) return Deno.writeTextFileSync(path, text);
  const fd = c.open(cString(path), O_WRONLY | O_CLOEXEC);
  if (fd < 0) throw new Error(`Cannot open ${path} for writing: ${errnoText(c)}`);
  try {
    const bytes = new TextEncoder().encode(text);
    const n = Number(c.write(fd, bytes, BigInt(bytes.length)));
    if (n < 0) throw new Error(`Cannot write "${text.trim()}" to ${path}: ${errnoText(c)}`);
  } finally {
    c.close(fd);
  }
}
