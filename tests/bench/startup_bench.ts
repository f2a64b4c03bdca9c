/**
 * Startup: `svcgate version` and `svcgate render` from main.ts (importing npm modules whole) and
 * from the minified single-file bundle, under the compile task's permission flags; median of N.
 *
 * Usage: deno run -A tests/bench/startup_bench.ts [--runs=10]
 * @module
 */

const root = new URL("../..", import.meta.url).pathname;
const runs = Number(Deno.args.find((a) => a.startsWith("--runs="))?.slice(7) ?? 10);
const deno = Deno.execPath();

async function timeIt(args: string[]): Promise<number> {
  const start = performance.now();
  const r = await new Deno.Command(deno, { args, cwd: root, stdout: "null", stderr: "null" })
    .output();
  if (r.code !== 0) throw new Error(`"deno ${args.join(" ")}" exited ${r.code}`);
  return performance.now() - start;
}

async function median(args: string[]): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < runs; i++) times.push(await timeIt(args));
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

const config = JSON.parse(await Deno.readTextFile(`${root}deno.json`));
const flags = (config.tasks.compile as string).split(/\s+/).filter((w) =>
  /^--(allow|unstable)-/.test(w)
);
const dir = await Deno.makeTempDir({ prefix: "svcgate-startup-" });
try {
  const bundle = `${dir}/svcgate/svcgate.js`;
  const built = await new Deno.Command(deno, {
    args: ["run", "-A", "deploy/bundle.ts", `${dir}/svcgate`],
    cwd: root,
    stdout: "null",
  }).output();
  if (built.code !== 0) throw new Error("bundle failed");
  const render = [
    "render",
    "--manifests",
    "deploy/examples",
    "--service-cidr",
    "198.19.0.0/16,2001:db8:ffff::/112",
  ];
  const rows: [string, number][] = [
    ["main.ts version", await median(["run", ...flags, "main.ts", "version"])],
    ["bundle version", await median(["run", ...flags, bundle, "version"])],
    ["main.ts render (examples)", await median(["run", ...flags, "main.ts", ...render])],
    ["bundle render (examples)", await median(["run", ...flags, bundle, ...render])],
  ];
  console.log(`\nStartup, median of ${runs} runs (process start to exit)`);
  console.log("| command | ms |\n| --- | ---: |");
  for (const [name, ms] of rows) console.log(`| ${name} | ${ms.toFixed(0)} |`);
  const files: string[] = [];
  for await (const e of Deno.readDir(`${dir}/svcgate`)) files.push(e.name);
  const sizes = await Promise.all(
    files.map(async (n) => (await Deno.stat(`${dir}/svcgate/${n}`)).size),
  );
  console.log(
    `bundle size: entry ${((await Deno.stat(bundle)).size / 1024).toFixed(0)} KiB, ` +
      `${files.length} files ${(sizes.reduce((a, b) => a + b, 0) / 1024).toFixed(0)} KiB`,
  );
} finally {
  await Deno.remove(dir, { recursive: true });
}
