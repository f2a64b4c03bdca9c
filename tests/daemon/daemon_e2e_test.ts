/**
 * The whole daemon (`main.ts run`) in a lab node, on manifest files: DNS and traffic, live reload
 * (valid, invalid, rapid edits), publish order under a failing nft, restart under load, SIGTERM.
 */

import { labTest } from "../lab/lab.ts";
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import {
  daemonMetric,
  dig,
  failingNft,
  httpGet,
  serviceManifest,
  spread,
  startDaemon,
  waitFor,
  withLab,
  writeManifest,
} from "./harness.ts";

const DNS = "198.18.0.1";
const BASE_ARGS = [
  "--service-cidr",
  "198.19.0.0/16",
  "--cluster-cidr",
  "198.18.0.0/24",
  "--dns-bind-address",
  `${DNS}:53`,
  "--upstream",
  "127.0.0.1:1",
  "--min-sync-period",
  "5ms",
];

labTest(
  "daemon: DNS and traffic from manifests; reload applies valid edits and keeps the last good state",
  async () => {
    await withLab(3, async (lab, dir) => {
      const manifests = `${dir}/manifests`;
      await Deno.mkdir(manifests);
      await writeManifest(
        manifests,
        "web.yaml",
        serviceManifest("web", null, lab.pods.map((p) => p.ip)),
      );
      const daemon = startDaemon(lab, {
        args: [...BASE_ARGS, "--manifests", manifests, "--state-dir", `${dir}/state`],
      });
      await daemon.waitReady();
      const web = await dig(lab, DNS, "web.default.svc.cluster.local");
      assertEquals(web.status, "NOERROR", "web A status");
      const vip = web.answers[0];
      assert(/^198\.19\.\d+\.\d+$/.test(vip), `web VIP ${vip} is in --service-cidr`);
      // The same answer over TCP, from dig and from kdig.
      assertEquals(
        (await dig(lab, DNS, "web.default.svc.cluster.local", "A", ["+tcp"])).answers,
        [vip],
        "dig +tcp",
      );
      const kdig = await lab.exec(lab.node.ns, [
        ...["kdig", `@${DNS}`, "+tcp", "+short", "web.default.svc.cluster.local", "A"],
      ]);
      assertEquals(kdig.stdout.trim(), vip, "kdig +tcp");
      const seen = await spread(lab, `http://${vip}/`, 30);
      assertEquals(
        Object.keys(seen).sort(),
        ["pod-0", "pod-1", "pod-2"],
        `spread ${JSON.stringify(seen)}`,
      );

      // A new file: a service with an explicit VIP appears in DNS and routes.
      await writeManifest(
        manifests,
        "api.yaml",
        serviceManifest("api", "198.19.0.200", [lab.pods[0].ip]),
      );
      await waitFor(
        "api to resolve",
        async () =>
          (await dig(lab, DNS, "api.default.svc.cluster.local")).answers[0] === "198.19.0.200",
        10_000,
        daemon.log,
      );
      assertEquals(
        await httpGet(lab, "http://198.19.0.200/"),
        "pod-0",
        "api routes right after it resolves",
      );

      // An invalid edit: the last good version keeps serving, and readiness detail says why.
      await writeManifest(
        manifests,
        "api.yaml",
        serviceManifest("api", "198.19.0.201", [lab.pods[0].ip], 70000),
      );
      await waitFor(
        "the reload error to be reported",
        () => daemon.log.some((l) => l.includes("70000 is not a port")),
        10_000,
        daemon.log,
      );
      assertEquals(
        await httpGet(lab, "http://198.19.0.200/"),
        "pod-0",
        "api keeps its last good VIP",
      );
      assertEquals(
        await httpGet(lab, "http://198.19.0.201/"),
        "",
        "the invalid edit's VIP is not programmed",
      );
      assertEquals(
        (await dig(lab, DNS, "api.default.svc.cluster.local")).answers,
        ["198.19.0.200"],
        "api still resolves",
      );

      // Rapid successive edits converge on the final file.
      for (const pod of [lab.pods[1], lab.pods[2], lab.pods[0], lab.pods[2]]) {
        await writeManifest(
          manifests,
          "api.yaml",
          serviceManifest("api", "198.19.0.200", [pod.ip]),
        );
        await new Promise((r) => setTimeout(r, 15));
      }
      await waitFor(
        "api to settle on pod-2",
        async () => (await httpGet(lab, "http://198.19.0.200/")) === "pod-2",
        10_000,
        daemon.log,
      );
      const after = await spread(lab, "http://198.19.0.200/", 10);
      assertEquals(after, { "pod-2": 10 }, "every request reaches the final backend");

      // Removing the file removes the service from DNS and from the dataplane.
      await Deno.remove(`${manifests}/api.yaml`);
      await waitFor(
        "api to disappear from DNS",
        async () => (await dig(lab, DNS, "api.default.svc.cluster.local")).status === "NXDOMAIN",
        10_000,
        daemon.log,
      );
      assertEquals(
        await daemon.stop(),
        0,
        `exit code after SIGTERM; log:\n${daemon.log.join("\n")}`,
      );
    });
  },
);

labTest(
  "daemon: DNS publishes a snapshot only after nft committed it; a failing nft keeps the old state serving",
  async () => {
    await withLab(2, async (lab, dir) => {
      // A real nft behind a switch: while the flag file exists, every nft call fails.
      const { bin, flag } = await failingNft(lab, dir);
      const manifests = `${dir}/manifests`;
      await Deno.mkdir(manifests);
      await writeManifest(
        manifests,
        "web.yaml",
        serviceManifest("web", "198.19.0.10", [lab.pods[0].ip]),
      );
      const daemon = startDaemon(lab, {
        args: [...BASE_ARGS, "--manifests", manifests, "--state-dir", `${dir}/state`],
        pathPrefix: bin,
        // The wrapper is a command: make the daemon run `nft` rather than libnftables.
        env: { SVCGATE_NFT_EXECUTOR: "command" },
      });
      await daemon.waitReady();
      assertEquals(await httpGet(lab, "http://198.19.0.10/"), "pod-0", "web before the failure");

      await Deno.writeTextFile(flag, "");
      await writeManifest(
        manifests,
        "new.yaml",
        serviceManifest("new", "198.19.0.11", [lab.pods[1].ip]),
      );
      await waitFor(
        "a failed sync to be logged",
        () => daemon.log.some((l) => l.includes("injected failure")),
        10_000,
        daemon.log,
      );
      // Several retries fail meanwhile; DNS must never show the name whose rules are not live.
      for (let i = 0; i < 5; i++) {
        const r = await dig(lab, DNS, "new.default.svc.cluster.local");
        assertEquals(r.status, "NXDOMAIN", "an unprogrammed service does not resolve");
        await new Promise((r) => setTimeout(r, 100));
      }
      assertEquals(
        (await dig(lab, DNS, "web.default.svc.cluster.local")).answers,
        ["198.19.0.10"],
        "web still resolves",
      );
      assertEquals(await httpGet(lab, "http://198.19.0.10/"), "pod-0", "web still routes");

      await Deno.remove(flag);
      await waitFor(
        "new to resolve after nft recovers",
        async () =>
          (await dig(lab, DNS, "new.default.svc.cluster.local")).answers[0] === "198.19.0.11",
        40_000,
        daemon.log,
      );
      // The moment it resolves, it routes.
      assertEquals(
        await httpGet(lab, "http://198.19.0.11/"),
        "pod-1",
        "new routes once it resolves",
      );
      assertEquals(
        await daemon.stop(),
        0,
        `exit code after SIGTERM; log:\n${daemon.log.join("\n")}`,
      );
    });
  },
);

labTest(
  "daemon: restarted under continuous load, no connection fails; SIGTERM leaves the rules in place",
  async () => {
    await withLab(3, async (lab, dir) => {
      const manifests = `${dir}/manifests`;
      await Deno.mkdir(manifests);
      await writeManifest(
        manifests,
        "web.yaml",
        serviceManifest("web", "198.19.0.10", lab.pods.map((p) => p.ip)),
      );
      // A service whose VIP is allocated: it must keep it across a restart that finds the
      // state file corrupt (recovered from the live ruleset). The state starts with an address
      // the key's hash would not pick, so only the recovery can bring it back.
      await writeManifest(manifests, "auto.yaml", serviceManifest("auto", null, [lab.pods[0].ip]));
      await Deno.mkdir(`${dir}/state`);
      await Deno.writeTextFile(
        `${dir}/state/ipam.json`,
        JSON.stringify({
          version: 1,
          allocations: { "default/auto": { ips: ["198.19.200.77"] } },
          released: [],
        }),
      );
      const args = [...BASE_ARGS, "--manifests", manifests, "--state-dir", `${dir}/state`];
      const first = startDaemon(lab, { args });
      await first.waitReady();
      const autoVip = (await dig(lab, DNS, "auto.default.svc.cluster.local")).answers[0];
      assertEquals(autoVip, "198.19.200.77", "auto keeps the VIP of the state file");
      // A client loop in the node: a fresh connection every few milliseconds for ~4 s.
      const load = lab.spawn(lab.node.ns, [
        "bash",
        "-c",
        "ok=0; bad=0; end=$((SECONDS+4)); while [ $SECONDS -lt $end ]; do " +
        "if curl -s -m 1 -o /dev/null http://198.19.0.10/; then ok=$((ok+1)); else bad=$((bad+1)); fi; " +
        'done; echo "$ok $bad"',
      ]);
      await new Promise((r) => setTimeout(r, 500));
      assertEquals(await first.stop(), 0, "first daemon exits 0 on SIGTERM");
      const table = await lab.exec(lab.node.ns, ["nft", "list", "table", "ip", "svcgate"]);
      assertEquals(table.code, 0, "the ruleset outlives the process");
      await Deno.writeTextFile(`${dir}/state/ipam.json`, "{ not json");
      const second = startDaemon(lab, { args });
      await second.waitReady();
      assert(
        second.log.some((l) => l.includes("ipam.json") && l.includes("WARN")),
        "the corrupt state file is reported",
      );
      assertEquals(
        (await dig(lab, DNS, "auto.default.svc.cluster.local")).answers,
        [autoVip],
        "the allocated VIP survives a corrupt state file",
      );
      assertEquals(await httpGet(lab, `http://${autoVip}/`), "pod-0", "and still routes");
      const out = new TextDecoder().decode((await load.output()).stdout).trim();
      const [ok, bad] = out.split(" ").map(Number);
      assert(ok > 50, `the load loop made enough connections (${out})`);
      assertEquals(bad, 0, `failed connections across the restart (ok ${ok})`);
      assert(
        second.log.some((l) => l.includes("adopted nftables state") && l.includes("ip svcgate")),
        "the second daemon adopted the existing table",
      );
      assertEquals(await second.stop(), 0, "second daemon exits 0");
    });
  },
);

labTest(
  "daemon: before the source has synced, DNS answers SERVFAIL and nothing is programmed",
  async () => {
    await withLab(1, async (lab, dir) => {
      // An API server that never answers: the Kubernetes source cannot sync.
      const kubeconfig = `${dir}/kubeconfig`;
      await Deno.writeTextFile(
        kubeconfig,
        `apiVersion: v1
kind: Config
clusters: [{ name: c, cluster: { server: "https://127.0.0.1:9", insecure-skip-tls-verify: true } }]
users: [{ name: u, user: { token: t } }]
contexts: [{ name: x, context: { cluster: c, user: u } }]
current-context: x
`,
      );
      const daemon = startDaemon(lab, {
        args: [...BASE_ARGS, "--kubeconfig", kubeconfig, "--initial-sync-timeout", "500ms"],
      });
      await waitFor(
        "DNS to listen",
        () => daemon.log.some((l) => l.includes("DNS listening")),
        10_000,
        daemon.log,
      );
      const r = await dig(lab, DNS, "web.default.svc.cluster.local");
      assertEquals(r.status, "SERVFAIL", "cluster names before the first sync");
      const ready = await lab.exec(lab.node.ns, [
        ...["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}"],
        "http://127.0.0.1:10256/readyz",
      ]);
      assertEquals(ready.stdout, "503", "/readyz before sync");
      const table = await lab.exec(lab.node.ns, ["nft", "list", "table", "ip", "svcgate"]);
      assert(table.code !== 0, "no svcgate table is written before sync");
      assertEquals(
        await daemon.stop(),
        0,
        `exit code after SIGTERM; log:\n${daemon.log.join("\n")}`,
      );
    });
  },
);

labTest(
  "daemon: a health-checked endpoint whose server dies is avoided, and used again when it returns",
  async () => {
    await withLab(3, async (lab, dir) => {
      const manifests = `${dir}/manifests`;
      await Deno.mkdir(manifests);
      const checked = serviceManifest("web", "198.19.0.10", lab.pods.map((p) => p.ip)).replace(
        "metadata: { name: web, namespace: default }\nspec:",
        `metadata:
  name: web
  namespace: default
  annotations:
    svcgate.io/health-check: "http:/"
    svcgate.io/health-check-interval: "300ms"
    svcgate.io/health-check-timeout: "200ms"
    svcgate.io/health-check-healthy-threshold: "1"
    svcgate.io/health-check-unhealthy-threshold: "2"
spec:`,
      );
      assert(checked.includes("svcgate.io/health-check"), "the manifest carries the annotations");
      await writeManifest(manifests, "web.yaml", checked);
      const daemon = startDaemon(lab, {
        args: [...BASE_ARGS, "--manifests", manifests, "--state-dir", `${dir}/state`],
      });
      await daemon.waitReady();
      assertEquals(
        Object.keys(await spread(lab, "http://198.19.0.10/", 30)).sort(),
        ["pod-0", "pod-1", "pod-2"],
        "all pods serve before the failure",
      );
      await lab.stopPodServer(1);
      const killedAt = performance.now();
      await waitFor(
        "pod-1 to be taken out",
        () => daemon.log.some((l) => l.includes("endpoint unhealthy") && l.includes("198.18.0.11")),
        5_000,
        daemon.log,
      );
      const outAfter = performance.now() - killedAt;
      // interval x unhealthy threshold = 600 ms, plus one probe timeout and scheduling slack.
      assert(outAfter < 1_500, `taken out after ${outAfter.toFixed(0)} ms (bound 1500 ms)`);
      await new Promise((r) => setTimeout(r, 100)); // the sync after the verdict
      const during = await spread(lab, "http://198.19.0.10/", 30);
      assertEquals(
        during["pod-1"] ?? 0,
        0,
        `no request reaches the dead pod ${JSON.stringify(during)}`,
      );
      assertEquals(during["(failed)"] ?? 0, 0, `no request fails ${JSON.stringify(during)}`);
      await lab.startPodServer(1);
      await waitFor(
        "pod-1 to serve again",
        async () => (await spread(lab, "http://198.19.0.10/", 10))["pod-1"] !== undefined,
        5_000,
        daemon.log,
      );
      assertEquals(await daemon.stop(), 0, "exit code after SIGTERM");
    });
  },
);

labTest(
  "daemon: a restart with hostile files present deletes nothing; their services return when they parse",
  async () => {
    await withLab(2, async (lab, dir) => {
      const manifests = `${dir}/manifests`;
      await Deno.mkdir(manifests);
      await writeManifest(
        manifests,
        "web.yaml",
        serviceManifest("web", "198.19.0.10", [lab.pods[0].ip]),
      );
      await writeManifest(
        manifests,
        "api.yaml",
        serviceManifest("api", "198.19.0.20", [lab.pods[1].ip]),
      );
      const args = [...BASE_ARGS, "--manifests", manifests, "--state-dir", `${dir}/state`];
      const first = startDaemon(lab, { args });
      await first.waitReady();
      assertEquals(await httpGet(lab, "http://198.19.0.20/"), "pod-1", "api routes");
      assertEquals(await first.stop(), 0, "first daemon exits 0");

      // While svcgate is down, api.yaml becomes hostile and more hostile files arrive.
      const deep = "[".repeat(100_000) + "]".repeat(100_000);
      await writeManifest(manifests, "api.yaml", deep);
      await writeManifest(manifests, "deep.json", deep);
      await writeManifest(manifests, "small-deep.yaml", "a: " + "[".repeat(1000));
      await Deno.writeFile(`${manifests}/latin1.yaml`, new Uint8Array([0x6b, 0x3a, 0xe9, 0xff]));
      await Deno.symlink(`${manifests}/loop.yaml`, `${manifests}/loop.yaml`);

      const second = startDaemon(lab, { args });
      await second.waitReady();
      const ready = JSON.parse(
        (await lab.exec(lab.node.ns, ["curl", "-s", "http://127.0.0.1:10256/readyz"])).stdout,
      );
      assertEquals(ready.source.degraded, true, `readyz degraded: ${JSON.stringify(ready)}`);
      assert(
        String(ready.source.lastError).includes(manifests),
        `readyz names a file: ${ready.source.lastError}`,
      );
      // api.yaml is unknown, not empty: api keeps routing on the adopted rules.
      assertEquals(await httpGet(lab, "http://198.19.0.20/"), "pod-1", "api still routes");
      assertEquals(await httpGet(lab, "http://198.19.0.10/"), "pod-0", "web routes");
      assertEquals(
        (await dig(lab, DNS, "web.default.svc.cluster.local")).answers,
        ["198.19.0.10"],
        "web resolves",
      );
      for (const file of ["api.yaml", "deep.json", "small-deep.yaml", "latin1.yaml", "loop.yaml"]) {
        assert(
          second.log.some((l) => l.includes(`${manifests}/${file}`)),
          `the log names ${file}:\n${second.log.join("\n")}`,
        );
      }

      // An edit of a healthy file applies beside the hostile ones.
      await writeManifest(
        manifests,
        "web.yaml",
        serviceManifest("web", "198.19.0.10", [lab.pods[1].ip]),
      );
      await waitFor(
        "web's edit to apply",
        async () => (await httpGet(lab, "http://198.19.0.10/")) === "pod-1",
        10_000,
        second.log,
      );

      // api.yaml parses again without api: api's rules go; the state is complete once the
      // other hostile files are gone too.
      await writeManifest(
        manifests,
        "api.yaml",
        serviceManifest("api2", "198.19.0.21", [lab.pods[0].ip]),
      );
      for (const f of ["deep.json", "small-deep.yaml", "latin1.yaml", "loop.yaml"]) {
        await Deno.remove(`${manifests}/${f}`);
      }
      await waitFor(
        "api2 to resolve",
        async () =>
          (await dig(lab, DNS, "api2.default.svc.cluster.local")).answers[0] === "198.19.0.21",
        10_000,
        second.log,
      );
      await waitFor(
        "api's adopted rules to be deleted",
        async () => {
          const r = await lab.exec(lab.node.ns, [
            "nft",
            "list",
            "set",
            "ip",
            "svcgate",
            "cluster-ips",
          ]);
          return r.code === 0 && !r.stdout.includes("198.19.0.20");
        },
        10_000,
        second.log,
      );
      assertEquals(await second.stop(), 0, "second daemon exits 0");
    });
  },
);

labTest(
  "daemon: drift another process causes is repaired within 2 s (table, map, chain, element)",
  async () => {
    await withLab(1, async (lab, dir) => {
      const manifests = `${dir}/manifests`;
      await Deno.mkdir(manifests);
      await writeManifest(
        manifests,
        "web.yaml",
        serviceManifest("web", "198.19.0.10", [lab.pods[0].ip]),
      );
      // The periodic check is 30 s away: only the kernel monitor can repair this fast.
      const daemon = startDaemon(lab, {
        args: [...BASE_ARGS, "--manifests", manifests, "--state-dir", `${dir}/state`],
      });
      await daemon.waitReady();
      assertEquals(await httpGet(lab, "http://198.19.0.10/"), "pod-0", "web routes");
      // svcgate's own transactions (libnftables commits on an FFI thread, whose id the kernel
      // reports) are never taken for someone else's: each would cost a scoped repair.
      await writeManifest(
        manifests,
        "web.yaml",
        serviceManifest("web", "198.19.0.10", [lab.pods[0].ip, "198.18.0.99"]),
      );
      await waitFor(
        "the edit applied",
        () => daemon.log.filter((l) => l.includes("nftables synced")).length >= 2,
        10_000,
        daemon.log,
      );
      assertEquals(
        await daemonMetric(lab, "svcgate_nft_foreign_changes_total"),
        0,
        "svcgate's own syncs counted as foreign",
      );
      await writeManifest(
        manifests,
        "web.yaml",
        serviceManifest("web", "198.19.0.10", [lab.pods[0].ip]),
      );
      await waitFor(
        "the edit back applied",
        () => daemon.log.filter((l) => l.includes("nftables synced")).length >= 3,
        10_000,
        daemon.log,
      );
      const breakages: [string, string[]][] = [
        ["one element deleted", [
          "delete",
          "element",
          "ip",
          "svcgate",
          "vip-dispatch",
          "{ 198.19.0.10 . tcp . 80 }",
        ]],
        ["the dispatch map flushed", ["flush", "map", "ip", "svcgate", "vip-dispatch"]],
        ["the services chain flushed", ["flush", "chain", "ip", "svcgate", "services"]],
        ["the nat chains flushed", ["flush", "chain", "ip", "svcgate", "nat-output"]],
        ["the table deleted", ["delete", "table", "ip", "svcgate"]],
      ];
      const pid = daemon.child.pid;
      const curl = async () =>
        (await lab.exec(lab.node.ns, ["curl", "-s", "-m", "0.5", "http://198.19.0.10/"])).stdout
          .trim();
      for (const [what, cmd] of breakages) {
        // Paused, svcgate cannot repair: the breakage must really stop traffic.
        Deno.kill(pid, "SIGSTOP");
        try {
          const r = await lab.exec(lab.node.ns, ["nft", ...cmd]);
          assertEquals(r.code, 0, `${what}: nft ${cmd.join(" ")}: ${r.stderr}`);
          assertEquals(await curl(), "", `${what}: traffic stops while svcgate is paused`);
        } finally {
          Deno.kill(pid, "SIGCONT");
        }
        const resumed = performance.now();
        await waitFor(
          `traffic back after ${what}`,
          async () => (await curl()) === "pod-0",
          2000,
          daemon.log,
        );
        const ms = Math.round(performance.now() - resumed);
        console.log(`  ${what}: traffic back ${ms} ms after svcgate resumed`);
      }
      assert(
        daemon.log.some((l) => l.includes("another process changed svcgate's nftables tables")),
        "the repair is logged",
      );
      const foreign = await daemonMetric(lab, "svcgate_nft_foreign_changes_total");
      assert(foreign >= breakages.length, `${foreign} foreign changes counted`);
      assertEquals(await daemon.stop(), 0, "exits 0");
    });
  },
);
