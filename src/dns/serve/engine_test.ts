import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { ModelStore } from "../../model/store.ts";
import { DnsEngine, type PublishReport } from "./engine.ts";
import { cidr, makeService, port } from "../../../tests/support/dns_fixture.ts";
import { ip } from "../../../tests/support/model_values.ts";

async function dig(port: number, name: string, type: string): Promise<string> {
  const out = await new Deno.Command("dig", {
    args: ["@127.0.0.1", "-p", String(port), "+norecurse", "+tries=1", "+time=2", name, type],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(`dig ${name} ${type} failed: ${new TextDecoder().decode(out.stderr)}`);
  }
  return new TextDecoder().decode(out.stdout);
}

const hasDig = (() => {
  try {
    return new Deno.Command("dig", { args: ["-v"], stdout: "null", stderr: "null" }).outputSync()
      .success;
  } catch {
    return false;
  }
})();

function startEngine(): Promise<DnsEngine> {
  return DnsEngine.start({
    hostname: "127.0.0.1",
    port: 0,
    clusterDomain: "cluster.local",
    ttl: 30,
    reverseCidrs: [cidr("198.19.0.0/16")],
    upstreams: [],
    allowRecursion: [],
    udp: "auto",
    reusePort: false,
    tcp: false,
    tcpIdleTimeoutMs: 1000,
    upstreamTimeoutMs: 500,
    cacheSize: 10,
  }, () => {});
}

Deno.test({
  name: "DnsEngine: publishes under churn are coalesced, none in flight is dropped, DNS converges",
  // dig is part of the test toolchain (apt dnsutils); without it there is nothing to ask with.
  ignore: !hasDig && Deno.env.get("CI") !== "true",
  fn: async () => {
    const engine = await startEngine();
    try {
      const store = new ModelStore();
      // Big enough that the first (whole) build spans many event-loop turns.
      for (let i = 0; i < 3000; i++) {
        store.setService(makeService({
          namespace: "bench",
          name: `svc${i}`,
          clusterIPs: [ip(`198.19.${i >> 8}.${i & 0xff}`)],
          ports: [port("http", "TCP", 80)],
        }));
      }
      const pending: Promise<PublishReport | null>[] = [];
      pending.push(engine.publish(store.commit().snapshot, 1000));
      // Let the whole build start, then churn while it runs.
      await new Promise((r) => setTimeout(r, 5));
      for (let k = 1; k <= 5; k++) {
        store.setService(makeService({
          namespace: "bench",
          name: "svc0",
          clusterIPs: [ip(`198.19.200.${k}`)],
          ports: [port("http", "TCP", 80)],
        }));
        pending.push(engine.publish(store.commit().snapshot, 1000 + k));
        await new Promise((r) => setTimeout(r, 0));
      }
      const reports = await Promise.all(pending);
      assert(reports[0] !== null, "the first (in-flight) build was abandoned");
      assertEquals(reports[0]!.changedServices, -1);
      const last = reports.at(-1)!;
      assert(last !== null, "the newest publish was not applied");
      assertEquals(last.version, 6);
      assertEquals(last.changedServices, 1, "not an in-place update of one service");
      const a = await dig(engine.udpPort, "svc0.bench.svc.cluster.local", "A");
      assert(/svc0\.bench\.svc\.cluster\.local\.\s+30\s+IN\s+A\s+198\.19\.200\.5/.test(a), a);
      const ptr = await dig(engine.udpPort, "1.200.19.198.in-addr.arpa", "PTR");
      assert(/status: NXDOMAIN/.test(ptr), ptr);
      const soa = await dig(engine.udpPort, "cluster.local", "SOA");
      assert(/hostmaster\.cluster\.local\. 1005 /.test(soa), soa);
      // The NODATA half of the A + AAAA pair comes from the precomputed table: serial patched.
      const aaaa = await dig(engine.udpPort, "svc7.bench.svc.cluster.local", "AAAA");
      assert(/hostmaster\.cluster\.local\. 1005 /.test(aaaa), aaaa);
    } finally {
      await engine.stop();
    }
  },
});

Deno.test({
  name: "DnsEngine: a name's answers are precomputed on first ask and follow every change",
  ignore: !hasDig && Deno.env.get("CI") !== "true",
  fn: async () => {
    const engine = await startEngine();
    const web = (vip: string) =>
      makeService({
        namespace: "default",
        name: "web",
        clusterIPs: [ip(vip)],
        ports: [port("http", "TCP", 80)],
      });
    const fastAnswers = () => engine.drainStats().counters.fastPath;
    try {
      const store = new ModelStore();
      store.setService(web("198.19.0.10"));
      store.setService(
        makeService({ namespace: "default", name: "db", clusterIPs: [ip("198.19.0.11")] }),
      );
      await engine.publish(store.commit().snapshot, 2000);
      fastAnswers();
      const ask = async (type: string) => {
        const out = await dig(engine.udpPort, "web.default.svc.cluster.local", type);
        return { out, fast: fastAnswers() };
      };
      // A name's first ask takes the general path, later ones the fast path.
      let r = await ask("A");
      assert(/IN\s+A\s+198\.19\.0\.10/.test(r.out), r.out);
      assertEquals(r.fast, 0, "the first ask takes the general path");
      r = await ask("A");
      assert(/IN\s+A\s+198\.19\.0\.10/.test(r.out), r.out);
      assertEquals(r.fast, 1, "the second ask takes the fast path");
      r = await ask("AAAA");
      assert(/hostmaster\.cluster\.local\. 2000 /.test(r.out), r.out);
      assertEquals(r.fast, 1, "the NODATA half was precomputed with the A");

      // An in-place update of the service: never the old answer, then fast again.
      store.setService(web("198.19.0.20"));
      const report = await engine.publish(store.commit().snapshot, 2001);
      assertEquals(report?.changedServices, 1);
      r = await ask("A");
      assert(/IN\s+A\s+198\.19\.0\.20/.test(r.out), r.out);
      r = await ask("A");
      assert(/IN\s+A\s+198\.19\.0\.20/.test(r.out), r.out);
      assertEquals(r.fast, 1);

      // Another service changes: the cached negative answer carries the new serial.
      r = await ask("AAAA");
      assertEquals(r.fast, 1);
      store.setService(
        makeService({ namespace: "default", name: "db", clusterIPs: [ip("198.19.0.12")] }),
      );
      await engine.publish(store.commit().snapshot, 2002);
      r = await ask("AAAA");
      assert(/hostmaster\.cluster\.local\. 2002 /.test(r.out), r.out);
      assertEquals(r.fast, 1, "the serial was patched in the precomputed answer");

      // The service goes: NXDOMAIN, from the general path.
      store.deleteService("default", "web");
      await engine.publish(store.commit().snapshot, 2003);
      r = await ask("A");
      assert(/status: NXDOMAIN/.test(r.out), r.out);
    } finally {
      await engine.stop();
    }
  },
});
