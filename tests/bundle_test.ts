/**
 * The bundle (an entry and its chunks): built here with deno bundle (deno compile cannot fetch
 * its runtime offline), then run with exactly the permission flags of the compile task.
 */

import { ok as assert } from "node:assert/strict";
import { Lab, labTest } from "./lab/lab.ts";
import { COMPILE_FLAGS, dig, httpGet, startDaemon } from "./daemon/harness.ts";
import { makeEndpointSlice, makeNamespace, makeService } from "./fake_apiserver/fixtures.ts";
import { ApiServerProcess } from "./kube/apiserver_proc.ts";

const root = new URL("..", import.meta.url).pathname;
const deno = Deno.execPath();

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

/** Builds the bundle into `${dir}/svcgate`; returns its entry. */
async function buildBundle(dir: string): Promise<string> {
  const built = await run(["run", "-A", "deploy/bundle.ts", `${dir}/svcgate`]);
  assert(built.code === 0, `bundle failed: ${built.stderr}`);
  return `${dir}/svcgate/svcgate.js`;
}

Deno.test("bundle: the entry runs version and render under the compile task's permissions", async () => {
  const dir = await Deno.makeTempDir({ prefix: "svcgate-bundle-" });
  try {
    const out = await buildBundle(dir);
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
  "bundle: the entry runs the daemon (DNS workers included) under the compile flags",
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "svcgate-bundle-" });
    // deploy/examples names three pods (198.18.0.10-12).
    const lab = await Lab.create({ pods: 3 });
    try {
      const out = await buildBundle(dir);
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

labTest(
  "bundle: in Kubernetes mode, an auth-provider kubeconfig loads the client chunk and syncs",
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "svcgate-bundle-" });
    const lab = await Lab.create({ pods: 1 });
    let api: ApiServerProcess | null = null;
    try {
      const out = await buildBundle(dir);
      await lab.startPodServers();
      api = await ApiServerProcess.spawn(lab, lab.node.ns);
      // An auth-provider that no own code path handles: requests go through client-node's
      // KubeConfig, the chunk a token or certificate kubeconfig never loads.
      const kubeconfig = JSON.parse(await Deno.readTextFile(api.kubeconfig));
      kubeconfig.users[0].user["auth-provider"] = { name: "svcgate-test", config: {} };
      const kubeconfigPath = `${dir}/kubeconfig.json`;
      await Deno.writeTextFile(kubeconfigPath, JSON.stringify(kubeconfig));
      await api.create("namespaces", makeNamespace("default"));
      await api.create("services", makeService("default", "web", "198.19.0.10"));
      await api.create(
        "endpointslices",
        makeEndpointSlice("default", "web", "web-1", [{ ip: lab.pods[0].ip }]),
      );
      const daemon = startDaemon(lab, {
        program: ["run", ...COMPILE_FLAGS, out],
        args: [
          ...["--service-cidr", "198.19.0.0/16", "--cluster-cidr", "198.18.0.0/24"],
          ...["--dns-bind-address", "198.18.0.1:53", "--upstream", "127.0.0.1:1"],
          ...["--kubeconfig", kubeconfigPath, "--log-format", "json"],
        ],
      });
      await daemon.waitReady(30_000);
      assert(
        daemon.log.some((l) => l.includes('"connecting"') && l.includes('"viaClientNode":true')),
        `the daemon did not say it goes through client-node:\n${daemon.log.join("\n")}`,
      );
      const web = await dig(lab, "198.18.0.1", "web.default.svc.cluster.local");
      assert(
        web.status === "NOERROR" && web.answers[0] === "198.19.0.10",
        `dig web: ${JSON.stringify(web)}`,
      );
      const body = await httpGet(lab, "http://198.19.0.10/");
      assert(body === "pod-0", `web answered ${JSON.stringify(body)}`);
      assert((await daemon.stop()) === 0, "bundle daemon exits 0 on SIGTERM");
    } finally {
      await api?.close();
      await lab.destroy();
      await Deno.remove(dir, { recursive: true });
    }
  },
);
