/**
 * Kubernetes mode end to end, kube-proxy's flags and objects a cutover depends on, through the
 * real daemon (`main.ts run --kubeconfig`) in a lab node against the fake API server process:
 * `--detect-local-mode NodeCIDR` (the Node's podCIDRs), `--nodeport-addresses primary` (the Node's
 * address), load-balancer ingress with `ipMode: Proxy` (not DNATed on the node), and ServiceCIDR
 * objects as the ranges whose unallocated addresses are dropped.
 */

import { type Lab, labTest } from "../lab/lab.ts";
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { startDaemon, waitFor } from "../daemon/harness.ts";
import {
  makeEndpointSlice,
  makeNamespace,
  makeNode,
  makeService,
} from "../fake_apiserver/fixtures.ts";
import { withApiServerLab } from "./apiserver_proc.ts";

/** GET from a namespace: the body, or "timeout" / "refused" / the curl error. */
async function get(lab: Lab, ns: string, url: string): Promise<string> {
  const r = await lab.exec(ns, ["curl", "-s", "-m", "1", url]);
  if (r.code === 0) return r.stdout.trim();
  return r.code === 28 ? "timeout" : r.code === 7 ? "refused" : `curl exit ${r.code}`;
}

function serviceCidr(name: string, cidrs: string[]) {
  return {
    apiVersion: "networking.k8s.io/v1",
    kind: "ServiceCIDR",
    metadata: { name },
    spec: { cidrs },
  };
}

labTest(
  "kube e2e: NodeCIDR and primary NodePort addresses from the Node, ipMode Proxy, ServiceCIDR objects",
  async (t) => {
    await withApiServerLab({ pods: 2, clientHost: true }, async (lab, a) => {
      const [p0, p1] = lab.pods;
      // An address inside a ServiceCIDR range that no Service holds, reachable on pod-0 when no
      // rule drops it.
      await lab.exec(p0.ns, ["ip", "addr", "add", "198.19.9.99/32", "dev", "eth0"]);
      await lab.exec(lab.node.ns, ["ip", "route", "add", "198.19.9.99/32", "via", p0.ip]);
      await a.create("namespaces", makeNamespace("default"));
      await a.create(
        "nodes",
        makeNode("node-a", {
          podCIDRs: ["198.18.0.0/25"],
          addresses: [lab.nodeClientSide.ip, lab.node.ip],
        }),
      );
      await a.create("servicecidrs", serviceCidr("kubernetes", ["198.19.0.0/24"]));
      await a.create("servicecidrs", serviceCidr("extra", ["198.19.9.0/24"]));
      const web = makeService("default", "web", "198.19.0.10", undefined, {
        spec: {
          type: "LoadBalancer",
          ports: [{ name: "http", port: 80, targetPort: 8080, nodePort: 30080 }],
        },
      });
      // The load balancer's status: one VIP-mode ingress, one proxying one.
      web.status = {
        loadBalancer: {
          ingress: [{ ip: "198.19.3.1", ipMode: "VIP" }, { ip: "198.19.3.2", ipMode: "Proxy" }],
        },
      };
      await a.create("services", web);
      await a.create(
        "endpointslices",
        makeEndpointSlice("default", "web", "web-1", [{ ip: p0.ip, nodeName: "node-a" }]),
      );
      const daemon = startDaemon(lab, {
        args: [
          ...["--service-cidr", "198.19.0.0/16", "--cluster-cidr", "198.18.0.0/16", "--dns=false"],
          ...["--hostname-override", "node-a", "--detect-local-mode", "NodeCIDR"],
          ...["--nodeport-addresses", "primary", "--kubeconfig", a.kubeconfig],
        ],
      });
      await daemon.waitReady(30_000);
      const log = daemon.log;

      await t.step(
        "NodeCIDR: this node's pods (the Node's podCIDRs) keep their source",
        async () => {
          assertEquals(await get(lab, p1.ns, "http://198.19.0.10/source"), p1.ip, "pod-1 kept");
          // Within --cluster-cidr, but not this node's pods: masqueraded.
          await a.update(
            "nodes",
            makeNode("node-a", {
              podCIDRs: ["198.18.0.128/25"],
              addresses: [lab.nodeClientSide.ip, lab.node.ip],
            }),
          );
          await waitFor(
            "the new pod CIDR to apply",
            async () => await get(lab, p1.ns, "http://198.19.0.10/source") === lab.node.ip,
            10_000,
            log,
          );
        },
      );

      await t.step("--nodeport-addresses primary: the Node's first address only", async () => {
        assertEquals(
          await get(lab, lab.client!.ns, `http://${lab.nodeClientSide.ip}:30080/`),
          "pod-0",
        );
        // The node's other address is no NodePort address: nothing listens on 30080 there.
        assertEquals(await get(lab, p1.ns, `http://${lab.node.ip}:30080/`), "refused");
      });

      await t.step(
        "ipMode Proxy: the node's traffic to that ingress IP is not DNATed here",
        async () => {
          assertEquals(await get(lab, lab.node.ns, "http://198.19.3.1/"), "pod-0", "VIP mode");
          assertEquals(await get(lab, lab.node.ns, "http://198.19.3.2/"), "timeout", "Proxy mode");
        },
      );

      await t.step("ServiceCIDR objects: their unallocated addresses are dropped", async () => {
        assertEquals(await get(lab, lab.node.ns, "http://198.19.9.99:8080/"), "timeout", "dropped");
        await a.delete("servicecidrs", undefined, "extra");
        await waitFor(
          "198.19.9.99 to be reachable once no ServiceCIDR holds it",
          async () => await get(lab, lab.node.ns, "http://198.19.9.99:8080/") === "pod-0",
          10_000,
          log,
        );
      });
      assertEquals(await daemon.stop(), 0, `exit code; log:\n${log.join("\n")}`);
    });
  },
);
