/**
 * kube-proxy's conntrack flags through `svcgate run` in a lab node: the per-namespace sysctls
 * (TCP established and close-wait timeouts, UDP timeouts, be-liberal) are set in the node's
 * namespace at start and read back there; 0 leaves one alone; nf_conntrack_max, which only the
 * initial namespace may write, fails with a warning and the daemon runs on. The root namespace's
 * values are checked unchanged.
 */

import { Lab, labTest, runCommand } from "../lab/lab.ts";
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { startDaemon } from "./harness.ts";

const NF = "/proc/sys/net/netfilter";
const PER_NAMESPACE = [
  "nf_conntrack_tcp_timeout_established",
  "nf_conntrack_tcp_timeout_close_wait",
  "nf_conntrack_tcp_be_liberal",
  "nf_conntrack_udp_timeout",
  "nf_conntrack_udp_timeout_stream",
];

async function sysctls(ns: string | null, names: string[]): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const name of names) {
    const cmd = ["cat", `${NF}/${name}`];
    const r = await runCommand(ns ? ["ip", "netns", "exec", ns, ...cmd] : cmd);
    out[name] = r.stdout.trim();
  }
  return out;
}

labTest(
  "conntrack: kube-proxy's flags set the node namespace's sysctls at start; 0 leaves one alone; failures warn",
  async () => {
    const rootBefore = await sysctls(null, [...PER_NAMESPACE, "nf_conntrack_max"]);
    const lab = await Lab.create({ pods: 1 });
    const dir = await Deno.makeTempDir({ prefix: "svcgate-conntrack-" });
    try {
      await Deno.writeTextFile(
        `${dir}/web.yaml`,
        "apiVersion: v1\nkind: Service\nmetadata: { name: web }\nspec:\n  clusterIP: 198.19.0.10\n  ports: [{ port: 80 }]\n",
      );
      const before = await sysctls(lab.node.ns, PER_NAMESPACE);
      const daemon = startDaemon(lab, {
        args: [
          ...["--manifests", dir, "--state-dir", `${dir}/state`, "--service-cidr", "198.19.0.0/16"],
          "--dns=false",
          "--conntrack-tcp-timeout-established=2h",
          "--conntrack-tcp-timeout-close-wait=0",
          "--conntrack-tcp-be-liberal",
          "--conntrack-udp-timeout=45s",
          "--conntrack-udp-timeout-stream=150s",
          // Above the host's nf_conntrack_max: a write only the root namespace may make.
          "--conntrack-min=1048576",
        ],
      });
      await daemon.waitReady();
      assertEquals(await sysctls(lab.node.ns, PER_NAMESPACE), {
        nf_conntrack_tcp_timeout_established: "7200",
        // 0: left as it was.
        nf_conntrack_tcp_timeout_close_wait: before.nf_conntrack_tcp_timeout_close_wait,
        nf_conntrack_tcp_be_liberal: "1",
        nf_conntrack_udp_timeout: "45",
        nf_conntrack_udp_timeout_stream: "150",
      }, "read back in the node's namespace");
      const logged = daemon.log.filter((l) => l.includes("conntrack"));
      assert(
        logged.some((l) => l.includes("set conntrack sysctl") && l.includes("established")),
        `each write is logged:\n${logged.join("\n")}`,
      );
      assert(
        logged.some((l) =>
          l.includes("cannot set conntrack sysctl") && l.includes("nf_conntrack_max")
        ),
        `nf_conntrack_max cannot be written from a namespace: a warning\n${logged.join("\n")}`,
      );
      assertEquals(await daemon.stop(), 0, `exit code; log:\n${daemon.log.join("\n")}`);
    } finally {
      await lab.destroy();
      await Deno.remove(dir, { recursive: true });
    }
    assertEquals(
      await sysctls(null, [...PER_NAMESPACE, "nf_conntrack_max"]),
      rootBefore,
      "the root namespace's values are untouched",
    );
  },
);
