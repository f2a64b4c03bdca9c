/**
 * A temporary directory for one test, removed afterwards whatever the outcome, and a listing of it.
 * @module
 */

/**
 * Runs `fn` with a new temporary directory named `<prefix>XXXX`, then removes it recursively.
 *
 * @example
 * ```ts
 * await withTempDir("svcgate-ipam-", async (dir) => {
 *   await Deno.writeTextFile(`${dir}/ipam.json`, "{}");
 * });
 * ```
 */
export async function withTempDir(
  prefix: string,
  fn: (dir: string) => Promise<void> | void,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** The names in a directory, sorted (to check what a test left behind). */
export async function listDir(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) names.push(e.name);
  return names.sort();
}
