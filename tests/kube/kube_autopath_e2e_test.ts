/**
 * Kubernetes mode, end to end: the real daemon (`main.ts run --kubeconfig`) watches this node's
 * Pods through the fake API server (a process in the lab node), and a pod's lookups follow it:
 * a pod the API does not list searches itself (8 queries for an external name with glibc and
 * kubelet's resolv.conf); once listed on this node, 2; when its IP changes the new address is
 * the pod; a pod on another node, or one deleted, is unknown again. `--pod-records verified`
 * answers a pod's dashed name only while the pod is listed.
 */

import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { Lab, labTest } from "../lab/lab.ts";
import { dig, startDaemon, waitFor } from "../daemon/harness.ts";
import { makeNamespace, makePod, makeService } from "../fake_apiserver/fixtures.ts";
import { ApiServerProcess } from "./apiserver_proc.ts";
import {
  buildResolvers,
  kubeletResolvConf,
  lookups,
  settledRequests,
  startLabKnot,
} from "../support/lab_resolvers.ts";

const DNS = "169.254.20.10";
const METRICS = "http://127.0.0.1:10256/metrics";
const UPSTREAM = "198.18.100.2";
const NODE = "node-a";

labTest(
  "kube autopath e2e: the watch of this node's pods decides whose search path svcgate walks",
  async (t) => {
    const lab = await Lab.create({ pods: 2, clientHost: true });
    const dir = await Deno.makeTempDir({ prefix: "svcgate-kube-autopath-" });
    let api: ApiServerProcess | null = null;
    try {
      await Deno.chmod(dir, 0o755);
      const { glibc } = await buildResolvers(dir);
      assert(glibc, "gcc builds the glibc lookup program");
      await lab.addNodeAddress(`${DNS}/32`);
      await startLabKnot(lab, lab.client!.ns, UPSTREAM, [
        "www.example.org. 60 IN A 198.18.100.80",
      ], dir);
      await lab.setResolvConf(lab.node.ns, `nameserver ${UPSTREAM}\n`);
      for (const pod of lab.pods) {
        await lab.setResolvConf(pod.ns, kubeletResolvConf("default", DNS));
      }
      api = await ApiServerProcess.spawn(lab, lab.node.ns);
      for (const ns of ["default", "prod"]) await api.create("namespaces", makeNamespace(ns));
      await api.create("services", makeService("default", "web", "198.19.0.10"));
      const daemon = startDaemon(lab, {
        args: [
          ...["--kubeconfig", api.kubeconfig, "--hostname-override", NODE],
          ...["--service-cidr", "198.19.0.0/16", "--cluster-cidr", "198.18.0.0/24"],
          ...["--dns-bind-address", `${DNS}:53`, "--pod-records", "verified"],
        ],
      });
      await daemon.waitReady(30_000);
      const [p0, p1] = lab.pods;

      /** The queries svcgate answered for one glibc lookup of www.example.org from pod `i`. */
      const cost = async (i: number) => {
        const before = await settledRequests(lab, METRICS);
        const [found] = await lookups(lab, lab.pods[i].ns, glibc, "www.example.org");
        assertEquals(found.result, "198.18.100.80", "the external name's address");
        return (await settledRequests(lab, METRICS)) - before;
      };
      const becomes = (what: string, i: number, queries: number) =>
        waitFor(what, async () => await cost(i) === queries, 20_000, daemon.log);
      const verified = async (ip: string) =>
        (await dig(lab, DNS, `${ip.replaceAll(".", "-")}.default.pod.cluster.local`)).status;

      await t.step("a pod the API does not list searches itself: 8 queries", async () => {
        assertEquals(await cost(0), 8);
        assertEquals(await verified(p0.ip), "NXDOMAIN", "pods verified: not a known pod");
      });
      await t.step("listed on this node: 2 queries, and its pod record answers", async () => {
        await api!.create("pods", makePod("default", "client", { nodeName: NODE, ips: [p0.ip] }));
        await becomes("pod 0 to get its search path walked", 0, 2);
        assertEquals(await verified(p0.ip), "NOERROR");
      });
      await t.step("its IP changes: the new address is the pod, the old one is not", async () => {
        await api!.update("pods", makePod("default", "client", { nodeName: NODE, ips: [p1.ip] }));
        await becomes("pod 1 to be the pod", 1, 2);
        assertEquals(await cost(0), 8);
        assertEquals(await verified(p0.ip), "NXDOMAIN");
      });
      await t.step("a pod of another node is not this node's client", async () => {
        await api!.create("pods", makePod("default", "far", { nodeName: "node-b", ips: [p0.ip] }));
        assertEquals(await cost(0), 8);
      });
      await t.step("the pod leaves: unknown again", async () => {
        await api!.delete("pods", "default", "client");
        await becomes("pod 1 to search itself again", 1, 8);
        assertEquals(await verified(p1.ip), "NXDOMAIN");
      });
      await daemon.stop();
    } finally {
      await api?.close();
      await lab.destroy();
      await Deno.remove(dir, { recursive: true });
    }
  },
);
