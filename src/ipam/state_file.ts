/**
 * The IPAM state on disk: `<state-dir>/ipam.json`, written atomically (temporary file in the same
 * directory, fsync, rename, fsync of the directory), so a crash or power loss leaves either the old
 * or the new file, never a torn one. The I/O edge of src/ipam.
 * @module
 */

import { adoptLiveAllocations, EMPTY_IPAM_STATE, type IpamState, parseIpamState } from "./state.ts";
import { renderIpamState } from "./state.ts";
import { parseVipLock, type VipLock } from "./lock.ts";

/** The state file's name inside `--state-dir`. */
export const IPAM_STATE_FILE = "ipam.json";

/** What {@link loadIpamState} found. */
export interface LoadedIpamState {
  /** The state to start from: the file's, made to agree with the live VIPs. */
  readonly state: IpamState;
  /** `file`: read and valid; `missing`: no file (first start, or deleted); `corrupt`: unreadable. */
  readonly status: "file" | "missing" | "corrupt";
  /** For `missing` and `corrupt`: a message naming the file and what is wrong, to log. */
  readonly problem?: string;
  /** Service keys whose VIPs were taken from the live list (recovered or corrected). */
  readonly adopted: readonly string[];
  /** Live entries that could not be used, quoted, to log. */
  readonly liveProblems: readonly string[];
  /** True when `state` differs from the file (the caller should save it). */
  readonly needsSave: boolean;
}

function join(dir: string, name: string): string {
  return dir.endsWith("/") ? `${dir}${name}` : `${dir}/${name}`;
}

function describe(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/**
 * Loads `<stateDir>/ipam.json` and reconciles it with the VIPs the kernel serves now
 * (`liveAllocations`, service key -> VIPs, read by the caller from the nft table), so no live VIP
 * moves. A missing or corrupt file is reported in `problem` and recovered from the live list alone;
 * a corrupt file is first moved aside to `ipam.json.corrupt` for inspection. Never throws.
 *
 * `readOnly` (for `svcgate ipam pin`, which may run beside a live daemon) changes nothing on
 * disk: no moving aside, no clean-up of temporary files left by killed writers.
 *
 * @example
 * ```ts
 * const loaded = await loadIpamState("/var/lib/svcgate", liveFromNft);
 * if (loaded.problem) log.warn(loaded.problem);
 * ```
 */
export async function loadIpamState(
  stateDir: string,
  liveAllocations: Readonly<Record<string, readonly string[]>>,
  options: { readonly readOnly?: boolean } = {},
): Promise<LoadedIpamState> {
  const readOnly = options.readOnly ?? false;
  const path = join(stateDir, IPAM_STATE_FILE);
  const liveCount = Object.keys(liveAllocations).length;
  const recovering = `recovering ${liveCount} service(s) from the live ruleset`;
  let text: string | null = null;
  let status: LoadedIpamState["status"] = "file";
  let problem: string | undefined;
  let base: IpamState = EMPTY_IPAM_STATE;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      status = "missing";
      problem = `IPAM state file ${JSON.stringify(path)} does not exist; ${recovering}`;
    } else {
      status = "corrupt";
      problem = `Cannot read IPAM state file ${JSON.stringify(path)}: ${
        describe(e)
      }; ${recovering}`;
    }
  }
  if (text !== null) {
    const parsed = parseIpamState(text);
    if (typeof parsed === "string") {
      status = "corrupt";
      const aside = `${path}.corrupt`;
      let kept = "left it in place (read-only)";
      if (!readOnly) {
        try {
          await Deno.rename(path, aside);
          kept = `moved it to ${JSON.stringify(aside)}`;
        } catch (e) {
          kept = `could not move it to ${JSON.stringify(aside)} (${describe(e)})`;
        }
      }
      problem = `Cannot load IPAM state file ${
        JSON.stringify(path)
      }: ${parsed}; ${kept}; ${recovering}`;
    } else {
      base = parsed;
    }
  }
  if (!readOnly) await removeStaleTemporaries(stateDir);
  const { state, adopted, problems } = adoptLiveAllocations(base, liveAllocations);
  const needsSave = status !== "file" || text !== renderIpamState(state);
  return {
    state,
    status,
    ...(problem !== undefined ? { problem } : {}),
    adopted,
    liveProblems: problems,
    needsSave,
  };
}

/**
 * Removes temporary files left by writers that were killed mid-write (their process is gone), so
 * crashes do not accumulate files. Best effort: a failure here changes nothing else.
 */
async function removeStaleTemporaries(stateDir: string): Promise<void> {
  const prefix = `.${IPAM_STATE_FILE}.tmp-`;
  try {
    for await (const entry of Deno.readDir(stateDir)) {
      if (!entry.isFile || !entry.name.startsWith(prefix)) continue;
      const pid = Number(entry.name.slice(prefix.length).split("-")[0]);
      if (pid === Deno.pid || (pid > 0 && await processExists(pid))) continue;
      await Deno.remove(join(stateDir, entry.name)).catch(() => {});
    }
  } catch {
    // No directory yet, or unreadable: nothing to clean.
  }
}

async function processExists(pid: number): Promise<boolean> {
  try {
    await Deno.stat(`/proc/${pid}`);
    return true;
  } catch {
    return false;
  }
}

/**
 * Saves the state to `<stateDir>/ipam.json` atomically, creating the directory when needed.
 *
 * @example
 * ```ts
 * if (result.stateChanged) await saveIpamState("/var/lib/svcgate", result.state);
 * ```
 */
export async function saveIpamState(stateDir: string, state: IpamState): Promise<void> {
  await Deno.mkdir(stateDir, { recursive: true, mode: 0o755 });
  await writeFileAtomic(join(stateDir, IPAM_STATE_FILE), renderIpamState(state));
}

/**
 * Replaces a file's content atomically: writes a temporary file in the same directory, fsyncs it,
 * renames it over the target and fsyncs the directory, so readers and crashes see either the old
 * or the new content. The temporary file is removed when anything fails.
 *
 * @example
 * ```ts
 * await writeFileAtomic("/etc/svcgate/manifests/svcgate-vips.lock", text);
 * ```
 */
export async function writeFileAtomic(path: string, text: string, mode = 0o644): Promise<void> {
  const slash = path.lastIndexOf("/");
  const dir = slash < 0 ? "." : slash === 0 ? "/" : path.slice(0, slash);
  const base = path.slice(slash + 1);
  const rand = crypto.getRandomValues(new Uint32Array(1))[0].toString(16);
  const tmp = `${dir === "/" ? "" : dir}/.${base}.tmp-${Deno.pid}-${rand}`;
  try {
    const file = await Deno.open(tmp, { write: true, createNew: true, mode });
    try {
      const bytes = new TextEncoder().encode(text);
      let written = 0;
      while (written < bytes.length) written += await file.write(bytes.subarray(written));
      await file.sync();
    } finally {
      file.close();
    }
    await Deno.rename(tmp, path);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw new Error(`Cannot write ${JSON.stringify(path)}: ${describe(e)}`, { cause: e });
  }
  // The rename is durable only once the directory entry is on disk.
  const d = await Deno.open(dir, { read: true });
  try {
    await d.sync();
  } finally {
    d.close();
  }
}

/**
 * Reads the VIP lock file. Returns the lock, null when there is none, or a message saying what is
 * wrong (naming the file): the caller then keeps its previous pins (last good state).
 *
 * @example
 * ```ts
 * const lock = await readVipLock(vipLockPath(manifests, true));
 * if (typeof lock === "string") log.error(lock);
 * else allocator.setPins(lock?.services);
 * ```
 */
export async function readVipLock(path: string): Promise<VipLock | null | string> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    return `Cannot read VIP lock file ${JSON.stringify(path)}: ${describe(e)}`;
  }
  return parseVipLock(text, path);
}
