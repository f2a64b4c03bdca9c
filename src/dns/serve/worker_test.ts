import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { ModelStore } from "../../model/store.ts";
import type { Snapshot } from "../../model/snapshot.ts";
import { DNS_WORKER_NAME, type FromWorker, type ToWorker } from "./worker.ts";
import { slimEntry } from "../zone/slim_entry.ts";
import { buildZone } from "../zone/zone_index.ts";
import { cidr, makeService, port } from "../../../tests/support/dns_fixture.ts";
import { ip } from "../../../tests/support/model_values.ts";

const ZONE = { clusterDomain: "cluster.local", ttl: 30, reverseCidrs: [cidr("198.19.0.0/16")] };

Deno.test({
  name: "DNS worker: changes sent during a whole build do not leak into the snapshot it builds",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const store = new ModelStore();
    // Big enough that the whole build spans several event-loop turns.
    for (let i = 0; i < 3000; i++) {
      store.setService(makeService({
        namespace: `ns${i % 20}`,
        name: `svc${i}`,
        clusterIPs: [ip(`198.19.${i >> 8}.${i & 0xff}`)],
        ports: [port("http", "TCP", 80)],
      }));
    }
    const first = store.commit().snapshot;
    for (let i = 0; i < 10; i++) {
      store.setService(makeService({
        namespace: "late",
        name: `svc${i}`,
        clusterIPs: [ip(`198.19.100.${i}`)],
        ports: [port("http", "TCP", 80)],
      }));
    }
    const second = store.commit().snapshot;

    const worker = new Worker(new URL("./worker_main.ts", import.meta.url), {
      type: "module",
      name: DNS_WORKER_NAME,
    });
    const published = new Map<number, number>();
    let started: () => void;
    let done: () => void;
    const ready = new Promise<void>((r) => started = r);
    const finished = new Promise<void>((r) => done = r);
    worker.onmessage = (e: MessageEvent<FromWorker>) => {
      const m = e.data;
      if (m.type === "started") started();
      if (m.type === "published") {
        published.set(m.version, m.records);
        if (m.version === second.version) done();
      }
      if (m.type === "publishFailed" || m.type === "failed") throw new Error(m.message);
    };
    const send = (m: ToWorker) => worker.postMessage(m);
    const sendSnapshot = (s: Snapshot, before: Snapshot | null) => {
      const fresh = [...s.services.values()].filter((e) => before?.services.get(e.key) !== e);
      send({ type: "upsert", entries: fresh.map((e) => slimEntry(e)) });
      send({
        type: "commit",
        version: s.version,
        serial: s.version,
        removed: [],
        namespaces: [...s.namespaces],
      });
    };
    try {
      send({
        type: "start",
        options: {
          ...ZONE,
          hostname: "127.0.0.1",
          port: 0,
          upstreams: [],
          allowRecursion: [],
          udp: "node",
          reusePort: false,
          tcp: false,
          tcpIdleTimeoutMs: 1000,
          upstreamTimeoutMs: 500,
          cacheSize: 10,
        },
      });
      await ready;
      // The second snapshot's upsert arrives while the first one's whole build is running.
      sendSnapshot(first, null);
      sendSnapshot(second, first);
      await finished;
      const records = (s: Snapshot) => buildZone(s, { ...ZONE, serial: 1 }).recordCount;
      assertEquals(published.get(first.version), records(first));
      assertEquals(published.get(second.version), records(second));
    } finally {
      const stopped = new Promise<void>((r) => {
        worker.onmessage = (e: MessageEvent<FromWorker>) => {
          if (e.data.type === "stopped") r();
        };
      });
      send({ type: "stop" });
      await stopped;
      worker.terminate();
    }
  },
});
