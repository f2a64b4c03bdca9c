/**
 * The daemon's health as load balancers and probes see it, through `svcgate run` on manifest files
 * in a lab node: /healthz and /livez with kube-proxy's semantics (a change waiting longer than the
 * health timeout without a successful sync makes them 503), and the healthCheckNodePort servers of
 * LoadBalancer services with externalTrafficPolicy Local, probed from a client host outside the
 * node while the node's endpoints come and go.
 */

import { Lab, labTest } from "../lab/lab.ts";
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import {
  type DaemonProcess,
  failingNft,
  serviceManifest,
  startDaemon,
  waitFor,
  writeManifest,
} from "./harness.ts";

const HEALTHZ = "http://127.0.0.1:10256";
const ARGS = [
  "--service-cidr",
  "198.19.0.0/16",
  "--cluster-cidr",
  "198.18.0.0/24",
  "--dns=false",
  "--min-sync-period",
  "5ms",
  "--hostname-override",
  "node-a",
];

/** Status code and body of a GET from a namespace ("000" when nothing answered). */
async function get(lab: Lab, ns: string, url: string): Promise<{ code: string; body: string }> {
  const r = await lab.exec(ns, ["curl", "-s", "-m", "2", "-w", "\n%{http_code}", url]);
  const nl = r.stdout.lastIndexOf("\n");
  return { code: r.stdout.slice(nl + 1) || "000", body: r.stdout.slice(0, nl) };
}

async function metric(lab: Lab, line: string): Promise<number | null> {
  const r = await lab.exec(lab.node.ns, ["curl", "-s", "-m", "2", `${HEALTHZ}/metrics`]);
  const found = r.stdout.split("\n").find((l) => l.startsWith(`${line} `));
  return found === undefined ? null : Number(found.split(" ").pop());
}

async function withLab(
  options: { pods: number; clientHost?: boolean },
  fn: (lab: Lab, dir: string) => Promise<void>,
): Promise<void> {
  const lab = await Lab.create(options);
  const dir = await Deno.makeTempDir({ prefix: "svcgate-health-" });
  try {
    await lab.startPodServers();
    await fn(lab, dir);
  } finally {
    await lab.destroy();
    await Deno.remove(dir, { recursive: true });
  }
}

/**
 * `svcgate run` on a manifest folder with nft behind a failure switch; health timeout 2 s
 * (2 x --sync-period, as kube-proxy).
 */
async function startOnManifests(
  lab: Lab,
  dir: string,
  files: Record<string, string>,
): Promise<{ daemon: DaemonProcess; manifests: string; flag: string }> {
  const { bin, flag } = await failingNft(lab, dir);
  const manifests = `${dir}/manifests`;
  await Deno.mkdir(manifests);
  for (const [name, text] of Object.entries(files)) await writeManifest(manifests, name, text);
  const daemon = startDaemon(lab, {
    args: [...ARGS, "--manifests", manifests, "--state-dir", `${dir}/state`, "--sync-period", "1s"],
    pathPrefix: bin,
    // The wrapper is a command: make the daemon run `nft` rather than libnftables.
    env: { SVCGATE_NFT_EXECUTOR: "command" },
  });
  await daemon.waitReady();
  return { daemon, manifests, flag };
}

async function stopped(daemon: DaemonProcess): Promise<void> {
  assertEquals(await daemon.stop(), 0, `exit code after SIGTERM; log:\n${daemon.log.join("\n")}`);
}

labTest(
  "daemon health: /healthz and /livez turn 503 when a change waits past the timeout (nft failing), and 200 after",
  async () => {
    await withLab({ pods: 1 }, async (lab, dir) => {
      const { daemon, manifests, flag } = await startOnManifests(lab, dir, {
        "web.yaml": serviceManifest("web", "198.19.0.10", [lab.pods[0].ip]),
      });
      const healthy = await get(lab, lab.node.ns, `${HEALTHZ}/healthz`);
      assertEquals(healthy.code, "200", `healthy at start: ${healthy.body}`);
      const body = JSON.parse(healthy.body);
      assertEquals(
        Object.keys(body),
        ["lastUpdated", "currentTime", "nodeEligible"],
        "kube-proxy's fields",
      );
      assert(
        /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)? \+0000 UTC$/.test(body.currentTime),
        body.currentTime,
      );
      assertEquals(body.nodeEligible, true, "no Node object: eligible");
      assertEquals((await get(lab, lab.node.ns, `${HEALTHZ}/livez`)).code, "200", "livez at start");

      await Deno.writeTextFile(flag, "");
      const changedAt = performance.now();
      await writeManifest(
        manifests,
        "new.yaml",
        serviceManifest("new", "198.19.0.11", [lab.pods[0].ip]),
      );
      await waitFor(
        "/healthz to turn 503 while nft fails",
        async () => (await get(lab, lab.node.ns, `${HEALTHZ}/healthz`)).code === "503",
        15_000,
        daemon.log,
      );
      const lateAfterMs = performance.now() - changedAt;
      // The semantics, not a speed: a change is late only once the 2 s timeout has passed.
      assert(lateAfterMs >= 2000, `503 came ${Math.round(lateAfterMs)} ms after the change`);
      assert(daemon.log.some((l) => l.includes("injected failure")), "the syncs failed");
      const late = await get(lab, lab.node.ns, `${HEALTHZ}/livez`);
      assertEquals(late.code, "503", `/livez too: ${late.body}`);
      const lateBody = JSON.parse(late.body);
      assert(
        lateBody.lastUpdated < lateBody.currentTime,
        `lastUpdated is the last sync: ${late.body}`,
      );

      await Deno.remove(flag);
      await waitFor(
        "/healthz to be 200 again once a sync succeeds",
        async () => (await get(lab, lab.node.ns, `${HEALTHZ}/healthz`)).code === "200",
        40_000,
        daemon.log,
      );
      assertEquals((await get(lab, lab.node.ns, `${HEALTHZ}/livez`)).code, "200", "livez after");
      assert(
        (await metric(lab, 'kubeproxy_proxy_healthz_total{code="503"}') ?? 0) >= 1,
        "503s counted",
      );
      assert(
        (await metric(lab, 'kubeproxy_proxy_healthz_total{code="200"}') ?? 0) >= 2,
        "200s counted",
      );
      await stopped(daemon);
    });
  },
);

/** A LoadBalancer service with policy Local and a health check port, and its slice. */
function lbLocal(
  endpoints: { ip: string; node: string; ready?: boolean }[],
  hcPort = 30300,
): string {
  return `apiVersion: v1
kind: Service
metadata: { name: lb, namespace: default }
spec:
  type: LoadBalancer
  clusterIP: 198.19.0.20
  externalTrafficPolicy: Local
  healthCheckNodePort: ${hcPort}
  ports: [{ name: http, port: 80, targetPort: 8080, nodePort: 30080 }]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: lb-1
  namespace: default
  labels: { kubernetes.io/service-name: lb }
addressType: IPv4
ports: [{ name: http, port: 8080 }]
endpoints:
${
    endpoints.map((e) =>
      `  - addresses: ["${e.ip}"]\n    nodeName: ${e.node}\n    conditions: { ready: ${
        e.ready ?? true
      } }`
    ).join("\n") || "  []"
  }
`;
}

async function appliedVersion(lab: Lab): Promise<number> {
  const r = await get(lab, lab.node.ns, `${HEALTHZ}/readyz`);
  return JSON.parse(r.body).dataplane.appliedVersion ?? -1;
}

labTest(
  "daemon health: healthCheckNodePort answers an outside client 200/503 as this node's endpoints come and go, within the sync",
  async (t) => {
    await withLab({ pods: 2, clientHost: true }, async (lab, dir) => {
      const [p0, p1] = lab.pods;
      const { daemon, manifests, flag } = await startOnManifests(lab, dir, {
        "lb.yaml": lbLocal([{ ip: p0.ip, node: "node-a" }]),
      });
      const client = lab.client!.ns;
      const check = `http://${lab.nodeClientSide.ip}:30300/`;
      const probe = async () => {
        const r = await get(lab, client, check);
        if (r.code === "000") return "refused";
        const body = JSON.parse(r.body);
        return `${r.code} ${body.service.namespace}/${body.service.name} local=${body.localEndpoints} proxy=${body.serviceProxyHealthy}`;
      };
      assertEquals(await probe(), "200 default/lb local=1 proxy=true", "one local endpoint");

      // Each step changes the slice and reads the check as soon as the sync that carried the
      // change is applied: the answer moves in that same sync.
      const steps: [string, { ip: string; node: string; ready?: boolean }[], string][] = [
        [
          "the local endpoint moves to another node",
          [{ ip: p0.ip, node: "node-b" }],
          "503 default/lb local=0 proxy=true",
        ],
        [
          "two local endpoints",
          [{ ip: p0.ip, node: "node-a" }, { ip: p1.ip, node: "node-a" }],
          "200 default/lb local=2 proxy=true",
        ],
        [
          "local but not ready",
          [{ ip: p0.ip, node: "node-a", ready: false }],
          "503 default/lb local=0 proxy=true",
        ],
        ["back", [{ ip: p1.ip, node: "node-a" }], "200 default/lb local=1 proxy=true"],
      ];
      for (const [what, endpoints, expected] of steps) {
        await t.step(what, async () => {
          const before = await appliedVersion(lab);
          await writeManifest(manifests, "lb.yaml", lbLocal(endpoints));
          await waitFor(
            "the change to be applied",
            async () => await appliedVersion(lab) > before,
            10_000,
            daemon.log,
          );
          assertEquals(await probe(), expected, what);
        });
      }

      await t.step(
        "the proxy stuck past its timeout: 503 with serviceProxyHealthy false",
        async () => {
          await Deno.writeTextFile(flag, "");
          await writeManifest(
            manifests,
            "web.yaml",
            serviceManifest("web", "198.19.0.10", [p0.ip]),
          );
          await waitFor(
            "the check to report the proxy unhealthy",
            async () => await probe() === "503 default/lb local=1 proxy=false",
            15_000,
            daemon.log,
          );
          await Deno.remove(flag);
          await waitFor(
            "healthy again",
            async () => (await probe()).startsWith("200 "),
            40_000,
            daemon.log,
          );
        },
      );

      await t.step(
        "a port another process holds: logged and counted, never fatal; retried",
        async () => {
          const blocker = lab.spawn(lab.node.ns, [
            Deno.execPath(),
            "eval",
            `Deno.listen({ hostname: "0.0.0.0", port: 30301 }); console.log("ready"); setInterval(() => {}, 1e9);`,
          ]);
          const reader = blocker.stdout.pipeThrough(new TextDecoderStream()).getReader();
          while (!(await reader.read()).value?.includes("ready"));
          reader.releaseLock();
          const before = await appliedVersion(lab);
          await writeManifest(
            manifests,
            "lb.yaml",
            lbLocal([{ ip: p1.ip, node: "node-a" }], 30301),
          );
          await waitFor(
            "the change to be applied",
            async () => await appliedVersion(lab) > before,
            10_000,
            daemon.log,
          );
          assertEquals(await probe(), "refused", "the old port is closed");
          assert(
            (await metric(lab, "svcgate_service_health_listen_failures_total") ?? 0) >= 1,
            "counted",
          );
          assert(
            daemon.log.some((l) => l.includes("cannot start a service health check")),
            "logged",
          );
          assertEquals(
            (await get(lab, lab.node.ns, `${HEALTHZ}/readyz`)).code,
            "200",
            "still ready",
          );
          blocker.kill("SIGKILL");
          await blocker.status;
          // The next sync (any change) opens it.
          await writeManifest(
            manifests,
            "web.yaml",
            serviceManifest("web", "198.19.0.10", [p1.ip]),
          );
          await waitFor(
            "the check on the freed port",
            async () =>
              (await get(lab, client, `http://${lab.nodeClientSide.ip}:30301/`)).code === "200",
            10_000,
            daemon.log,
          );
        },
      );

      await t.step("gone with its service", async () => {
        await Deno.remove(`${manifests}/lb.yaml`);
        await waitFor(
          "the check to close",
          async () =>
            (await get(lab, client, `http://${lab.nodeClientSide.ip}:30301/`)).code === "000",
          10_000,
          daemon.log,
        );
      });
      await stopped(daemon);
    });
  },
);
