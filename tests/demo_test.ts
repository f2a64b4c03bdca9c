/**
 * The README's first command, `deno task demo`, run as a user runs it: it must finish, exit 0 and
 * show what it promises (a name resolving to its VIP, and the ruleset). A change that breaks the
 * demo (a flag it needs, a new check at start) fails here rather than on a new user's machine.
 */

import { labTest } from "./lab/lab.ts";
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";

const DEMO = new URL("./demo.ts", import.meta.url).pathname;

labTest("demo: `deno task demo` runs to the end and exits 0", async () => {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", DEMO],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const out = new TextDecoder().decode(r.stdout);
  const err = new TextDecoder().decode(r.stderr);
  assertEquals(r.code, 0, `demo exited ${r.code}\n${out.slice(-3000)}\n${err.slice(-3000)}`);
  assert(/# Done in [\d.]+s; cleaning up/.test(out), out.slice(-2000));
  assert(out.includes("nft list map ip svcgate vip-backends-tcp"), "the ruleset is shown");
});
