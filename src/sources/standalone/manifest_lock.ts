/**
 * The VIP lock file of a manifest path (`svcgate-vips.lock` inside the folder, or beside the
 * single file): where it is and what it holds.
 * @module
 */

import { type VipLock, vipLockPath } from "../../ipam/lock.ts";
import { readVipLock } from "../../ipam/state_file.ts";

/** A manifest path's lock file: the lock, null when there is none, or why it cannot be used. */
export interface ManifestLock {
  readonly path: string;
  readonly lock: VipLock | null | string;
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isDirectory;
  } catch {
    return false;
  }
}

/**
 * Reads the lock file that belongs to `manifests`. Never throws: a lock that cannot be read or
 * parsed comes back as a message naming the file.
 *
 * @example
 * ```ts
 * const { path, lock } = await readManifestLock("/etc/svcgate/manifests");
 * if (typeof lock === "string") log.error(lock);
 * ```
 */
export async function readManifestLock(manifests: string): Promise<ManifestLock> {
  const path = vipLockPath(manifests, await isDirectory(manifests));
  return { path, lock: await readVipLock(path) };
}
