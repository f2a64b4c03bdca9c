/**
 * `deno task demo`: the first thing a new user runs. It builds a lab (one node, three pods), runs
 * svcgate in the node namespace on deploy/examples, and shows with real tools: DNS resolving a
 * service to its allocated VIP, requests spread over the pods, a pod killed and avoided, the pod
 * back, and the ruleset svcgate wrote. Then it cleans up. Needs root (network namespaces).
 * @module
 */

import { Lab } from "./lab/lab.ts";

const root = new URL("..", import.meta.url).pathname;
const started = performance.now();
const elapsed = () => `${((performance.now() - started) / 1000).toFixed(1)}s`;
const say = (text: string) => console.log(`\n# ${text}  [${elapsed()}]`);
const show = (cmd: string, out: string) => {
  console.log(`$ ${cmd}`);
  const text = out.trimEnd();
  if (text) console.log(text.split("\n").map((l) => `  ${l}`).join("\n"));
};

if (Deno.uid() !== 0) {
  console.error("The demo builds network namespaces and programs nftables: run it as root.");
  Deno.exit(1);
}

say("Building a lab: node namespace, pods pod-0..pod-2 (198.18.0.10-12) with HTTP servers");
const lab = await Lab.create({ pods: 3 });
const stateDir = await Deno.makeTempDir({ prefix: "svcgate-demo-" });
let daemon: Deno.ChildProcess | null = null;
const daemonLog: string[] = [];
try {
  await lab.addNodeAddress("169.254.20.10/32");
  await lab.setResolvConf(
    lab.node.ns,
    "nameserver 169.254.20.10\nsearch default.svc.cluster.local svc.cluster.local cluster.local\n" +
      "options ndots:5 timeout:1 attempts:2\n",
  );
  await lab.startPodServers();

  const args = [
    "run",
    "--manifests",
    `${root}deploy/examples`,
    "--service-cidr",
    "198.19.0.0/16,2001:db8:ffff::/112",
    "--cluster-cidr",
    "198.18.0.0/24",
    "--dns-bind-address",
    "169.254.20.10:53",
    // The node's resolv.conf names svcgate (as the README says to set it up), so svcgate is told
    // where other names go; this lab has no resolver there, and the demo asks no such name.
    "--upstream",
    "198.18.0.53",
    "--state-dir",
    stateDir,
    "--healthz-bind-address",
    "127.0.0.1:10256",
    "--metrics-bind-address",
    "127.0.0.1:10249",
  ];
  say("Starting svcgate in the node namespace");
  console.log(`$ svcgate ${args.join(" ").replaceAll(root, "")}`);
  daemon = lab.spawn(lab.node.ns, [Deno.execPath(), "run", "-A", `${root}main.ts`, ...args], {
    stdout: "null",
    stderr: "piped",
  });
  (async () => {
    for await (const chunk of daemon!.stderr.pipeThrough(new TextDecoderStream())) {
      daemonLog.push(...chunk.split("\n").filter(Boolean));
    }
  })();

  const exec = async (cmd: string) => (await lab.exec(lab.node.ns, ["sh", "-c", cmd])).stdout;
  const waitFor = async (what: string, check: () => Promise<boolean>, ms = 15_000) => {
    const deadline = performance.now() + ms;
    while (performance.now() < deadline) {
      if (await check()) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`Timed out waiting for ${what}. svcgate log:\n${daemonLog.join("\n")}`);
  };
  await waitFor(
    "svcgate to be ready",
    async () =>
      (await exec("curl -sf -o /dev/null -w '%{http_code}' http://127.0.0.1:10256/readyz")) ===
        "200",
  );
  show(
    "curl -s 127.0.0.1:10256/readyz | head -3",
    await exec("curl -s 127.0.0.1:10256/readyz | head -3"),
  );

  say("DNS: names resolve to the VIPs svcgate allocated (and only once nftables routes them)");
  for (
    const q of [
      "web.default.svc.cluster.local",
      "api.default.svc.cluster.local AAAA",
      "db.default.svc.cluster.local",
      "_http._tcp.web.default.svc.cluster.local SRV",
      "search.default.svc.cluster.local CNAME",
    ]
  ) {
    const cmd = `dig +short ${q}`;
    show(cmd, await exec(cmd));
  }

  const SPREAD = "10 x curl -s http://web.default.svc.cluster.local/   (answers per pod)";
  const spread = async (n: number) => {
    const counts = new Map<string, number>();
    for (let i = 0; i < n; i++) {
      const body = (await exec("curl -s -m 2 http://web.default.svc.cluster.local/")).trim() ||
        "(failed)";
      counts.set(body, (counts.get(body) ?? 0) + 1);
    }
    return [...counts].sort().map(([k, v]) => `${k}: ${v}`).join(", ");
  };
  say("Ten requests to http://web.default.svc.cluster.local spread over the pods");
  show(
    SPREAD,
    await spread(10),
  );

  say("Killing pod-1's server: the health check (1s interval, 2 failures) takes it out");
  const marker = daemonLog.length;
  await lab.stopPodServer(1);
  const versionNow = async () =>
    Number(
      (await exec("curl -s 127.0.0.1:10249/metrics")).match(/svcgate_snapshot_version (\d+)/)
        ?.[1] ?? 0,
    );
  const before = await versionNow();
  await waitFor(
    "pod-1 to be marked unhealthy",
    () =>
      Promise.resolve(
        daemonLog.slice(marker).some((l) =>
          l.includes("endpoint unhealthy") && l.includes("198.18.0.11")
        ),
      ),
  );
  await waitFor("the change to be programmed", async () => (await versionNow()) > before);
  for (const line of daemonLog.slice(marker).filter((l) => l.includes("198.18.0.11"))) {
    console.log(`  svcgate: ${line}`);
  }
  show(
    SPREAD,
    await spread(10),
  );

  say("pod-1's server is back: the health check brings it in again");
  const marker2 = daemonLog.length;
  await lab.startPodServer(1);
  const before2 = await versionNow();
  await waitFor(
    "pod-1 to be marked healthy",
    () =>
      Promise.resolve(
        daemonLog.slice(marker2).some((l) =>
          l.includes("endpoint healthy") && l.includes("198.18.0.11")
        ),
      ),
  );
  await waitFor("the change to be programmed", async () => (await versionNow()) > before2);
  show(
    SPREAD,
    await spread(10),
  );

  say("The ruleset svcgate wrote: a handful of fixed chains; services live in maps");
  for (const map of ["vip-dispatch", "vip-backends-tcp"]) {
    const cmd = `nft list map ip svcgate ${map}`;
    show(cmd, await exec(cmd));
  }
  const lines = (await exec("nft list table ip svcgate")).split("\n").length;
  console.log(`  (the whole table: nft list table ip svcgate, ${lines} lines)`);
  say(`Done in ${elapsed()}; cleaning up`);
} catch (e) {
  console.error(`demo failed: ${e instanceof Error ? e.message : e}`);
  Deno.exitCode = 1;
} finally {
  if (daemon) {
    try {
      daemon.kill("SIGTERM");
    } catch { /* exited */ }
    await daemon.status;
  }
  await lab.destroy();
  await Deno.remove(stateDir, { recursive: true }).catch(() => {});
}
