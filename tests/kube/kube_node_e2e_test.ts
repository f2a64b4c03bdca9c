/**
 * Kubernetes mode end to end, what the daemon reads of its own Node: the real daemon (`main.ts run
 * --kubeconfig`) in a lab node against the fake API server process. The Node's zone label decides
 * which hinted endpoints serve (topology); /healthz turns 503 while the node is tainted
 * ToBeDeletedByClusterAutoscaler or being deleted (load balancers drain it), while /livez stays 200.
 */

import { type Lab, labTest } from "../lab/lab.ts";
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { spread, startDaemon, waitFor } from "../daemon/harness.ts";

function podsOf(seen: Record<string, number>): string[] {
  return Object.keys(seen).sort();
}
import {
  makeEndpointSlice,
  makeNamespace,
  makeNode,
  makeService,
} from "../fake_apiserver/fixtures.ts";
import { withApiServerLab } from "./apiserver_proc.ts";

const HEALTHZ = "http://127.0.0.1:10256";
const ARGS = [
  "--service-cidr",
  "198.19.0.0/16",
  "--cluster-cidr",
  "198.18.0.0/24",
  "--dns=false",
  "--hostname-override",
  "node-a",
];

async function code(lab: Lab, path: string): Promise<string> {
  const r = await lab.exec(lab.node.ns, [
    ...["curl", "-s", "-o", "/dev/null", "-m", "2", "-w", "%{http_code}"],
    `${HEALTHZ}${path}`,
  ]);
  return r.stdout;
}

labTest(
  "kube e2e: /healthz is 503 while this node is tainted by the autoscaler or being deleted; /livez stays 200",
  async (t) => {
    await withApiServerLab({ pods: 2 }, async (lab, a) => {
      await a.create("namespaces", makeNamespace("default"));
      await a.create("services", makeService("default", "web", "198.19.0.10"));
      await a.create(
        "endpointslices",
        makeEndpointSlice("default", "web", "web-1", [{ ip: lab.pods[0].ip, nodeName: "node-a" }]),
      );
      // Hints as the EndpointSlice controller writes them for trafficDistribution PreferClose.
      await a.create(
        "services",
        makeService("default", "near", "198.19.0.20", undefined, {
          spec: { trafficDistribution: "PreferClose" },
        }),
      );
      await a.create(
        "endpointslices",
        makeEndpointSlice("default", "near", "near-1", [
          {
            ip: lab.pods[0].ip,
            nodeName: "node-b",
            zone: "zone-a",
            hints: { forZones: ["zone-a"] },
          },
          {
            ip: lab.pods[1].ip,
            nodeName: "node-c",
            zone: "zone-b",
            hints: { forZones: ["zone-b"] },
          },
        ]),
      );
      await a.create("nodes", makeNode("node-a", { zone: "zone-a" }));
      await a.create("nodes", makeNode("node-b", { zone: "zone-b" }));
      const daemon = startDaemon(lab, { args: [...ARGS, "--kubeconfig", a.kubeconfig] });
      await daemon.waitReady(30_000);
      const log = daemon.log;
      assertEquals([await code(lab, "/healthz"), await code(lab, "/livez")], ["200", "200"]);

      await t.step(
        "topology: the Node's zone label picks the hinted endpoints, and follows a relabel",
        async () => {
          assertEquals(podsOf(await spread(lab, "http://198.19.0.20/", 20)), ["pod-0"], "zone-a");
          await a.update("nodes", makeNode("node-a", { zone: "zone-b" }));
          await waitFor(
            "traffic to follow the node into zone-b",
            async () => podsOf(await spread(lab, "http://198.19.0.20/", 6)).join() === "pod-1",
            10_000,
            log,
          );
          assertEquals(podsOf(await spread(lab, "http://198.19.0.20/", 20)), ["pod-1"], "zone-b");
          await a.update("nodes", makeNode("node-a", { zone: "zone-c" }));
          await waitFor(
            "no endpoint hinted for zone-c: every ready endpoint",
            async () =>
              podsOf(await spread(lab, "http://198.19.0.20/", 20)).join() === "pod-0,pod-1",
            10_000,
            log,
          );
        },
      );

      const cases: [string, Parameters<typeof makeNode>[1], string][] = [
        [
          "tainted ToBeDeletedByClusterAutoscaler",
          {
            zone: "zone-a",
            taints: [{ key: "ToBeDeletedByClusterAutoscaler", effect: "NoSchedule" }],
          },
          "503",
        ],
        ["taint removed", { zone: "zone-a" }, "200"],
        ["being deleted", { zone: "zone-a", deletionTimestamp: "2025-06-01T12:00:00Z" }, "503"],
      ];
      for (const [what, spec, expected] of cases) {
        await t.step(what, async () => {
          await a.update("nodes", makeNode("node-a", spec));
          await waitFor(
            `/healthz ${expected} (${what})`,
            async () => await code(lab, "/healthz") === expected,
            10_000,
            log,
          );
          assertEquals(await code(lab, "/livez"), "200", "the proxy itself is fine");
        });
      }
      await t.step("another node's taint is not this node's", async () => {
        await a.update("nodes", makeNode("node-a", { zone: "zone-a" }));
        await waitFor(
          "/healthz 200",
          async () => await code(lab, "/healthz") === "200",
          10_000,
          log,
        );
        await a.update(
          "nodes",
          makeNode("node-b", {
            taints: [{ key: "ToBeDeletedByClusterAutoscaler", effect: "NoSchedule" }],
          }),
        );
        await new Promise((r) => setTimeout(r, 500));
        assertEquals(await code(lab, "/healthz"), "200", "node-b's taint");
      });
      assertEquals(await daemon.stop(), 0, `exit code; log:\n${log.join("\n")}`);
    });
  },
);

/** The value of one series on the daemon's /metrics, or null. */
async function sample(lab: Lab, series: string): Promise<number | null> {
  const r = await lab.exec(lab.node.ns, ["curl", "-s", "-m", "2", `${HEALTHZ}/metrics`]);
  const line = r.stdout.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? null : Number(line.split(" ").pop());
}

async function appliedVersion(lab: Lab): Promise<number> {
  const r = await lab.exec(lab.node.ns, ["curl", "-s", "-m", "2", `${HEALTHZ}/readyz`]);
  try {
    return JSON.parse(r.stdout).dataplane.appliedVersion ?? -1;
  } catch {
    return -1;
  }
}

/** A slice carrying the controller's trigger-time annotation. */
function triggered(
  slice: ReturnType<typeof makeEndpointSlice>,
  at: Date,
): ReturnType<typeof makeEndpointSlice> {
  slice.metadata.annotations = {
    "endpoints.kubernetes.io/last-change-trigger-time": at.toISOString(),
  };
  return slice;
}

labTest(
  "kube e2e: /metrics after a known sequence of syncs shows kube-proxy's names with the right counts",
  async () => {
    await withApiServerLab({ pods: 2 }, async (lab, a) => {
      const [p0, p1] = lab.pods;
      await a.create("namespaces", makeNamespace("default"));
      await a.create("services", makeService("default", "web", "198.19.0.10"));
      // Triggered long before the daemon starts: not a programming latency (kube-proxy ignores
      // trigger times from before its start).
      await a.create(
        "endpointslices",
        triggered(
          makeEndpointSlice("default", "web", "web-1", [{ ip: p0.ip }]),
          new Date(2020, 0, 1),
        ),
      );
      // internalTrafficPolicy Local with its only endpoint on another node.
      await a.create(
        "services",
        makeService("default", "itp", "198.19.0.11", undefined, {
          spec: { internalTrafficPolicy: "Local" },
        }),
      );
      await a.create(
        "endpointslices",
        makeEndpointSlice("default", "itp", "itp-1", [{ ip: p1.ip, nodeName: "node-b" }]),
      );
      const daemon = startDaemon(lab, { args: [...ARGS, "--kubeconfig", a.kubeconfig] });
      await daemon.waitReady(30_000);
      const v4 = '{ip_family="IPv4"}';
      const expectCounts = async (
        what: string,
        expected: Record<string, number | null>,
      ): Promise<void> => {
        const got: Record<string, number | null> = {};
        for (const series of Object.keys(expected)) got[series] = await sample(lab, series);
        assertEquals(got, expected, what);
      };
      await expectCounts("after the initial sync", {
        [`kubeproxy_sync_proxy_rules_duration_seconds_count${v4}`]: 1,
        [`kubeproxy_sync_full_proxy_rules_duration_seconds_count${v4}`]: 1,
        [`kubeproxy_network_programming_duration_seconds_count${v4}`]: null,
        "kubeproxy_sync_proxy_rules_service_changes_total": 2,
        "kubeproxy_sync_proxy_rules_endpoint_changes_total": 2,
        "kubeproxy_sync_proxy_rules_endpoint_changes_pending": 0,
        'kubeproxy_sync_proxy_rules_no_local_endpoints_total{ip_family="IPv4",traffic_policy="internal"}':
          1,
        'kubeproxy_sync_proxy_rules_no_local_endpoints_total{ip_family="IPv4",traffic_policy="external"}':
          0,
      });
      // Three endpoint moves, each triggered now and each waited for.
      for (let i = 0; i < 3; i++) {
        const before = await appliedVersion(lab);
        await a.update(
          "endpointslices",
          triggered(
            makeEndpointSlice("default", "web", "web-1", [{ ip: [p1, p0, p1][i].ip }]),
            new Date(),
          ),
        );
        await waitFor(
          "the move to be applied",
          async () => await appliedVersion(lab) > before,
          10_000,
          daemon.log,
        );
      }
      const wall = Date.now() / 1000;
      // A write that changes nothing the rules hold: no sync, no latency, and no endpoint change
      // counted (kube-proxy's endpointSliceCache.updatePending finds nothing to do either).
      await a.update(
        "endpointslices",
        triggered(makeEndpointSlice("default", "web", "web-1", [{ ip: p1.ip }]), new Date()),
      );
      await new Promise((r) => setTimeout(r, 500));
      await expectCounts("after three moves and a no-op write", {
        [`kubeproxy_sync_proxy_rules_duration_seconds_count${v4}`]: 4,
        [`kubeproxy_sync_proxy_rules_duration_seconds_count{ip_family="IPv6"}`]: 4,
        [`kubeproxy_sync_full_proxy_rules_duration_seconds_count${v4}`]: 1,
        [`kubeproxy_sync_partial_proxy_rules_duration_seconds_count${v4}`]: 3,
        [`kubeproxy_network_programming_duration_seconds_count${v4}`]: 3,
        "kubeproxy_sync_proxy_rules_service_changes_total": 2,
        "kubeproxy_sync_proxy_rules_endpoint_changes_total": 5,
        "kubeproxy_sync_proxy_rules_endpoint_changes_pending": 0,
        "kubeproxy_sync_proxy_rules_service_changes_pending": 0,
      });
      // Measured from this run's trigger times, not the 2020 one (a bound, not a speed).
      const sum = await sample(lab, `kubeproxy_network_programming_duration_seconds_sum${v4}`);
      assert(sum !== null && sum >= 0 && sum < 60, `latency sum ${sum} s`);
      const last = await sample(lab, `kubeproxy_sync_proxy_rules_last_timestamp_seconds${v4}`);
      const queued = await sample(
        lab,
        `kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds${v4}`,
      );
      assert(last !== null && Math.abs(last - wall) < 5, `last sync ${last}, now ${wall}`);
      // The no-op write queued nothing (as kube-proxy: no endpoint change, no Sync()): the last
      // queued sync is the last move's, which the last sync then ran.
      assert(
        queued !== null && queued <= last && last - queued < 5,
        `last queued ${queued} just before the last sync ${last}`,
      );
      assertEquals(await daemon.stop(), 0, `exit code; log:\n${daemon.log.join("\n")}`);
    });
  },
);
