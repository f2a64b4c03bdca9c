/**
 * Restarts and upgrades lose no query (issue 15), end to end: the real daemon (`svcgate run` on
 * manifests) in a lab node on 169.254.20.10:53, a client in the node sending 2,000 UDP queries a
 * second for a cluster name and an external one (answered by a real knotd upstream in the lab),
 * and every reply judged (restart_load.ts): lost, SERVFAIL and wrong answers must all be 0.
 *
 * - Socket activation: systemd-socket-activate holds the UDP and TCP sockets and svcgate is
 *   restarted five times on them (socket_activation.ts); queries wait in the kernel meanwhile.
 * - SO_REUSEPORT and a lame duck: five times a new svcgate starts beside the running one
 *   (`--reuse-port`), then the old one gets SIGTERM, serves its lame-duck period, leaves the port
 *   group and exits.
 * - The saved snapshot: after a restart DNS answers at once from it (proved with a source that
 *   never syncs), a name it lacks or whose VIP the kernel no longer routes gets SERVFAIL, never
 *   NXDOMAIN; a corrupt or foreign file is ignored with a warning naming it.
 */

import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { Lab, labTest } from "../lab/lab.ts";
import { COMPILE_FLAGS, type DaemonProcess, dig, startDaemon, waitFor } from "../daemon/harness.ts";
import { serviceManifest, startLabKnot } from "../support/lab_resolvers.ts";
import { type LoadReport, startRestartLoad } from "../support/restart_load.ts";
import { startSocketActivated } from "../support/socket_activation.ts";

const DNS = "169.254.20.10";
const UPSTREAM = "198.18.100.2";
const MAIN = new URL("../../main.ts", import.meta.url).pathname;
const EXPECT = {
  "web.default.svc.cluster.local": "198.19.0.10",
  "api.prod.svc.cluster.local": "198.19.0.20",
  "www.example.org": "198.18.100.80",
};

/** A lab with the DNS address, the upstream and the manifests; `fn` gets it and a folder. */
async function withRestartLab(fn: (lab: Lab, dir: string) => Promise<void>): Promise<void> {
  const lab = await Lab.create({ pods: 2, clientHost: true });
  const dir = await Deno.makeTempDir({ prefix: "svcgate-restart-" });
  try {
    await Deno.chmod(dir, 0o755);
    await lab.addNodeAddress(`${DNS}/32`);
    await startLabKnot(
      lab,
      lab.client!.ns,
      UPSTREAM,
      ["www.example.org. 60 IN A 198.18.100.80"],
      dir,
    );
    await Deno.mkdir(`${dir}/manifests`);
    await Deno.writeTextFile(
      `${dir}/manifests/services.yaml`,
      [
        serviceManifest("default", "web", "198.19.0.10", "198.18.0.10"),
        serviceManifest("prod", "api", "198.19.0.20", "198.18.0.11", 9000),
      ].join("---\n"),
    );
    await fn(lab, dir);
  } finally {
    await lab.destroy();
    await Deno.remove(dir, { recursive: true });
  }
}

/** svcgate's flags in these tests (the node's own queries come from 169.254.20.10). */
function flags(dir: string): string[] {
  return [
    ...["--manifests", `${dir}/manifests`, "--state-dir", `${dir}/state`],
    ...["--service-cidr", "198.19.0.0/16", "--cluster-cidr", "198.18.0.0/24"],
    ...["--dns-bind-address", `${DNS}:53`, "--upstream", UPSTREAM],
    ...["--dns-allow-recursion", `${DNS}/32,127.0.0.0/8`],
  ];
}

function assertNoLoss(r: LoadReport, what: string): void {
  const summary = `${what}: ${
    JSON.stringify({ ...r, check: { ...r.check, slow: r.check.slow.length } })
  }`;
  console.log(summary);
  assert(r.sent > 10_000 && r.check.sent > 1000, `${summary}: enough queries were sent`);
  const { NOERROR = 0, ...others } = r.rcodes;
  assertEquals(
    {
      lost: r.lost,
      otherRcodes: others,
      checkerLost: r.check.lost,
      servfail: r.check.servfail,
      wrong: r.check.wrong,
      other: r.check.otherRcode,
    },
    { lost: 0, otherRcodes: {}, checkerLost: 0, servfail: 0, wrong: 0, other: 0 },
    summary,
  );
  // Only the queries in flight when dnsperf was stopped have no answer yet.
  assert(NOERROR >= r.sent - r.interrupted, summary);
  assertEquals(r.check.right, r.check.sent, summary);
}

async function readyAt(lab: Lab, port: number): Promise<boolean> {
  const r = await lab.exec(lab.node.ns, [
    ...["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}"],
    `http://127.0.0.1:${port}/readyz`,
  ]);
  return r.stdout === "200";
}

labTest("restart e2e: five restarts under socket activation lose no query", async () => {
  await withRestartLab(async (lab, dir) => {
    const v8 = COMPILE_FLAGS.filter((f) => f.startsWith("--v8-flags="));
    const svcgate = await startSocketActivated(lab, {
      argv: [Deno.execPath(), "run", "-A", ...v8, MAIN, "run", ...flags(dir)],
      address: DNS,
      port: 53,
      dir,
    });
    try {
      await waitFor("svcgate ready", () => readyAt(lab, 10256), 30_000, svcgate.log);
      const load = await startRestartLoad(
        (cmd) => lab.spawn(lab.node.ns, cmd, { stdout: "piped", stderr: "inherit" }),
        { server: DNS, port: 53, expect: EXPECT, dir },
      );
      await new Promise((r) => setTimeout(r, 2000));
      for (let i = 0; i < 5; i++) {
        await svcgate.restart();
        await waitFor(
          `svcgate ready after restart ${i + 1}`,
          () => readyAt(lab, 10256),
          30_000,
          svcgate.log,
        );
        await new Promise((r) => setTimeout(r, 1000));
      }
      const report = await load.finish();
      if (report.lost + report.check.lost > 0) {
        // Where datagrams were dropped: svcgate's socket or a client's (RcvbufErrors).
        console.log((await lab.exec(lab.node.ns, ["cat", "/proc/net/snmp"])).stdout);
        console.log(
          (await lab.exec(lab.node.ns, ["curl", "-s", "http://127.0.0.1:10249/metrics"])).stdout
            .split("\n").filter((l) =>
              l.startsWith("svcgate_dns_dropped") || l.startsWith("svcgate_dns_requests")
            ).join("\n"),
        );
        console.log(
          svcgate.log.filter((l) =>
            /stopping|stopped|DNS listening|DNS answers|Execing|exited/.test(l)
          ).join("\n"),
        );
      }
      assert(
        svcgate.log.some((l) => l.includes("DNS serves the sockets passed by systemd")),
        svcgate.log.slice(-20).join("\n"),
      );
      assertNoLoss(report, "socket activation, 5 restarts");
    } finally {
      await svcgate.stop();
    }
  });
});

labTest(
  "restart e2e: five overlapping upgrades with SO_REUSEPORT and a lame duck lose no query",
  async () => {
    await withRestartLab(async (lab, dir) => {
      const start = (n: number): DaemonProcess =>
        startDaemon(lab, {
          healthzPort: 10256 + (n % 2),
          args: [...flags(dir), "--reuse-port", "--dns-lameduck", "2s"],
        });
      let current = start(0);
      const stopped: DaemonProcess[] = [];
      try {
        await current.waitReady(30_000);
        const load = await startRestartLoad(
          (cmd) => lab.spawn(lab.node.ns, cmd, { stdout: "piped", stderr: "inherit" }),
          { server: DNS, port: 53, expect: EXPECT, dir },
        );
        await new Promise((r) => setTimeout(r, 2000));
        for (let i = 1; i <= 5; i++) {
          const next = start(i);
          await next.waitReady(30_000);
          // The old one: SIGTERM, not ready at once, still answering for 2 s, then gone.
          const old = current;
          const exit = old.stop("SIGTERM");
          await waitFor(
            "the lame duck to say not ready",
            async () => !(await readyAt(lab, 10256 + ((i - 1) % 2))),
            3000,
          );
          assertEquals(await exit, 0, old.log.slice(-20).join("\n"));
          assert(
            old.log.some((l) => l.includes("lame duck")),
            old.log.slice(-20).join("\n"),
          );
          stopped.push(old);
          current = next;
          await new Promise((r) => setTimeout(r, 500));
        }
        const report = await load.finish();
        assertNoLoss(report, "SO_REUSEPORT + lame duck, 5 overlapping upgrades");
      } finally {
        await current.stop();
      }
    });
  },
);

labTest("restart e2e: DNS answers from the saved snapshot at once, only what routes", async () => {
  await withRestartLab(async (lab, dir) => {
    const first = startDaemon(lab, { args: flags(dir) });
    try {
      await first.waitReady(30_000);
      await waitFor("the snapshot to be saved", async () => {
        try {
          return (await Deno.stat(`${dir}/state/last-snapshot.txt`)).isFile;
        } catch {
          return false;
        }
      });
    } finally {
      assertEquals(await first.stop(), 0);
    }
    // Another process took api's VIP out of the kernel since: the saved name must not be served.
    await lab.exec(lab.node.ns, [
      "nft",
      "delete",
      "element",
      "ip",
      "svcgate",
      "cluster-ips",
      "{ 198.19.0.20 }",
    ]);
    // A source that never syncs (an API server that is not there): only the saved snapshot answers.
    const second = startDaemon(lab, {
      args: [
        ...flags(dir).filter((f, i, all) => f !== "--manifests" && all[i - 1] !== "--manifests"),
        ...["--master", "https://127.0.0.1:9", "--initial-sync-timeout", "1s"],
      ],
    });
    try {
      await waitFor(
        "DNS to answer from the saved snapshot",
        () => second.log.some((l) => l.includes("DNS answers from the saved snapshot")),
        30_000,
        second.log,
      );
      const line = second.log.find((l) => l.includes("DNS answers from the saved snapshot"))!;
      assert(
        /services=1\b|"services":1\b/.test(line) && /notRouted=1\b|"notRouted":1\b/.test(line),
        line,
      );
      await waitFor(
        "web to be answered",
        async () => (await dig(lab, DNS, "web.default.svc.cluster.local")).status === "NOERROR",
        10_000,
        second.log,
      );
      assertEquals(await dig(lab, DNS, "web.default.svc.cluster.local"), {
        status: "NOERROR",
        answers: ["198.19.0.10"],
      });
      // Not routed any more, and a name the snapshot never had: SERVFAIL, not NXDOMAIN.
      assertEquals((await dig(lab, DNS, "api.prod.svc.cluster.local")).status, "SERVFAIL");
      assertEquals((await dig(lab, DNS, "nosuch.default.svc.cluster.local")).status, "SERVFAIL");
      assert(!(await readyAt(lab, 10256)), "not ready: the source has not synced");
    } finally {
      await second.stop();
    }
  });
});

labTest("restart e2e: a corrupt or foreign saved snapshot is ignored with a warning", async () => {
  await withRestartLab(async (lab, dir) => {
    const file = `${dir}/state/last-snapshot.txt`;
    const cases = [
      { text: "garbage\n{", says: "does not start with a svcgate snapshot header" },
      {
        text: 'svcgate-snapshot 1 0.0.1 0 0 0\n{"namespaces":[],"services":[]}',
        says: 'written by svcgate "0.0.1"',
      },
      { text: "svcgate-snapshot 1 0.1.0 0 123 0\n{}", says: "does not match the hash" },
    ];
    await Deno.mkdir(`${dir}/state`, { recursive: true });
    for (const c of cases) {
      await Deno.writeTextFile(file, c.text);
      const daemon = startDaemon(lab, { args: flags(dir) });
      try {
        await daemon.waitReady(30_000);
        const warning = daemon.log.find((l) => l.includes("Ignoring the saved snapshot"));
        assert(warning, daemon.log.join("\n"));
        assert(
          warning.includes(JSON.stringify(file).slice(1, -1)) && warning.includes(c.says),
          warning,
        );
        assertEquals(await dig(lab, DNS, "web.default.svc.cluster.local"), {
          status: "NOERROR",
          answers: ["198.19.0.10"],
        });
      } finally {
        assertEquals(await daemon.stop(), 0);
      }
    }
  });
});
