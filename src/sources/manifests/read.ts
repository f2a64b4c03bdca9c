/**
 * The file system edge of the manifest source: finds manifest files under a path and reads them.
 * @module
 */

import { compareText } from "../../model/text.ts";
import {
  assembleManifests,
  type ManifestFile,
  type ManifestLoad,
  parseManifestFile,
  unreadableManifestFile,
} from "./load.ts";

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

/** The bytes of a file decoded as UTF-8 text, or the reason it cannot be read. */
export async function readManifestBytes(
  path: string,
): Promise<{ bytes: Uint8Array; text: string } | { error: string }> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    return { error: reason(e) };
  }
  try {
    return { bytes, text: new TextDecoder("utf-8", { fatal: true }).decode(bytes) };
  } catch {
    return { error: "it is not UTF-8 text" };
  }
}

/** Reads and parses one manifest file; a read failure becomes a broken file with its reason. */
export async function readManifestFile(path: string): Promise<ManifestFile> {
  const r = await readManifestBytes(path);
  return "error" in r
    ? unreadableManifestFile(path, r.error)
    : parseManifestFile({ path, text: r.text });
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
export async function readManifests(path: string): Promise<ManifestLoad> {
  const infos = await listManifestFiles(path);
  const files: ManifestFile[] = [];
  for (const info of infos) files.push(await readManifestFile(info.path));
  return assembleManifests(files);
}
