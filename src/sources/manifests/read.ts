/**
 * The file system edge of the manifest source: finds manifest files under a path and reads them.
 * @module
 */

import { compareText } from "../../model/text.ts";
import {
  assembleManifests,
  type ManifestFile,
  type ManifestLoad,
  unreadableManifestFile,
} from "./load.ts";
import {
  decodeManifestBytes,
  DEFAULT_MANIFEST_LIMITS,
  type ManifestLimits,
  parseManifestFile,
} from "./parse_file.ts";

/** A manifest file found on disk, with what the periodic check compares. */
export interface ManifestFileInfo {
  /** The root joined with the path below it, as shown in errors. */
  readonly path: string;
  /** Null when the entry cannot be stat'ed (for example a dangling symlink). */
  readonly mtimeMs: number | null;
  readonly size: number;
  readonly ino: number | null;
}

const MANIFEST_EXTENSION = /\.(ya?ml|json)$/i;

function join(dir: string, name: string): string {
  return dir.endsWith("/") ? dir + name : `${dir}/${name}`;
}

function reason(e: unknown): string {
  if (e instanceof Deno.errors.NotFound) return "no such file or directory";
  if (e instanceof Deno.errors.PermissionDenied) return "permission denied";
  return e instanceof Error ? e.message : String(e);
}

/**
 * Lists the manifest files under `root`: the file itself, or every `*.yaml`, `*.yml` and `*.json`
 * below the directory, recursively, sorted by path. Entries whose names start with "." are
 * skipped: editors' swap files, and the `..data` folders of Kubernetes ConfigMap volumes (their
 * files are reached through the visible symlinks). Symlinks are followed, loops are not.
 * Throws an Error naming the path when the root or a folder below it cannot be read.
 */
export async function listManifestFiles(root: string): Promise<ManifestFileInfo[]> {
  let rootStat: Deno.FileInfo;
  try {
    rootStat = await Deno.stat(root);
  } catch (e) {
    throw new Error(`Cannot read manifests "${root}": ${reason(e)}`);
  }
  const info = (path: string, st: Deno.FileInfo | null): ManifestFileInfo => ({
    path,
    mtimeMs: st?.mtime?.getTime() ?? null,
    size: st?.size ?? 0,
    ino: st?.ino ?? null,
  });
  if (!rootStat.isDirectory) return [info(root, rootStat)];
  const out: ManifestFileInfo[] = [];
  const visited = new Set<string>();
  // The root may vanish between the stat and the walk: the same message either way.
  const failure = (dir: string, e: unknown) =>
    new Error(`Cannot read manifests ${dir === root ? "" : "folder "}"${dir}": ${reason(e)}`);
  const walk = async (dir: string): Promise<void> => {
    let real: string;
    try {
      real = await Deno.realPath(dir);
    } catch (e) {
      // A folder below the root removed while we walk is simply gone, like its files.
      if (dir !== root && e instanceof Deno.errors.NotFound) return;
      throw failure(dir, e);
    }
    if (visited.has(real)) return;
    visited.add(real);
    const entries: Deno.DirEntry[] = [];
    try {
      for await (const entry of Deno.readDir(dir)) entries.push(entry);
    } catch (e) {
      if (dir !== root && e instanceof Deno.errors.NotFound) return;
      throw failure(dir, e);
    }
    entries.sort((a, b) => compareText(a.name, b.name));
    for (const entry of entries) {
      if (entry.name.startsWith(".")) continue;
      const path = join(dir, entry.name);
      let st: Deno.FileInfo | null = null;
      try {
        st = await Deno.stat(path);
      } catch {
        // A dangling symlink or a file removed meanwhile; reading it reports the reason.
      }
      if (st?.isDirectory) {
        await walk(path);
      } else if (MANIFEST_EXTENSION.test(entry.name)) {
        out.push(info(path, st));
      }
    }
  };
  await walk(root);
  return out.sort((a, b) => compareText(a.path, b.path));
}

/**
 * The bytes of a file, or the reason it cannot be read. A file larger than `maxBytes` is refused
 * by its size before any of it is read (and a file that grows past it while being read, after).
 */
export async function readManifestBytes(
  path: string,
  maxBytes: number,
): Promise<{ bytes: Uint8Array } | { error: string }> {
  const tooLarge = (size: number) => ({
    error: `it is ${size} bytes, more than the limit of ${maxBytes} (--manifest-max-file-size)`,
  });
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path);
  } catch (e) {
    return { error: reason(e) };
  }
  try {
    const size = (await file.stat()).size;
    if (size > maxBytes) return tooLarge(size);
    // Room for one byte more than the stat said: a file that grew shows it.
    let buf = new Uint8Array(Math.min(size, maxBytes) + 1);
    let n = 0;
    for (;;) {
      if (n === buf.length) {
        if (n > maxBytes) return tooLarge(n);
        const bigger = new Uint8Array(Math.min(buf.length * 2, maxBytes + 1));
        bigger.set(buf);
        buf = bigger;
      }
      const got = await file.read(buf.subarray(n));
      if (got === null) break;
      n += got;
    }
    return { bytes: buf.subarray(0, n) };
  } catch (e) {
    return { error: reason(e) };
  } finally {
    file.close();
  }
}

/** Reads and parses one manifest file; a read failure becomes a broken file with its reason. */
export async function readManifestFile(
  path: string,
  limits: ManifestLimits = DEFAULT_MANIFEST_LIMITS,
): Promise<ManifestFile> {
  const r = await readManifestBytes(path, limits.fileBytes);
  const text = "error" in r ? r : decodeManifestBytes(r.bytes);
  return "error" in text
    ? unreadableManifestFile(path, text.error)
    : parseManifestFile({ path, text: text.text }, limits);
}

/**
 * Reads every manifest under `path` (a file or a folder) and loads them. Throws when the path
 * itself cannot be read; problems inside files are in `errors`.
 *
 * @example
 * ```ts
 * const load = await readManifests("deploy/examples");
 * for (const e of load.errors) console.error(formatError(e));
 * console.log(load.services.map((s) => `${s.namespace}/${s.name}`));
 * ```
 */
export async function readManifests(
  path: string,
  limits: ManifestLimits = DEFAULT_MANIFEST_LIMITS,
): Promise<ManifestLoad> {
  const infos = await listManifestFiles(path);
  const files: ManifestFile[] = [];
  for (const info of infos) files.push(await readManifestFile(info.path, limits));
  return assembleManifests(files);
}
