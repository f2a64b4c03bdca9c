import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { Lab, labTest } from "./lab.ts";

/** Reads what a TCP, HTTP or UDP peer answers, from inside a namespace, with a bash one-liner. */
const PROBES = {
  tcp: (ip: string) => ["bash", "-c", `exec 3<>/dev/tcp/${ip}/8080; cat <&3`],
  http: (ip: string) => [
    "bash",
    "-c",
    `exec 3<>/dev/tcp/${ip}/8080; printf 'GET / HTTP/1.0\\r\\n\\r\\n' >&3; cat <&3 | tail -n 1`,
  ],
  udp: (ip: string) => [
    "bash",
    "-c",
    `exec 3<>/dev/udp/${ip}/9090; printf 'hi' >&3; timeout 2 head -n 1 <&3`,
  ],
};

labTest(
  "lab: the node reaches each pod's TCP, HTTP and UDP servers; teardown leaves nothing",
  async () => {
    const lab = await Lab.create({ pods: 2, clientHost: true });
    let namespaces: string[] = [];
    const pids: string[] = [];
    try {
      namespaces = [lab.node.ns, ...lab.pods.map((p) => p.ns), lab.client!.ns];
      await lab.startPodServers();
      const rows: string[] = [];
      for (const pod of lab.pods) {
        for (const ip of [pod.ip, `${pod.ip6}`]) {
          for (const [kind, probe] of Object.entries(PROBES)) {
            const r = await lab.exec(lab.node.ns, probe(ip));
            rows.push(`${kind} ${ip} -> ${r.stdout.trim() || `exit ${r.code} ${r.stderr.trim()}`}`);
          }
        }
      }
      assertEquals(rows, [
        "tcp 198.18.0.10 -> pod-0",
        "http 198.18.0.10 -> pod-0",
        "udp 198.18.0.10 -> pod-0",
        "tcp 2001:db8::a -> pod-0",
        "http 2001:db8::a -> pod-0",
        "udp 2001:db8::a -> pod-0",
        "tcp 198.18.0.11 -> pod-1",
        "http 198.18.0.11 -> pod-1",
        "udp 198.18.0.11 -> pod-1",
        "tcp 2001:db8::b -> pod-1",
        "http 2001:db8::b -> pod-1",
        "udp 2001:db8::b -> pod-1",
      ], "probe table");
      // The client host reaches pods through the node (routed, not bridged).
      const viaNode = await lab.exec(lab.client!.ns, PROBES.http(lab.pods[1].ip));
      assertEquals(viaNode.stdout.trim(), "pod-1", "client -> pod-1 through the node");
      for (const ns of namespaces) {
        const r = await new Deno.Command("ip", { args: ["netns", "pids", ns], stdout: "piped" })
          .output();
        pids.push(...new TextDecoder().decode(r.stdout).split("\n").filter(Boolean));
      }
      assertEquals(pids.length >= 2, true, "pod server processes were found before teardown");
    } finally {
      await lab.destroy();
    }
    const left = new TextDecoder().decode(
      (await new Deno.Command("ip", { args: ["netns", "list"], stdout: "piped" }).output()).stdout,
    );
    const leftover = namespaces.filter((ns) => left.includes(ns));
    assertEquals(leftover, [], "namespaces left after teardown");
    const alive = pids.filter((pid) => {
      try {
        Deno.statSync(`/proc/${pid}`);
        return true;
      } catch {
        return false;
      }
    });
    assertEquals(alive, [], "processes left after teardown");
  },
);
