/**
 * End to end in Kubernetes mode: the real daemon (`main.ts run --kubeconfig`) in a lab node, the
 * fake API server (HTTPS, CA, bearer token) as a process in the same namespace, three pods
 * serving real traffic. API changes must reach real DNS answers (dig) and real connections
 * (curl through the VIP); an API outage must leave the last state serving and be visible in
 * /readyz and /metrics, and the daemon must converge once the API returns.
 */

import { Lab, labTest } from "../lab/lab.ts";
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { dig, httpGet, startDaemon, waitFor } from "../daemon/harness.ts";
import { makeEndpointSlice, makeNamespace, makeService } from "../fake_apiserver/fixtures.ts";
import { ApiServerProcess } from "./apiserver_proc.ts";

const DNS = "198.18.0.1";
const HEALTHZ = "http://127.0.0.1:10256";
const ARGS = [
  "--service-cidr",
  "198.19.0.0/16",
  "--cluster-cidr",
  "198.18.0.0/24",
  "--dns-bind-address",
  `${DNS}:53`,
  "--upstream",
  "127.0.0.1:1",
];
const WEB_VIP = "198.19.0.10";
const API_VIP = "198.19.0.11";
const LATE_VIP = "198.19.0.12";

/**
 * `n` HTTP GETs from the node in one shell loop (one process spawn instead of n); returns how
 * many each pod answered ("(failed)" for failures).
 */
async function spread(lab: Lab, url: string, n: number): Promise<Record<string, number>> {
  const r = await lab.exec(lab.node.ns, [
    "bash",
    "-c",
    `for i in $(seq ${n}); do curl -s -m 1 "$0" || echo "(failed)"; done`,
    url,
  ]);
  const out: Record<string, number> = {};
  for (const line of r.stdout.split("\n").filter(Boolean)) out[line] = (out[line] ?? 0) + 1;
  return out;
}

function podsOf(seen: Record<string, number>): string[] {
  return Object.keys(seen).sort();
}

/** The addresses of the VIP set `cluster-ips` of `ip svcgate`, as nft lists them. */
async function clusterIps(lab: Lab): Promise<string> {
  const r = await lab.exec(lab.node.ns, ["nft", "list", "set", "ip", "svcgate", "cluster-ips"]);
  assertEquals(r.code, 0, `nft list set ip svcgate cluster-ips (stderr ${r.stderr.trim()})`);
  return r.stdout;
}

async function readyz(lab: Lab): Promise<{ code: string; body: Record<string, unknown> }> {
  const r = await lab.exec(lab.node.ns, [
    ...["curl", "-s", "-m", "2", "-w", "\n%{http_code}"],
    `${HEALTHZ}/readyz`,
  ]);
  const nl = r.stdout.lastIndexOf("\n");
  const code = r.stdout.slice(nl + 1);
  let body: Record<string, unknown> = {};
  try {
    body = JSON.parse(r.stdout.slice(0, nl));
  } catch { /* not JSON: left empty, the assertions say so */ }
  return { code, body };
}

async function metric(lab: Lab, name: string): Promise<number | null> {
  const r = await lab.exec(lab.node.ns, ["curl", "-s", "-m", "2", `${HEALTHZ}/metrics`]);
  const line = r.stdout.split("\n").find((l) => l.startsWith(`${name} `) || l === name);
  return line === undefined ? null : Number(line.split(" ").pop());
}

function sourceOf(body: Record<string, unknown>): { synced?: boolean; degraded?: boolean } {
  return (body.source ?? {}) as { synced?: boolean; degraded?: boolean };
}

labTest(
  "kube e2e: the daemon follows the API server with real DNS and traffic, and rides out an outage",
  async (t) => {
    const lab = await Lab.create({ pods: 3 });
    let api: ApiServerProcess | null = null;
    try {
      await lab.startPodServers();
      api = await ApiServerProcess.spawn(lab, lab.node.ns);
      const [p0, p1, p2] = lab.pods;
      for (const ns of ["default", "kube-system", "shop"]) {
        await api.create("namespaces", makeNamespace(ns));
      }
      await api.create("services", makeService("default", "web", WEB_VIP));
      await api.create(
        "endpointslices",
        makeEndpointSlice("default", "web", "web-1", [{ ip: p0.ip }, { ip: p1.ip }, {
          ip: p2.ip,
        }]),
      );
      const daemon = startDaemon(lab, { args: [...ARGS, "--kubeconfig", api.kubeconfig] });
      await daemon.waitReady(30_000);
      const log = daemon.log;
      const a = api;

      await t.step(
        "a Service and its EndpointSlice: resolves, traffic spreads over 3 pods",
        async () => {
          const web = await dig(lab, DNS, "web.default.svc.cluster.local");
          assertEquals(web, { status: "NOERROR", answers: [WEB_VIP] }, "web A");
          const seen = await spread(lab, `http://${WEB_VIP}/`, 30);
          assertEquals(podsOf(seen), ["pod-0", "pod-1", "pod-2"], `spread ${JSON.stringify(seen)}`);
        },
      );

      await t.step("an EndpointSlice update dropping a pod: traffic follows", async () => {
        await a.update(
          "endpointslices",
          makeEndpointSlice("default", "web", "web-1", [{ ip: p0.ip }, { ip: p1.ip }]),
        );
        // Wait until a batch no longer reaches pod-2, then check a larger one.
        await waitFor(
          "web to stop reaching pod-2",
          async () => !("pod-2" in await spread(lab, `http://${WEB_VIP}/`, 6)),
          10_000,
          log,
        );
        const seen = await spread(lab, `http://${WEB_VIP}/`, 30);
        assertEquals(podsOf(seen), ["pod-0", "pod-1"], `spread ${JSON.stringify(seen)}`);
      });

      await t.step("a new Service: resolves, and routes as soon as it resolves", async () => {
        await a.create("services", makeService("default", "api", API_VIP));
        await a.create(
          "endpointslices",
          makeEndpointSlice("default", "api", "api-1", [{ ip: p1.ip }]),
        );
        await waitFor(
          "api to resolve",
          async () => (await dig(lab, DNS, "api.default.svc.cluster.local")).answers[0] === API_VIP,
          10_000,
          log,
        );
        assertEquals(await httpGet(lab, `http://${API_VIP}/`), "pod-1", "api routes to pod-1");
        assert((await clusterIps(lab)).includes(API_VIP), `${API_VIP} is in cluster-ips`);
      });

      await t.step("a Service deleted: NXDOMAIN and no route", async () => {
        await a.delete("endpointslices", "default", "api-1");
        await a.delete("services", "default", "api");
        await waitFor(
          "api to be NXDOMAIN",
          async () => (await dig(lab, DNS, "api.default.svc.cluster.local")).status === "NXDOMAIN",
          10_000,
          log,
        );
        // Published after nft committed: the rule is gone by now.
        assert(!(await clusterIps(lab)).includes(API_VIP), `${API_VIP} left cluster-ips`);
        assertEquals(await httpGet(lab, `http://${API_VIP}/`), "", "no route to the deleted VIP");
        assertEquals(
          (await dig(lab, DNS, "web.default.svc.cluster.local")).answers,
          [WEB_VIP],
          "web is untouched",
        );
      });

      await t.step(
        "namespaces: names in a namespace that does not exist are NXDOMAIN",
        async () => {
          assertEquals(
            (await dig(lab, DNS, "web.ghost.svc.cluster.local")).status,
            "NXDOMAIN",
            "a service name in a missing namespace",
          );
          assertEquals(
            (await dig(lab, DNS, "ghost.svc.cluster.local")).status,
            "NXDOMAIN",
            "a missing namespace",
          );
          // An existing namespace without services is an empty non-terminal: NOERROR, no data.
          assertEquals(
            await dig(lab, DNS, "shop.svc.cluster.local"),
            { status: "NOERROR", answers: [] },
            "an existing, empty namespace",
          );
          await a.create("namespaces", makeNamespace("ghost"));
          await a.delete("namespaces", undefined, "shop");
          await waitFor(
            "ghost to exist and shop to go",
            async () =>
              (await dig(lab, DNS, "ghost.svc.cluster.local")).status === "NOERROR" &&
              (await dig(lab, DNS, "shop.svc.cluster.local")).status === "NXDOMAIN",
            10_000,
            log,
          );
          assertEquals(
            (await dig(lab, DNS, "web.ghost.svc.cluster.local")).status,
            "NXDOMAIN",
            "no web service in ghost",
          );
        },
      );

      await t.step(
        "API server down ~5 s: last state serves, degraded shows; then converges",
        async () => {
          const before = await readyz(lab);
          assertEquals(before.code, "200", "/readyz before the outage");
          assertEquals(sourceOf(before.body).degraded, false, "not degraded before the outage");
          const down = performance.now();
          await a.stop();
          // A change made while the API is unreachable; it reaches the daemon only after.
          await a.update(
            "endpointslices",
            makeEndpointSlice("default", "web", "web-1", [{ ip: p0.ip }, { ip: p1.ip }, {
              ip: p2.ip,
            }]),
          );
          await waitFor(
            "/readyz to show the source degraded",
            async () => sourceOf((await readyz(lab)).body).degraded === true,
            5_000,
            log,
          );
          const during = await readyz(lab);
          assertEquals(during.code, "200", "still ready (serving the last state) while degraded");
          assert(
            typeof (during.body.source as { lastError?: unknown }).lastError === "string",
            `readiness detail names the error: ${JSON.stringify(during.body.source)}`,
          );
          assertEquals(await metric(lab, "svcgate_kube_degraded"), 1, "svcgate_kube_degraded");
          // Serving goes on from the last state for the rest of the outage.
          while (performance.now() - down < 5_000) {
            assertEquals(
              (await dig(lab, DNS, "web.default.svc.cluster.local")).answers,
              [WEB_VIP],
              "web resolves during the outage",
            );
            const seen = await spread(lab, `http://${WEB_VIP}/`, 10);
            assertEquals(
              podsOf(seen),
              ["pod-0", "pod-1"],
              `traffic during the outage keeps the last state: ${JSON.stringify(seen)}`,
            );
            await new Promise((r) => setTimeout(r, 250));
          }
          assertEquals(
            (await a.status()).result.running,
            false,
            "the API server was down throughout",
          );

          await a.start();
          // A change right after the API returns.
          await a.create("services", makeService("default", "late", LATE_VIP));
          await a.create(
            "endpointslices",
            makeEndpointSlice("default", "late", "late-1", [{ ip: p2.ip }]),
          );
          // Reconnection waits for the source's backoff (up to ~8 s after a 5 s outage).
          await waitFor(
            "the change made during the outage to reach traffic",
            async () => "pod-2" in await spread(lab, `http://${WEB_VIP}/`, 6),
            30_000,
            log,
          );
          await waitFor(
            "late to resolve",
            async () =>
              (await dig(lab, DNS, "late.default.svc.cluster.local")).answers[0] === LATE_VIP,
            30_000,
            log,
          );
          assertEquals(await httpGet(lab, `http://${LATE_VIP}/`), "pod-2", "late routes");
          const seen = await spread(lab, `http://${WEB_VIP}/`, 30);
          assertEquals(podsOf(seen), ["pod-0", "pod-1", "pod-2"], `spread ${JSON.stringify(seen)}`);
          await waitFor(
            "/readyz to show the source healthy again",
            async () => {
              const r = await readyz(lab);
              return r.code === "200" && sourceOf(r.body).degraded === false;
            },
            30_000,
            log,
          );
          assertEquals(
            await metric(lab, "svcgate_kube_degraded"),
            0,
            "svcgate_kube_degraded after",
          );
        },
      );

      assertEquals(await daemon.stop(), 0, `exit code after SIGTERM; log:\n${log.join("\n")}`);
    } finally {
      await api?.close();
      await lab.destroy();
    }
  },
);
