import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { healthCheckOf, serviceHealthBody, ServiceHealthServers } from "./service_health.ts";
import { endpointSet, ep, port, service, snapshotOf } from "../../tests/support/nft_fixtures.ts";
import { cidr, ip } from "../../tests/support/model_values.ts";
import { buildServiceEntry } from "../model/snapshot.ts";
import { ModelStore } from "../model/store.ts";
import type { Endpoint, Service } from "../model/types.ts";
import { MetricsRegistry } from "../observe/metrics.ts";
import { silentLogger } from "../observe/log.ts";
import { METRICS } from "../observe/metrics_catalogue.ts";

const lb = (extra: Partial<Service> = {}) =>
  service("web", ["198.19.0.10"], [
    port(80, 8080, "TCP", "http", 30080),
    port(443, 8443, "TCP", "https", 30443),
  ], {
    type: "LoadBalancer",
    externalTrafficPolicy: "Local",
    healthCheckNodePort: 30300,
    ...extra,
  });

Deno.test("healthCheckOf: this node's ready endpoints, counted by address, as kube-proxy", () => {
  // [what, service, endpoints, check]
  const table: [string, Service, Endpoint[], string][] = [
    [
      "two local ready pods, two ports each",
      lb(),
      [ep("198.18.0.10"), ep("198.18.0.11")],
      "30300 2",
    ],
    ["remote pods do not count", lb(), [ep("198.18.0.10", { nodeName: "node-b" })], "30300 0"],
    [
      "not ready, or only serving and terminating, do not count",
      lb(),
      [
        ep("198.18.0.10", { ready: false, serving: false }),
        ep("198.18.0.11", { ready: false, serving: true, terminating: true }),
      ],
      "30300 0",
    ],
    ["no endpoints", lb(), [], "30300 0"],
    ["policy Cluster: no health check", lb({ externalTrafficPolicy: "Cluster" }), [
      ep("198.18.0.10"),
    ], "none"],
    ["not a LoadBalancer: none", lb({ type: "NodePort" }), [ep("198.18.0.10")], "none"],
    ["no port given: none", lb({ healthCheckNodePort: undefined }), [ep("198.18.0.10")], "none"],
    [
      "owned by another proxy: none",
      lb({ labels: { "service.kubernetes.io/service-proxy-name": "other" } }),
      [ep("198.18.0.10")],
      "none",
    ],
  ];
  for (const [what, svc, eps, expected] of table) {
    const check = healthCheckOf(buildServiceEntry(svc, [endpointSet(svc, eps)]), "node-a");
    assertEquals(check ? `${check.port} ${check.localEndpoints}` : "none", expected, what);
  }
});

Deno.test("serviceHealthBody is kube-proxy's body", () => {
  assertEquals(
    serviceHealthBody("default", "web", 2, true),
    '{\n\t"service": {\n\t\t"namespace": "default",\n\t\t"name": "web"\n\t},\n\t"localEndpoints": 2,\n\t"serviceProxyHealthy": true\n}',
  );
});

async function probe(port: number): Promise<string> {
  try {
    const r = await fetch(`http://127.0.0.1:${port}/`);
    const body = JSON.parse(await r.text());
    return `${r.status} ${body.localEndpoints} ${body.serviceProxyHealthy}`;
  } catch {
    return "refused";
  }
}

Deno.test("ServiceHealthServers on loopback: come and go with services; 200/503; a taken port is counted and retried", async () => {
  const metrics = new MetricsRegistry();
  let healthy = true;
  // Free ports, found by listening on 0.
  const free = () => {
    const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const p = (l.addr as Deno.NetAddr).port;
    l.close();
    return p;
  };
  const [p1, p2] = [free(), free()];
  const servers = new ServiceHealthServers({
    nodeName: "node-a",
    nodePortAddresses: [cidr("127.0.0.1/32")],
    localAddresses: () => ["127.0.0.1", "198.18.0.1"],
    proxyHealthy: () => healthy,
    log: silentLogger,
    metrics,
  });
  const store = new ModelStore();
  const set = (svc: Service, eps: Endpoint[]) => {
    store.setService(svc);
    store.setEndpointSet(endpointSet(svc, eps));
    servers.sync(store.commit().snapshot);
  };
  const blocker = Deno.listen({ hostname: "127.0.0.1", port: p2 });
  try {
    set(lb({ healthCheckNodePort: p1 }), [ep("198.18.0.10")]);
    assertEquals(await probe(p1), "200 1 true", "a local ready endpoint");
    set(lb({ healthCheckNodePort: p1 }), [ep("198.18.0.10", { nodeName: "node-b" })]);
    assertEquals(await probe(p1), "503 0 true", "none on this node");
    set(lb({ healthCheckNodePort: p1 }), [ep("198.18.0.10"), ep("198.18.0.12")]);
    healthy = false;
    assertEquals(await probe(p1), "503 2 false", "the proxy unhealthy");
    healthy = true;
    // Moved to a port another process holds: the old one closes, the new one fails, counted.
    set(lb({ healthCheckNodePort: p2 }), [ep("198.18.0.10")]);
    assertEquals(await probe(p1), "refused", "the old port closed");
    assertEquals(metrics.of(METRICS.serviceHealthListenFailures).get(), 1, "failure counted");
    assertEquals(servers.status()["default/web"], {
      port: p2,
      localEndpoints: 1,
      listening: false,
    });
    blocker.close();
    // Any later sync tries again.
    set(service("other", ["198.19.0.11"], [port(80)]), []);
    assertEquals(await probe(p2), "200 1 true", "retried on the next sync");
    store.deleteService("default", "web");
    servers.sync(store.commit().snapshot);
    assertEquals(await probe(p2), "refused", "gone with its service");
    assertEquals(servers.status(), {}, "nothing left");
  } finally {
    try {
      blocker.close();
    } catch { /* closed above */ }
    await servers.stop();
  }
});

Deno.test("healthCheckOf reads a snapshot's entry (dual-stack addresses count each)", () => {
  const svc = lb({ clusterIPs: [ip("198.19.0.10"), ip("2001:db8:ffff::10")] });
  const snap = snapshotOf([svc], [endpointSet(svc, [ep("198.18.0.10"), ep("2001:db8::a")])]);
  assertEquals(healthCheckOf(snap.services.get("default/web")!, "node-a")?.localEndpoints, 2);
});
