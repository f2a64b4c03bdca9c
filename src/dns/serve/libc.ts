/**
 * libc through Deno FFI, for the transports that call it (udp_ffi.ts, tcp_ffi.ts) and socket
 * activation (inherited_sockets.ts): the platforms whose struct layouts they know, and the names
 * libc goes by.
 * @module
 */

/**
 * Opens libc with `symbols`, or says why not (`what` names the caller in the message): another
 * OS or architecture, or no libc that FFI can load (no --allow-ffi).
 */
export function openLibc<S extends Deno.ForeignLibraryInterface>(
  symbols: S,
  what: string,
): Deno.DynamicLibrary<S> | string {
  if (
    Deno.build.os !== "linux" || (Deno.build.arch !== "x86_64" && Deno.build.arch !== "aarch64")
  ) {
    return `${what} needs Linux on x86_64/aarch64, this is ${Deno.build.os}/${Deno.build.arch}`;
  }
  let why = "";
  for (const name of ["libc.so.6", "libc.so"]) {
    try {
      return Deno.dlopen(name, symbols);
    } catch (e) {
      why = `Cannot load ${name} through FFI: ${(e as Error).message}`;
    }
  }
  return why;
}
