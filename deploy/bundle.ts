/**
 * Builds dist/svcgate.js: main.ts and its npm dependencies in one minified file, run by the
 * pinned deno with the compile task's permission flags. Used where `deno compile` cannot fetch
 * its runtime.
 *
 * esbuild's ESM output cannot `require()` the Node built-ins that CommonJS dependencies ask for;
 * a one-line prelude gives it Node's own `require`.
 *
 * Usage: deno run -A deploy/bundle.ts [OUT=dist/svcgate.js]
 * @module
 */

const out = Deno.args[0] ?? "dist/svcgate.js";
const root = new URL("..", import.meta.url).pathname;
const bundled = await new Deno.Command(Deno.execPath(), {
  args: ["bundle", "--quiet", "--minify", "--platform=deno", "-o", out, "main.ts"],
  cwd: root,
  stdout: "inherit",
  stderr: "inherit",
}).output();
if (bundled.code !== 0) {
  console.error(
    `Cannot bundle main.ts into ${JSON.stringify(out)}: deno bundle exited ${bundled.code}`,
  );
  Deno.exit(1);
}
const path = out.startsWith("/") ? out : `${root}${out}`;
const prelude =
  'import{createRequire as __svcgateRequire}from"node:module";globalThis.require??=__svcgateRequire(import.meta.url);\n';
await Deno.writeTextFile(path, prelude + await Deno.readTextFile(path));
console.log(`bundled ${out}`);
