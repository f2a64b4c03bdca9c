import { deepStrictEqual as assertEquals, ok as assert, throws } from "node:assert/strict";
import { isThreadOfThisProcess, mallocTrim, readKernelFile, writeKernelFile } from "./libc.ts";

Deno.test("libc: mallocTrim trims through glibc here (Debian), and says so", async () => {
  assertEquals(await mallocTrim(), true);
});

Deno.test("libc: every thread of this process is its own; other processes are not", () => {
  const threads = [...Deno.readDirSync(`/proc/${Deno.pid}/task`)].map((e) => Number(e.name));
  assert(threads.length > 1, `threads of ${Deno.pid}: ${threads}`);
  for (const tid of threads) assertEquals(isThreadOfThisProcess(tid), true, `thread ${tid}`);
  const other = new Deno.Command("sleep", { args: ["5"] }).spawn();
  try {
    assertEquals(isThreadOfThisProcess(other.pid), false, "a child");
  } finally {
    other.kill();
  }
});

Deno.test("libc: kernel files read and written; failures name the path and the reason", () => {
  // The same text Deno reads (the test runs with -A); a plain file round-trips.
  const path = "/proc/sys/net/netfilter/nf_conntrack_tcp_timeout_established";
  assertEquals(readKernelFile(path), Deno.readTextFileSync(path));
  // Past one read: mountinfo comes in pieces.
  const mountinfo = "/proc/self/mountinfo";
  assertEquals(readKernelFile(mountinfo), Deno.readTextFileSync(mountinfo));
  const file = Deno.makeTempFileSync();
  try {
    writeKernelFile(file, "131072\n");
    assertEquals(readKernelFile(file), "131072\n");
  } finally {
    Deno.removeSync(file);
  }
  throws(
    () => readKernelFile("/proc/sys/net/no_such_sysctl"),
    /Cannot open \/proc\/sys\/net\/no_such_sysctl for reading: No such file or directory/,
  );
  throws(
    () => writeKernelFile("/proc/sys/net/no_such_sysctl", "1\n"),
    /Cannot open \/proc\/sys\/net\/no_such_sysctl for writing: No such file or directory/,
  );
});
