/**
 * Builds dist/svcgate/: main.ts and its npm dependencies as minified files, the entry
 * `svcgate.js` and the chunks it imports, run by the pinned deno with the compile task's
 * permission flags; and the DNS workers' entry, `src/dns/serve/worker_main.js` (main.ts finds it
 * there), sharing those chunks. Used where `deno compile` cannot fetch its runtime.
 *
 * Split into chunks so that a process loads only what its mode imports: the whole Kubernetes
 * client (~3.2 MB of the ~3.9 MB) is imported only by the "typed" list mode and the
 * auth-plugin fallback, and a script Deno loads costs memory for as long as the process runs.
 *
 * Usage: deno run -A deploy/bundle.ts [OUT_DIR=dist/svcgate]
 * @module
 */

const root = new URL("..", import.meta.url).pathname;
/** The DNS workers' entry: bundled at the same path, `.js` for `.ts` (main.ts relies on it). */
const DNS_WORKER_ENTRY = "src/dns/serve/worker_main.ts";
const outArg = Deno.args[0] ?? "dist/svcgate";
const out = (outArg.startsWith("/") ? outArg : `${root}${outArg}`).replace(/\/+$/, "");
// Built beside the target and renamed over it: no chunk of an older build is left behind.
const parent = out.slice(0, out.lastIndexOf("/")) || "/";
await Deno.mkdir(parent, { recursive: true });
const staging = await Deno.makeTempDir({ dir: parent, prefix: ".svcgate-bundle-" });
try {
  const bundled = await new Deno.Command(Deno.execPath(), {
    args: [
      ...["bundle", "--quiet", "--minify", "--platform=deno", "--code-splitting"],
      ...["--outdir", staging, "main.ts", DNS_WORKER_ENTRY],
    ],
    cwd: root,
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  if (bundled.code !== 0) {
    throw new Error(
      `Cannot bundle main.ts into ${JSON.stringify(out)}: deno bundle exited ${bundled.code}`,
    );
  }
  await Deno.rename(`${staging}/main.js`, `${staging}/svcgate.js`);
  await Deno.chmod(staging, 0o755);
  await removeOldBundle(out);
  await Deno.rename(staging, out);
} catch (e) {
  await Deno.remove(staging, { recursive: true }).catch(() => {});
  console.error(e instanceof Error ? e.message : String(e));
  Deno.exit(1);
}
console.log(`bundled ${outArg}/svcgate.js`);

/** Removes an earlier build at `dir`; refuses a directory that holds anything but a bundle. */
async function removeOldBundle(dir: string): Promise<void> {
  const names: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) names.push(e.name);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return;
    throw e;
  }
  // The worker entry keeps its source path: its top folder is the bundle's too.
  const ownDir = DNS_WORKER_ENTRY.split("/")[0];
  const foreign = names.filter((n) => !n.endsWith(".js") && n !== ownDir);
  if (names.length > 0 && (!names.includes("svcgate.js") || foreign.length > 0)) {
    throw new Error(
      `Cannot replace ${JSON.stringify(dir)}: it is not an earlier bundle (holds ${
        JSON.stringify(foreign.length > 0 ? foreign.slice(0, 3) : names.slice(0, 3))
      })`,
    );
  }
  await Deno.remove(dir, { recursive: true });
}
