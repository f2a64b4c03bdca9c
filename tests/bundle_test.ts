/**
 * The single-file artifact: built here with deno bundle (deno compile cannot fetch its runtime
 * offline), then run with exactly the permission flags of the compile task.
 */

import { Lab, labTest } from "./lab/lab.ts";
import { COMPILE_FLAGS, dig, httpGet, startDaemon } from "./daemon/harness.ts";

const root = new URL("..", import.meta.url).pathname;
const deno = Deno.execPath();

function assert(cond: unknown, message: string): asserts cond {
  if (!cond) throw new Error(message);
}

async function run(
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string; ms: number }> {
  const start = performance.now();
  const r = await new Deno.Command(deno, { args, cwd: root, stdout: "piped", stderr: "piped" })
    .output();
  const dec = new TextDecoder();
  return {
    code: r.code,
    stdout: dec.decode(r.stdout),
    stderr: dec.decode(r.stderr),
    ms: performance.now() - start,
  };
}

Deno.test("bundle: one file runs version and render under the compile task's permissions", async () => {
  const dir = await Deno.makeTempDir({ prefix: "svcgate-bundle-" });
  try {
    const out = `${dir}/svcgate.js`;
    const built = await run(["run", "-A", "deploy/bundle.ts", out]);
    assert(built.code === 0, `bundle failed: ${built.stderr}`);
    const flags = COMPILE_FLAGS;
    assert(flags.length > 0, "compile task has no permission flags");
    // No -A here: the bundle must work with the narrow flags the binary is built with.
    const version = await run(["run", ...flags, out, "version"]);
    assert(version.code === 0, `version failed: ${version.stderr}`);
    assert(/^svcgate \d+\.\d+\.\d+/.test(version.stdout), `unexpected version: ${version.stdout}`);
    const render = await run([
      "run",
      ...flags,
      out,
      "render",
      "--manifests",
      "deploy/examples",
      "--service-cidr",
      "198.19.0.0/16,2001:db8:ffff::/112",
    ]);
    assert(render.code === 0, `render failed (${render.code}): ${render.stderr}`);
    assert(
      render.stdout.includes("table ip svcgate"),
      `render printed no ruleset:\n${render.stdout}`,
    );
    const direct = await run([
      "run",
      "-A",
      "main.ts",
      "render",
      "--manifests",
      "deploy/examples",
      "--service-cidr",
      "198.19.0.0/16,2001:db8:ffff::/112",
    ]);
    assert(direct.stdout === render.stdout, "bundle and main.ts render differently");
    console.log(`startup: bundle version ${version.ms.toFixed(0)} ms`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

labTest(
  "bundle: the single file runs the daemon (DNS workers included) under the compile flags",
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "svcgate-bundle-" });
    // deploy/examples names three pods (198.18.0.10-12).
    const lab = await Lab.create({ pods: 3 });
    try {
      const out = `${dir}/svcgate.js`;
      const built = await run(["run", "-A", "deploy/bundle.ts", out]);
      assert(built.code === 0, `bundle failed: ${built.stderr}`);
      await lab.startPodServers();
      const daemon = startDaemon(lab, {
        program: ["run", ...COMPILE_FLAGS, out],
        args: [
          ...["--manifests", `${root}deploy/examples`, "--state-dir", `${dir}/state`],
          ...["--service-cidr", "198.19.0.0/16,2001:db8:ffff::/112", "--upstream", "127.0.0.1:1"],
          // The daemon answers on its main thread by default; a worker must load from the bundle.
          ...["--dns-bind-address", "198.18.0.1:53", "--dns-workers", "1"],
        ],
      });
      await daemon.waitReady();
      const web = await dig(lab, "198.18.0.1", "web.default.svc.cluster.local");
      assert(
        web.status === "NOERROR" && web.answers.length === 1,
        `dig web: ${JSON.stringify(web)}`,
      );
      assert(
        daemon.log.some((l) => l.includes("DNS listening") && l.includes("workers=1")),
        "DNS ran in a worker loaded from the bundle",
      );
      const body = await httpGet(lab, `http://${web.answers[0]}/`);
      assert(/^pod-[012]$/.test(body), `web answered ${JSON.stringify(body)}`);
      assert((await daemon.stop()) === 0, "bundle daemon exits 0 on SIGTERM");
    } finally {
      await lab.destroy();
      await Deno.remove(dir, { recursive: true });
    }
  },
);
