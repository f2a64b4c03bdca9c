/**
 * Memory of a process from /proc: VmRSS and the peak VmHWM. The lab starts the daemon as
 * `ip netns exec NS env ... deno ...`; both exec in place on this machine, but an `ip` that forks
 * would leave the daemon as a child: {@link daemonMemory} follows children until it finds deno.
 * @module
 */

/** VmRSS and VmHWM in bytes, and the process name, of one pid. */
export async function processMemory(
  pid: number,
): Promise<{ rss: number; hwm: number; name: string }> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  const kb = (field: string) =>
    Number(status.match(new RegExp(`^${field}:\\s+(\\d+) kB`, "m"))?.[1] ?? NaN) * 1024;
  return { rss: kb("VmRSS"), hwm: kb("VmHWM"), name: status.match(/^Name:\s+(\S+)/m)?.[1] ?? "?" };
}

/** The deno process at `pid` or below it (through `ip netns exec` and `env`). */
export async function denoPid(pid: number): Promise<number> {
  for (let depth = 0; depth < 4; depth++) {
    const { name } = await processMemory(pid);
    if (name === "deno") return pid;
    const children = (await Deno.readTextFile(`/proc/${pid}/task/${pid}/children`)).trim();
    if (children === "") break;
    pid = Number(children.split(/\s+/)[0]);
  }
  throw new Error(`Cannot find the deno process under pid ${pid}`);
}

/** Memory of the daemon started as `pid` (the lab's spawn), in bytes. */
export async function daemonMemory(pid: number): Promise<{ rss: number; hwm: number }> {
  const { rss, hwm } = await processMemory(await denoPid(pid));
  return { rss, hwm };
}
