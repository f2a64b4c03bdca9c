/**
 * The nft dataplane end to end: real nft in a lab node namespace, real connections from pods and
 * from a client host, through the rules NftDataplane writes.
 * @module
 */

import { Lab, labTest } from "../lab/lab.ts";
import {
  check,
  E2E_OPTIONS,
  labDataplane,
  nftInNode,
  nodeTools,
  probe,
  type TcpReport,
} from "./helpers.ts";
import { endpointSet, ep, port, service } from "../support/nft_fixtures.ts";
import { NftDataplane, NftSyncError, readLiveVips } from "../../src/nft/dataplane.ts";
import type { NftExecutor } from "../../src/nft/executor.ts";
import type { Family } from "../../src/nft/ruleset.ts";
import type { RenderOptions } from "../../src/nft/render_options.ts";
import { ModelStore } from "../../src/model/store.ts";
import type { Endpoint, Service } from "../../src/model/types.ts";
import { cidr, ip } from "../support/model_values.ts";

const FOREIGN_TABLE = [
  "table inet foreign {",
  "\tset blocked {",
  "\t\ttype ipv4_addr",
  "\t\telements = { 198.18.55.1 }",
  "\t}",
  "",
  "\tchain input {",
  "\t\ttype filter hook input priority filter; policy accept;",
  "\t\tip saddr @blocked drop",
  "\t}",
  "}",
  "",
].join("\n");

function pods(
  lab: Lab,
  indexes: number[],
  extra: (i: number) => Partial<Endpoint> = () => ({}),
): Endpoint[] {
  return indexes.flatMap((i) => [ep(lab.pods[i].ip, extra(i)), ep(lab.pods[i].ip6, extra(i))]);
}

function setService(store: ModelStore, s: Service, eps: Endpoint[]) {
  store.setService(s);
  store.setEndpointSet(endpointSet(s, eps));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

labTest(
  "nft e2e: services, policies, affinity, UDP cleanup and IPv6 with real packets",
  async (t) => {
    const lab = await Lab.create({ pods: 3, clientHost: true });
    try {
      await lab.startPodServers();
      await nftInNode(lab, ["-f", "-"], FOREIGN_TABLE);
      const foreignBefore = await nftInNode(lab, ["list", "table", "inet", "foreign"]);
      const client = lab.client!.ns;
      const store = new ModelStore();
      const dataplane = labDataplane(lab);
      const sync = async () => {
        const report = await dataplane.apply(store.commit().snapshot);
        return report;
      };
      const local = (i: number): Partial<Endpoint> => ({ nodeName: i === 1 ? "node-b" : "node-a" });

      const web = service("web", ["198.19.0.10", "2001:db8:ffff::10"], [port(80, 8080)]);
      setService(store, web, pods(lab, [0, 1, 2]));
      await sync();

      await t.step(
        "random load balancing spreads over three pods within statistical bounds",
        async () => {
          const r = await probe<TcpReport>(lab, client, ["tcp", "198.19.0.10", 80, 300, 2000, 4]);
          check(Object.keys(r.errors).length === 0, `errors: ${JSON.stringify(r.errors)}`);
          for (const p of ["pod-0", "pod-1", "pod-2"]) {
            const n = r.answers[p] ?? 0;
            // Binomial(300, 1/3): mean 100, sd 8.2; 60..140 is about five sd.
            check(n >= 60 && n <= 140, `${p} answered ${n} of 300: ${JSON.stringify(r.answers)}`);
          }
        },
      );

      await t.step(
        "an endpoint replaced by a new IP: new connections follow at once, none fails",
        async () => {
          setService(store, web, pods(lab, [0, 1]));
          await sync();
          const before = await probe<TcpReport>(lab, client, ["tcp", "198.19.0.10", 80, 60]);
          check(
            !before.answers["pod-2"] && Object.keys(before.errors).length === 0,
            JSON.stringify(before),
          );
          setService(store, web, pods(lab, [0, 2]));
          const report = await sync();
          check(report.mode === "incremental", `incremental sync, got ${report.mode}`);
          const after = await probe<TcpReport>(lab, client, ["tcp", "198.19.0.10", 80, 60]);
          check(
            Object.keys(after.errors).length === 0,
            `errors after the swap: ${JSON.stringify(after.errors)}`,
          );
          check(!after.answers["pod-1"], `pod-1 still answered: ${JSON.stringify(after.answers)}`);
          check(
            (after.answers["pod-2"] ?? 0) > 0 && (after.answers["pod-0"] ?? 0) > 0,
            JSON.stringify(after.answers),
          );
          setService(store, web, pods(lab, [0, 1, 2]));
          await sync();
        },
      );

      await t.step(
        "no endpoints: refused in under 100 ms; unknown port on a live VIP: refused",
        async () => {
          setService(store, service("empty", ["198.19.0.20"], [port(80, 8080)]), []);
          await sync();
          const none = await probe<TcpReport>(lab, client, ["tcp", "198.19.0.20", 80, 10, 2000, 1]);
          check(
            none.errors.ConnectionRefused === 10,
            `expected 10 refusals: ${JSON.stringify(none)}`,
          );
          check(none.maxErrorMs < 100, `a refusal took ${none.maxErrorMs} ms`);
          const fromPod = await probe<TcpReport>(lab, lab.pods[0].ns, [
            "tcp",
            "198.19.0.20",
            80,
            5,
            2000,
            1,
          ]);
          check(
            fromPod.errors.ConnectionRefused === 5 && fromPod.maxErrorMs < 100,
            JSON.stringify(fromPod),
          );
          const badPort = await probe<TcpReport>(lab, client, [
            "tcp",
            "198.19.0.10",
            81,
            5,
            2000,
            1,
          ]);
          check(
            badPort.errors.ConnectionRefused === 5 && badPort.maxErrorMs < 100,
            JSON.stringify(badPort),
          );
        },
      );

      await t.step("NodePort and an externalIP reached from the client host", async () => {
        const np = service("np", ["198.19.0.30"], [port(80, 8080, "TCP", "", 30080)], {
          type: "NodePort",
          externalIPs: [ip("198.19.1.1")],
        });
        setService(store, np, pods(lab, [0, 1]));
        await sync();
        for (const [host, p] of [[lab.nodeClientSide.ip, 30080], ["198.19.1.1", 80]] as const) {
          const r = await probe<TcpReport>(lab, client, ["tcp", host, p, 40]);
          check(
            Object.keys(r.errors).length === 0,
            `${host}:${p} errors ${JSON.stringify(r.errors)}`,
          );
          check(
            (r.answers["pod-0"] ?? 0) > 0 && (r.answers["pod-1"] ?? 0) > 0 && !r.answers["pod-2"],
            `${host}:${p} answers ${JSON.stringify(r.answers)}`,
          );
        }
      });

      await t.step(
        "traffic policy Local: external traffic only to this node's pods; internal Local too",
        async () => {
          const ext = service("ext", ["198.19.0.40"], [port(80, 8080, "TCP", "", 30081)], {
            type: "NodePort",
            externalIPs: [ip("198.19.1.2")],
            externalTrafficPolicy: "Local",
          });
          const itp = service("itp", ["198.19.0.41"], [port(80, 8080)], {
            internalTrafficPolicy: "Local",
          });
          setService(store, ext, pods(lab, [0, 1], local));
          setService(store, itp, pods(lab, [1, 2], local));
          await sync();
          for (const [host, p] of [["198.19.1.2", 80], [lab.nodeClientSide.ip, 30081]] as const) {
            const r = await probe<TcpReport>(lab, client, ["tcp", host, p, 30]);
            check(r.answers["pod-0"] === 30, `${host}:${p} external Local: ${JSON.stringify(r)}`);
          }
          const fromPod = await probe<TcpReport>(lab, lab.pods[2].ns, [
            "tcp",
            "198.19.1.2",
            80,
            40,
          ]);
          check(
            (fromPod.answers["pod-0"] ?? 0) > 0 && (fromPod.answers["pod-1"] ?? 0) > 0,
            `pods reach every endpoint of a Local external IP: ${JSON.stringify(fromPod)}`,
          );
          const internal = await probe<TcpReport>(lab, lab.pods[0].ns, [
            "tcp",
            "198.19.0.41",
            80,
            20,
          ]);
          check(internal.answers["pod-2"] === 20, `internal Local: ${JSON.stringify(internal)}`);
        },
      );

      await t.step("hairpin: a pod reaching its own service and landing on itself", async () => {
        setService(
          store,
          service("self", ["198.19.0.50", "2001:db8:ffff::50"], [port(80, 8080)]),
          pods(lab, [0]),
        );
        await sync();
        for (const vip of ["198.19.0.50", "2001:db8:ffff::50"]) {
          const r = await probe<TcpReport>(lab, lab.pods[0].ns, ["tcp", vip, 80, 10, 2000, 1]);
          check(r.answers["pod-0"] === 10, `hairpin ${vip}: ${JSON.stringify(r)}`);
        }
      });

      await t.step("IPv6 service from the client host and from a pod", async () => {
        const r = await probe<TcpReport>(lab, client, ["tcp", "2001:db8:ffff::10", 80, 60]);
        check(Object.keys(r.errors).length === 0, JSON.stringify(r.errors));
        check(
          Object.keys(r.answers).length === 3,
          `all three pods over IPv6: ${JSON.stringify(r.answers)}`,
        );
        const p = await probe<TcpReport>(lab, lab.pods[1].ns, ["tcp", "2001:db8:ffff::10", 80, 30]);
        check(Object.keys(p.errors).length === 0, JSON.stringify(p.errors));
      });

      for (const family of ["ip", "ip6"] as Family[]) {
        await t.step(`ClientIP affinity (${family}) sticks, and expires`, async () => {
          const vip = family === "ip" ? "198.19.0.60" : "2001:db8:ffff::60";
          const aff = service(`aff-${family}`, [vip], [port(80, 8080)], {
            sessionAffinity: "ClientIP",
            sessionAffinityTimeoutSeconds: 2,
          });
          setService(store, aff, pods(lab, [0, 1, 2]));
          await sync();
          for (let round = 0; round < 3; round++) {
            const r = await probe<TcpReport>(lab, client, ["tcp", vip, 80, 15, 2000, 1]);
            check(
              Object.keys(r.answers).length === 1 && Object.values(r.answers)[0] === 15,
              `sticks: ${JSON.stringify(r)}`,
            );
          }
          const listing = () =>
            nftInNode(lab, [
              "list",
              "map",
              family,
              "svcgate",
              family === "ip" ? "affinity-tcp" : "affinity",
            ]);
          const entries = (text: string) => (text.match(/ expires /g) ?? []).length;
          check(entries(await listing()) === 1, `one affinity entry:\n${await listing()}`);
          await sleep(2600);
          check(entries(await listing()) === 0, `the entry expired:\n${await listing()}`);
          const again = await probe<TcpReport>(lab, client, ["tcp", vip, 80, 5, 2000, 1]);
          check(
            Object.values(again.answers)[0] === 5,
            `a new pick sticks again: ${JSON.stringify(again)}`,
          );
          check(entries(await listing()) === 1, "a new entry after expiry");
        });
      }

      await t.step(
        "UDP: a flow pinned to a removed endpoint moves, thanks to conntrack cleanup",
        async () => {
          const dns = service("udp", ["198.19.0.53"], [port(53, 9090, "UDP", "dns")]);
          // Control: without conntrack cleanup the flow stays pinned to the removed endpoint.
          const plain = new NftDataplane({
            executor: nodeTools(lab).executor,
            renderOptions: E2E_OPTIONS,
          });
          const udpRun = async (dp: NftDataplane, sourcePort: number) => {
            setService(store, dns, pods(lab, [0, 1]));
            await dp.apply(store.commit().snapshot);
            const stream = probe<{ replies: [number, string][] }>(lab, client, [
              "udp",
              "198.19.0.53",
              53,
              2500,
              50,
              sourcePort,
            ]);
            await sleep(1000);
            const log = await lab.exec(lab.node.ns, [
              ...["conntrack", "-L", "-p", "udp", "--orig-dst", "198.19.0.53"],
              ...["--orig-port-dst", "53", "--orig-port-src", String(sourcePort)],
            ]);
            // The reply tuple's source is the endpoint the flow is pinned to.
            const replySrc = /src=\S+ dst=\S+ sport=\d+ dport=\d+ (?:\[\w+\] )?src=(\S+)/
              .exec(log.stdout)?.[1];
            const pinned = lab.pods.findIndex((p) => p.ip === replySrc);
            check(pinned === 0 || pinned === 1, `one pinned flow expected:\n${log.stdout}`);
            const other = 1 - pinned;
            setService(store, dns, pods(lab, [other]));
            const t0 = performance.now();
            await dp.apply(store.commit().snapshot);
            const applyMs = performance.now() - t0;
            const { replies } = await stream;
            return { pinned, other, replies, applyMs };
          };
          await plain.adopt();
          const control = await udpRun(plain, 40053);
          const lateControl = control.replies.filter(([ms]) => ms > 1600).map(([, p]) => p);
          check(lateControl.length > 5, `control got replies: ${JSON.stringify(control.replies)}`);
          check(
            lateControl.every((p) => p === `pod-${control.pinned}`),
            `without cleanup the flow should stay on pod-${control.pinned}: ${
              JSON.stringify(lateControl)
            }`,
          );
          await dataplane.adopt();
          const run = await udpRun(dataplane, 40054);
          const late = run.replies.filter(([ms]) => ms > 1600).map(([, p]) => p);
          check(late.length > 5, `got replies: ${JSON.stringify(run.replies)}`);
          check(
            late.every((p) => p === `pod-${run.other}`),
            `the flow should move to pod-${run.other} after pod-${run.pinned} was removed: ${
              JSON.stringify(run.replies)
            }`,
          );
        },
      );

      await t.step(
        "the foreign table in the same namespace is untouched, also by cleanup",
        async () => {
          check(
            await nftInNode(lab, ["list", "table", "inet", "foreign"]) === foreignBefore,
            "foreign table changed",
          );
          await dataplane.cleanup();
          const tables = await nftInNode(lab, ["list", "tables"]);
          check(tables.trim() === "table inet foreign", `after cleanup: ${tables}`);
          check(
            await nftInNode(lab, ["list", "table", "inet", "foreign"]) === foreignBefore,
            "foreign table changed by cleanup",
          );
          const gone = await probe<TcpReport>(lab, client, ["tcp", "198.19.0.10", 80, 2, 1000, 1]);
          check(
            !gone.answers["pod-0"] && !gone.answers["pod-1"],
            `no service after cleanup: ${JSON.stringify(gone)}`,
          );
        },
      );
    } finally {
      await lab.destroy();
    }
  },
);

labTest(
  "nft e2e: a restarted dataplane adopts the table under continuous load and drops no connection",
  async () => {
    const lab = await Lab.create({ pods: 3, clientHost: true });
    try {
      await lab.startPodServers();
      const store = new ModelStore();
      const web = service("web", ["198.19.0.10"], [port(80, 8080)]);
      const filler: Service[] = Array.from(
        { length: 500 },
        (_, i) => service(`filler-${i}`, [`198.19.${4 + (i >> 8)}.${i & 255}`], [port(80, 8080)]),
      );
      setService(store, web, pods(lab, [0, 1]));
      for (const s of filler) setService(store, s, [ep(lab.pods[i2(s)].ip)]);
      const first = labDataplane(lab);
      await first.apply(store.commit().snapshot);
      // What a restart reads first: who serves which VIP, from the kernel.
      const live = await readLiveVips(nodeTools(lab).executor);
      check(
        JSON.stringify(live["default/web"]) === '["198.19.0.10"]' &&
          Object.keys(live).length === 501,
        `live VIPs by owner: ${JSON.stringify(live).slice(0, 200)}`,
      );
      const load = probe<
        {
          ok: number;
          failed: number;
          errors: Record<string, number>;
          answers: Record<string, number>;
        }
      >(
        lab,
        lab.client!.ns,
        // ~1,000 connections/s: dense enough to catch any gap, sparse enough that the client's
        // source ports do not come back onto the pods' TIME_WAIT sockets within the test.
        ["load", "198.19.0.10", 80, 5000, 2, 2],
      );
      await sleep(1200);
      // Restart 1: a new process state adopts the kernel table and applies a changed snapshot.
      const second = labDataplane(lab);
      await second.adopt();
      setService(store, web, pods(lab, [0, 1, 2]));
      const r2 = await second.apply(store.commit().snapshot);
      check(r2.mode === "full" && !r2.replaced, `adopted and patched: ${JSON.stringify(r2)}`);
      check(r2.elementsAdded < 10, `only the difference was written: ${JSON.stringify(r2)}`);
      await sleep(1200);
      // Restart 2: same snapshot, nothing to write.
      const third = labDataplane(lab);
      await third.adopt();
      const r3 = await third.apply(store.snapshot);
      check(r3.mode === "none", `nothing to write: ${JSON.stringify(r3)}`);
      const result = await load;
      check(result.failed === 0, `connections failed during restarts: ${JSON.stringify(result)}`);
      check(result.ok > 100, `load ran: ${JSON.stringify(result)}`);
      check(
        (result.answers["pod-2"] ?? 0) > 0,
        `the new endpoint got traffic: ${JSON.stringify(result.answers)}`,
      );
    } finally {
      await lab.destroy();
    }
  },
);

function i2(s: Service): number {
  return Number(s.name.split("-")[1]) % 3;
}

/** A real executor passed through; the test doubles below change one call each. */
class Forwarding implements NftExecutor {
  constructor(readonly inner: NftExecutor) {}
  apply(script: string): Promise<void> {
    return this.inner.apply(script);
  }
  listTable(family: Family) {
    return this.inner.listTable(family);
  }
  listSet(family: Family, kind: "set" | "map", name: string) {
    return this.inner.listSet(family, kind, name);
  }
  listOutline(family: Family) {
    return this.inner.listOutline(family);
  }
}

/** A real executor that makes the next transaction fail in the kernel (a bad last line). */
class FailingOnce extends Forwarding {
  armed = false;
  override apply(script: string): Promise<void> {
    if (!this.armed) return super.apply(script);
    this.armed = false;
    return super.apply(`${script}add element ip svcgate no-such-set { 198.19.9.9 }\n`);
  }
}

/** A real executor that counts full table reads (the expensive ones). */
class CountingReads extends Forwarding {
  tableReads = 0;
  override listTable(family: Family) {
    this.tableReads++;
    return super.listTable(family);
  }
}

labTest(
  "nft e2e: a failing transaction leaves the previous ruleset serving; the retry recovers",
  async () => {
    const lab = await Lab.create({ pods: 3, clientHost: true });
    try {
      await lab.startPodServers();
      const executor = new FailingOnce(nodeTools(lab).executor);
      const dataplane = labDataplane(lab, { executor });
      const store = new ModelStore();
      const web = service("web", ["198.19.0.10"], [port(80, 8080)]);
      setService(store, web, pods(lab, [0, 1]));
      await dataplane.apply(store.commit().snapshot);
      setService(store, web, pods(lab, [2]));
      executor.armed = true;
      const snap = store.commit().snapshot;
      let error: unknown = null;
      try {
        await dataplane.apply(snap);
      } catch (e) {
        error = e;
      }
      check(error instanceof NftSyncError, `an NftSyncError, got ${error}`);
      check(
        /no-such-set/.test((error as Error).message),
        `the error quotes nft's line: ${(error as Error).message}`,
      );
      const during = await probe<TcpReport>(lab, lab.client!.ns, ["tcp", "198.19.0.10", 80, 40]);
      check(
        Object.keys(during.errors).length === 0 && !during.answers["pod-2"] &&
          (during.answers["pod-0"] ?? 0) + (during.answers["pod-1"] ?? 0) === 40,
        `the previous ruleset serves: ${JSON.stringify(during)}`,
      );
      const retry = await dataplane.apply(snap);
      check(retry.mode === "full", `the retry is a full reconcile: ${JSON.stringify(retry)}`);
      const after = await probe<TcpReport>(lab, lab.client!.ns, ["tcp", "198.19.0.10", 80, 20]);
      check(after.answers["pod-2"] === 20, `recovered: ${JSON.stringify(after)}`);
    } finally {
      await lab.destroy();
    }
  },
);

labTest(
  "nft e2e: drift (a deleted element, a deleted table) is repaired by checkDrift",
  async () => {
    const lab = await Lab.create({ pods: 2, clientHost: true });
    try {
      await lab.startPodServers();
      const executor = new CountingReads(nodeTools(lab).executor);
      const dataplane = labDataplane(lab, { executor });
      const store = new ModelStore();
      const web = service("web", ["198.19.0.10", "2001:db8:ffff::10"], [port(80, 8080)]);
      setService(store, web, pods(lab, [0, 1]));
      await dataplane.apply(store.commit().snapshot);
      check(!(await dataplane.checkDrift()), "no drift after apply");
      const reads = executor.tableReads;
      check(!(await dataplane.checkDrift({ elements: false })), "the outline agrees too");
      check(
        executor.tableReads === reads,
        `an agreeing outline reads no elements (${executor.tableReads - reads} table reads)`,
      );
      await nftInNode(lab, [
        "delete",
        "element",
        "ip",
        "svcgate",
        "vip-dispatch",
        "{ 198.19.0.10 . tcp . 80 }",
      ]);
      const broken = await probe<TcpReport>(lab, lab.client!.ns, [
        "tcp",
        "198.19.0.10",
        80,
        2,
        1000,
        1,
      ]);
      check(
        Object.keys(broken.answers).length === 0,
        `the damage is real: ${JSON.stringify(broken)}`,
      );
      check(await dataplane.checkDrift(), "element drift found");
      const fixed = await probe<TcpReport>(lab, lab.client!.ns, ["tcp", "198.19.0.10", 80, 20]);
      check(Object.keys(fixed.errors).length === 0, `repaired: ${JSON.stringify(fixed)}`);
      await nftInNode(lab, ["delete", "table", "ip6", "svcgate"]);
      check(
        await dataplane.checkDrift({ elements: false }),
        "a deleted table is found by the cheap outline check",
      );
      const v6 = await probe<TcpReport>(lab, lab.client!.ns, ["tcp", "2001:db8:ffff::10", 80, 20]);
      check(Object.keys(v6.errors).length === 0, `IPv6 table recreated: ${JSON.stringify(v6)}`);
      check(!(await dataplane.checkDrift()), "clean again");
    } finally {
      await lab.destroy();
    }
  },
);

labTest(
  "nft e2e: a differently shaped svcgate table is replaced atomically; LB source ranges; DNS notrack",
  async (t) => {
    const lab = await Lab.create({ pods: 2, clientHost: true });
    try {
      await lab.startPodServers();
      const client = lab.client!.ns;
      // An older or foreign-made "ip svcgate": another declaration and a chain svcgate never writes.
      await nftInNode(
        lab,
        ["-f", "-"],
        [
          "table ip svcgate {",
          '\tset cluster-ips { type ipv4_addr; comment "sg:older"; }',
          "\tchain old-input { type filter hook input priority 0; policy accept; tcp dport 9999 drop; }",
          "}",
          "",
        ].join("\n"),
      );
      const options = { ...E2E_OPTIONS, dnsNotrack: [{ address: lab.node.ip, port: 53 }] };
      const dataplane = labDataplane(lab, { renderOptions: options });
      const store = new ModelStore();
      const lb = service("lb", ["198.19.0.70"], [port(80, 8080)], {
        type: "LoadBalancer",
        loadBalancerIPs: [ip("198.19.2.1")],
        loadBalancerSourceRanges: [cidr("198.18.200.0/24")],
      });
      setService(store, lb, pods(lab, [0, 1]));

      await t.step(
        "the table is replaced in one transaction: the foreign chain is gone",
        async () => {
          await dataplane.adopt();
          const report = await dataplane.apply(store.commit().snapshot);
          check(report.replaced, `replaced: ${JSON.stringify(report)}`);
          const chains = await nftInNode(lab, ["list", "chains", "ip"]);
          check(!chains.includes("old-input"), `old chain still there:\n${chains}`);
        },
      );

      await t.step(
        "loadBalancerSourceRanges: a client outside them is dropped, inside them served",
        async () => {
          const blocked = await probe<TcpReport>(lab, client, ["tcp", "198.19.2.1", 80, 3, 300, 1]);
          check(
            blocked.errors.TimedOut === 3,
            `outside the ranges, dropped (timeouts): ${JSON.stringify(blocked)}`,
          );
          const viaClusterIp = await probe<TcpReport>(lab, client, [
            "tcp",
            "198.19.0.70",
            80,
            3,
            1000,
            1,
          ]);
          check(
            Object.keys(viaClusterIp.errors).length === 0,
            `the ClusterIP is not firewalled: ${JSON.stringify(viaClusterIp)}`,
          );
          setService(
            store,
            service("lb", ["198.19.0.70"], [port(80, 8080)], {
              type: "LoadBalancer",
              loadBalancerIPs: [ip("198.19.2.1")],
              loadBalancerSourceRanges: [cidr("198.18.200.0/24"), cidr("198.18.100.0/24")],
            }),
            pods(lab, [0, 1]),
          );
          await dataplane.apply(store.commit().snapshot);
          const allowed = await probe<TcpReport>(lab, client, ["tcp", "198.19.2.1", 80, 10]);
          check(
            Object.keys(allowed.errors).length === 0,
            `inside the ranges, served: ${JSON.stringify(allowed)}`,
          );
        },
      );

      await t.step(
        "the node reaches its own LB IP when a source range holds a node address (kube-proxy TestLoadBalancer)",
        async () => {
          // A VIP-like load balancer routes its IP to the node: it is a local address there, and
          // a connection from the node to it leaves from the LB IP itself.
          await lab.addNodeAddress("198.19.2.9/32");
          const self = (ranges: string[]) =>
            service("lb-self", ["198.19.0.71"], [port(80, 8080)], {
              type: "LoadBalancer",
              loadBalancerIPs: [ip("198.19.2.9")],
              loadBalancerSourceRanges: ranges.map(cidr),
            });
          const fromNode = () =>
            probe<TcpReport>(lab, lab.node.ns, ["tcp", "198.19.2.9", 80, 3, 500, 1]);
          // The node's addresses as compose.ts gathers them for `svcgate run`.
          const nodeIps = [ip(lab.node.ip), ip(lab.nodeClientSide.ip)];
          const withNodeIps = labDataplane(lab, { renderOptions: { ...options, nodeIps } });
          // [ranges, node IPs known, what the node's connections to its own LB IP get]
          const table: [string[], boolean, string][] = [
            [["198.18.100.0/24"], true, "served"],
            [["198.18.200.0/24"], true, "dropped"],
            // Control: without the node's addresses the range cannot be matched to the node.
            [["198.18.100.0/24"], false, "dropped"],
          ];
          for (const [ranges, known, expected] of table) {
            setService(store, self(ranges), pods(lab, [0]));
            const dp = known ? withNodeIps : dataplane;
            await dp.adopt();
            await dp.apply(store.commit().snapshot);
            const r = await fromNode();
            const got = r.answers["pod-0"] === 3
              ? "served"
              : r.errors.TimedOut === 3
              ? "dropped"
              : "?";
            check(
              got === expected,
              `ranges ${ranges}, node IPs ${known ? "known" : "unknown"}: ${JSON.stringify(r)}`,
            );
          }
        },
      );

      await t.step(
        "DNS notrack: packets to the node-local DNS bind leave no conntrack entry",
        async () => {
          const send = (p: number) =>
            lab.exec(lab.pods[0].ns, ["bash", "-c", `printf hi > /dev/udp/${lab.node.ip}/${p}`]);
          const count = async (p: number) => {
            const r = await lab.exec(lab.node.ns, [
              "conntrack",
              "-L",
              "-p",
              "udp",
              "--orig-dst",
              lab.node.ip,
              "--orig-port-dst",
              String(p),
            ]);
            return r.stdout.split("\n").filter((l) => l.includes("udp")).length;
          };
          await send(53);
          await send(54);
          check(await count(54) === 1, "control: port 54 is tracked");
          check(await count(53) === 0, "port 53 is not tracked");
        },
      );
    } finally {
      await lab.destroy();
    }
  },
);

labTest(
  "nft e2e: topology: this zone's endpoints preferred, all of them when none is; PreferSameNode",
  async (t) => {
    const lab = await Lab.create({ pods: 3, clientHost: true });
    try {
      await lab.startPodServers();
      const client = lab.client!.ns;
      const store = new ModelStore();
      // This node: node-a in zone-a.
      const dataplane = labDataplane(lab, { renderOptions: { ...E2E_OPTIONS, zone: "zone-a" } });
      const where = (i: number, ready = true): Partial<Endpoint> => ({
        nodeName: ["node-a", "node-b", "node-c"][i],
        zone: ["zone-b", "zone-a", "zone-a"][i],
        ready,
      });
      const answered = async (vip: string) => {
        const r = await probe<TcpReport>(lab, client, ["tcp", vip, 80, 60]);
        check(Object.keys(r.errors).length === 0, `errors: ${JSON.stringify(r)}`);
        return Object.keys(r.answers).sort().join(",");
      };
      // [what, distribution, readiness of pod-0..2, pods that answer]
      const table: [string, Service["trafficDistribution"], boolean[], string][] = [
        [
          "no trafficDistribution: every ready pod",
          undefined,
          [true, true, true],
          "pod-0,pod-1,pod-2",
        ],
        ["PreferClose: this zone's pods only", "PreferClose", [true, true, true], "pod-1,pod-2"],
        ["PreferClose, none ready in this zone: every ready pod", "PreferClose", [
          true,
          false,
          false,
        ], "pod-0"],
        ["PreferSameNode: this node's pod", "PreferSameNode", [true, true, true], "pod-0"],
        ["PreferSameNode, this node's pod not ready: this zone's", "PreferSameNode", [
          false,
          true,
          true,
        ], "pod-1,pod-2"],
      ];
      for (const [what, distribution, ready, expected] of table) {
        await t.step(what, async () => {
          const s = service("near", ["198.19.0.80"], [port(80, 8080)], {
            ...(distribution ? { trafficDistribution: distribution } : {}),
          });
          setService(
            store,
            s,
            [0, 1, 2].map((i) => ep(lab.pods[i].ip, where(i, ready[i]))),
          );
          await dataplane.apply(store.commit().snapshot);
          assertEqualsText(await answered("198.19.0.80"), expected, what);
        });
      }
    } finally {
      await lab.destroy();
    }
  },
);

function assertEqualsText(got: string, expected: string, what: string): void {
  check(got === expected, `${what}: answered by ${got || "(none)"}, expected ${expected}`);
}

labTest(
  "nft e2e: --masquerade-all and each --detect-local-mode: the server sees the client's address or the node's",
  async (t) => {
    const lab = await Lab.create({ pods: 2, clientHost: true });
    try {
      await lab.startPodServers();
      const store = new ModelStore();
      setService(store, service("src", ["198.19.0.90"], [port(80, 8080)]), [ep(lab.pods[0].ip)]);
      // This node's Node object: its pods are 198.18.0.0/25 (NodeCIDR mode reads it).
      store.setNode({
        name: "node-a",
        podCidrs: [cidr("198.18.0.0/25")],
        addresses: [],
        deleting: false,
        toBeDeleted: false,
      });
      const snapshot = store.commit().snapshot;
      /** The source address pod-0 sees for a connection through the VIP from `ns`. */
      const seen = async (ns: string) => {
        const r = await lab.exec(ns, ["curl", "-s", "-m", "2", "http://198.19.0.90/source"]);
        return r.stdout.trim() || `(failed: ${r.stderr.trim()})`;
      };
      const pod1 = lab.pods[1].ip, client = lab.client!.ip, node = lab.node.ip;
      // [what, options beyond the lab's, source seen from pod-1, from the client host]
      const table: [string, Partial<RenderOptions>, string, string][] = [
        ["ClusterCIDR (default): pods keep their source", {}, pod1, node],
        ["--masquerade-all: every client masqueraded", { masqueradeAll: true }, node, node],
        [
          "NodeCIDR: this node's pod CIDR from its Node object",
          { clusterCidrs: [], localDetect: { mode: "NodeCIDR" } },
          pod1,
          node,
        ],
        [
          "NodeCIDR: a Node whose pod CIDR holds not pod-1",
          { clusterCidrs: [], localDetect: { mode: "NodeCIDR" } },
          node,
          node,
        ],
        [
          "BridgeInterface br0: in from the pods' bridge, kept",
          { clusterCidrs: [], localDetect: { mode: "BridgeInterface", bridge: "br0" } },
          pod1,
          node,
        ],
        [
          "InterfaceNamePrefix br: kept",
          { clusterCidrs: [], localDetect: { mode: "InterfaceNamePrefix", prefix: "br" } },
          pod1,
          node,
        ],
        [
          "InterfaceNamePrefix veth: routed pod traffic comes in on br0 here, so masqueraded",
          { clusterCidrs: [], localDetect: { mode: "InterfaceNamePrefix", prefix: "veth" } },
          node,
          node,
        ],
      ];
      for (const [what, extra, fromPod, fromClient] of table) {
        await t.step(what, async () => {
          const dataplane = labDataplane(lab, { renderOptions: { ...E2E_OPTIONS, ...extra } });
          await dataplane.adopt();
          const snap = what.includes("holds not")
            ? { ...snapshot, node: { ...snapshot.node!, podCidrs: [cidr("198.18.0.128/25")] } }
            : snapshot;
          await dataplane.apply(snap);
          // Earlier steps' conntrack entries would keep their NAT: start each step afresh.
          await lab.exec(lab.node.ns, ["conntrack", "-F"]);
          assertEqualsText(await seen(lab.pods[1].ns), fromPod, `${what}: from pod-1`);
          assertEqualsText(await seen(lab.client!.ns), fromClient, `${what}: from the client host`);
        });
      }
      assertEqualsText(client, "198.18.100.2", "the client host's address, for the record");
    } finally {
      await lab.destroy();
    }
  },
);
