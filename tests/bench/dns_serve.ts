/**
 * Runs a DnsServer over a generated zone in its own process, for the benchmark and for
 * end-to-end tests that want the server out of the test's event loop.
 *
 *   deno run -A tests/bench/dns_serve.ts --port 0 --services 1000 [--workers 1] [--udp auto|ffi|node]
 *     [--upstream 127.0.0.1:5300] [--allow 127.0.0.0/8] [--headless 200] [--fixture] [--churn-ms 1000]
 *
 * Prints one JSON line `{"udpPort":..,"tcpPort":..,"udpMode":..}` when serving; stops on SIGTERM,
 * SIGINT or when stdin closes.
 * @module
 */

import { type Cidr, parseCidr } from "../../src/model/ip.ts";
import type { Snapshot } from "../../src/model/snapshot.ts";
import { ModelStore } from "../../src/model/store.ts";
import { createLogger } from "../../src/observe/log.ts";
import { MetricsRegistry } from "../../src/observe/metrics.ts";
import { DnsServer } from "../../src/dns/serve/server.ts";
import type { UdpTransportChoice } from "../../src/dns/serve/engine.ts";
import {
  bigHeadlessSnapshot,
  FIXTURE_REVERSE_CIDRS,
  fixtureSnapshot,
  makeService,
  manyServicesSnapshot,
} from "../support/dns_fixture.ts";
import { ip } from "../support/model_values.ts";

function arg(name: string, fallback: string): string {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 && i + 1 < Deno.args.length ? Deno.args[i + 1] : fallback;
}
function args(name: string): string[] {
  const out: string[] = [];
  Deno.args.forEach((a, i) => {
    if (a === `--${name}` && i + 1 < Deno.args.length) out.push(Deno.args[i + 1]);
  });
  return out;
}
const cidr = (t: string): Cidr => {
  const c = parseCidr(t);
  if (typeof c === "string") throw new Error(c);
  return c;
};

/** Merges snapshots' services into one (fixtures are independent stores). */
function merge(snaps: Snapshot[]): Snapshot {
  const store = new ModelStore();
  const namespaces = new Set<string>();
  for (const s of snaps) {
    for (const e of s.services.values()) {
      store.setService(e.service);
      store.setEndpointSet({
        namespace: e.service.namespace,
        serviceName: e.service.name,
        id: "merged",
        ports: e.ports.map((p) => ({
          name: p.servicePort.name,
          protocol: p.servicePort.protocol,
          port: p.backends[0]?.port ??
            (typeof p.servicePort.targetPort === "number"
              ? p.servicePort.targetPort
              : p.servicePort.port),
        })),
        endpoints: [...e.endpoints],
      });
    }
    for (const n of s.namespaces) namespaces.add(n);
  }
  store.setNamespaces(namespaces);
  return store.commit().snapshot;
}

const services = Number(arg("services", "1000"));
const headless = Number(arg("headless", "0"));
const snaps: Snapshot[] = [manyServicesSnapshot(services)];
if (headless > 0) snaps.push(bigHeadlessSnapshot(headless));
if (Deno.args.includes("--fixture")) snaps.push(fixtureSnapshot());
const snapshot = merge(snaps);

const upstreams = args("upstream");
const allow = args("allow");
const metrics = new MetricsRegistry();
const server = new DnsServer({
  bind: { hostname: arg("host", "127.0.0.1"), port: Number(arg("port", "0")) },
  clusterDomain: "cluster.local",
  ttl: 30,
  reverseCidrs: FIXTURE_REVERSE_CIDRS,
  upstreams: Deno.args.includes("--no-upstream") ? [] : upstreams.length ? upstreams : [],
  allowRecursion: (allow.length ? allow : ["127.0.0.0/8", "::1/128"]).map(cidr),
  workers: Number(arg("workers", "1")),
  udpTransport: arg("udp", "auto") as UdpTransportChoice,
  log: createLogger({ format: "text", level: arg("log", "warn") as "info" }),
  metrics,
});
await server.start();
if (!Deno.args.includes("--no-publish")) {
  server.publish(snapshot);
  await server.settled();
}
// --churn-ms N: republish every N ms (one service changes each time), as a busy cluster would.
const churnMs = Number(arg("churn-ms", "0"));
if (churnMs > 0) {
  const store = new ModelStore();
  for (const e of snapshot.services.values()) store.setService(e.service);
  store.setNamespaces(snapshot.namespaces);
  store.commit();
  let tick = 0;
  setInterval(() => {
    tick++;
    store.setService(
      makeService({
        namespace: "churn",
        name: "moving",
        clusterIPs: [ip(`198.19.255.${tick % 250}`)],
      }),
    );
    server.publish(store.commit().snapshot);
  }, churnMs);
}
const addr = server.addr!;
console.log(
  JSON.stringify({ udpPort: addr.udpPort, tcpPort: addr.tcpPort, udpMode: addr.udpMode }),
);

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  await server.flushMetrics();
  await server.stop();
  if (Deno.args.includes("--print-metrics")) console.log(metrics.render());
  Deno.exit(0);
};
Deno.addSignalListener("SIGTERM", stop);
Deno.addSignalListener("SIGINT", stop);
(async () => {
  const buf = new Uint8Array(64);
  try {
    while ((await Deno.stdin.read(buf)) !== null) { /* keep serving */ }
  } catch { /* stdin closed */ }
  await stop();
})();
