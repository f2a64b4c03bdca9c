import { deepStrictEqual as assertEquals, strictEqual } from "node:assert/strict";
import { changedServiceKeys } from "./snapshot.ts";
import { type Commit, ModelStore } from "./store.ts";
import { testService } from "../../tests/support/test_service.ts";
import type { EndpointSet, Service } from "./types.ts";
import { ip } from "../../tests/support/model_values.ts";

function svc(name: string, vip: string, port = 80, namespace = "default"): Service {
  return testService(`${namespace}/${name}`, {
    clusterIPs: [ip(vip)],
    ports: [{ name: "", protocol: "TCP", port, targetPort: 8080 }],
    ipFamilies: [4],
  });
}

function set(
  serviceName: string,
  id: string,
  addresses: string[],
  namespace = "default",
): EndpointSet {
  return {
    namespace,
    serviceName,
    id,
    ports: [{ name: "", protocol: "TCP", port: 8080 }],
    endpoints: addresses.map((address) => ({
      address: ip(address),
      ready: true,
      serving: true,
      terminating: false,
    })),
  };
}

function changes(c: Commit): string[] {
  return [
    ...c.changes.added.map((k) => `+${k}`),
    ...c.changes.removed.map((k) => `-${k}`),
    ...c.changes.changed.map((k) => `~${k}`),
  ];
}

function backends(store: ModelStore, key: string): string[] {
  return store.snapshot.services.get(key)?.ports[0].backends.map((b) => `${b.address}:${b.port}`) ??
    [];
}

Deno.test("ModelStore: a sequence of writes and the changes each commit reports", async (t) => {
  const store = new ModelStore();
  const steps: { name: string; write: () => void; want: string[]; version: number }[] = [
    {
      name: "first commit of an empty store is version 1",
      write: () => {},
      want: [],
      version: 1,
    },
    {
      name: "services added",
      write: () => {
        store.setService(svc("web", "198.19.0.10"));
        store.setService(svc("api", "198.19.0.11", 80, "prod"));
      },
      want: ["+default/web", "+prod/api"],
      version: 2,
    },
    {
      name: "nothing written: no change, same version",
      write: () => {},
      want: [],
      version: 2,
    },
    {
      name: "a write of equal content: no change",
      write: () => store.setService(svc("web", "198.19.0.10")),
      want: [],
      version: 2,
    },
    {
      name: "an endpoint set changes its service",
      write: () => store.setEndpointSet(set("web", "s1", ["198.18.0.1"])),
      want: ["~default/web"],
      version: 3,
    },
    {
      name: "an endpoint set for an unknown service changes nothing yet",
      write: () => store.setEndpointSet(set("db", "s1", ["198.18.0.5"])),
      want: [],
      version: 3,
    },
    {
      name: "the service arrives and picks its endpoints up",
      write: () => store.setService(svc("db", "198.19.0.12")),
      want: ["+default/db"],
      version: 4,
    },
    {
      name: "deleting a missing endpoint set changes nothing",
      write: () => store.deleteEndpointSet("default", "web", "nope"),
      want: [],
      version: 4,
    },
    {
      name: "a service port change",
      write: () => store.setService(svc("web", "198.19.0.10", 81)),
      want: ["~default/web"],
      version: 5,
    },
    {
      name: "a service removed (its sets stay) and an endpoint set removed",
      write: () => {
        store.deleteService("default", "db");
        store.deleteEndpointSet("default", "web", "s1");
      },
      want: ["-default/db", "~default/web"],
      version: 6,
    },
    {
      name: "deleting a missing service changes nothing",
      write: () => store.deleteService("default", "nope"),
      want: [],
      version: 6,
    },
    {
      name: "the removed service comes back with its endpoint set",
      write: () => store.setService(svc("db", "198.19.0.12")),
      want: ["+default/db"],
      version: 7,
    },
  ];
  for (const s of steps) {
    await t.step(s.name, () => {
      const before = store.snapshot;
      s.write();
      const c = store.commit();
      assertEquals(changes(c), s.want);
      strictEqual(c.snapshot.version, s.version);
      strictEqual(store.snapshot, c.snapshot);
      // A commit without changes hands back the very same snapshot.
      if (s.want.length === 0 && s.version > 1) strictEqual(c.snapshot, before);
      strictEqual(store.hasChanges, false);
    });
  }
  await t.step("backends reflect the last writes", () => {
    assertEquals(backends(store, "default/db"), ["198.18.0.5:8080"]);
    assertEquals(backends(store, "default/web"), []);
  });
});

Deno.test("ModelStore: unchanged services keep their entry objects across commits", () => {
  const store = new ModelStore();
  store.setService(svc("a", "198.19.0.10"));
  store.setService(svc("b", "198.19.0.11"));
  const first = store.commit().snapshot;
  store.setService(svc("b", "198.19.0.11", 81));
  const second = store.commit().snapshot;
  strictEqual(second.services.get("default/a"), first.services.get("default/a"));
  strictEqual(second.services.get("default/b") === first.services.get("default/b"), false);
  // The previous snapshot is immutable: it still shows the old port.
  strictEqual(first.services.get("default/b")!.service.ports[0].port, 80);
});

Deno.test("changedServiceKeys: exactly the services a commit added, replaced or removed", () => {
  const store = new ModelStore();
  for (let i = 0; i < 2000; i++) store.setService(svc(`s${i}`, `198.19.${i >> 8}.${i & 255}`));
  const first = store.commit().snapshot;
  store.setService(svc("s7", "198.19.0.7", 81));
  store.deleteService("default", "s9");
  store.setService(svc("new", "198.19.200.1"));
  store.setService(svc("s11", "198.19.0.11")); // Same content: the entry is kept.
  const second = store.commit().snapshot;
  assertEquals(changedServiceKeys(first, second).sort(), [
    "default/new",
    "default/s7",
    "default/s9",
  ]);
  assertEquals(changedServiceKeys(second, second), []);
  // Any two snapshots compare, not only consecutive ones (a failed apply skips one).
  store.deleteService("default", "new");
  const third = store.commit().snapshot;
  assertEquals(changedServiceKeys(first, third).sort(), ["default/s7", "default/s9"]);
  // Snapshots not made by a store (the DNS worker builds its own) compare entry by entry.
  const plain = { ...third, services: new Map(third.services) };
  assertEquals(changedServiceKeys(first, plain).sort(), ["default/s7", "default/s9"]);
});

Deno.test("ModelStore: replaceAll marks only the real differences", () => {
  const store = new ModelStore();
  const a = svc("a", "198.19.0.10"), b = svc("b", "198.19.0.11"), c = svc("c", "198.19.0.12");
  const sa = set("a", "s1", ["198.18.0.1"]);
  store.replaceAll({ services: [a, b, c], endpointSets: [sa] });
  assertEquals(changes(store.commit()), ["+default/a", "+default/b", "+default/c"]);
  // b removed, c changed, d added, a untouched (same objects), a set for b dropped with it.
  const c2 = svc("c", "198.19.0.12", 8080), d = svc("d", "198.19.0.13");
  store.replaceAll({ services: [a, c2, d], endpointSets: [sa] });
  assertEquals(changes(store.commit()), ["+default/d", "-default/b", "~default/c"]);
  // New objects with equal content: nothing to report.
  store.replaceAll({
    services: [svc("a", "198.19.0.10"), svc("c", "198.19.0.12", 8080), svc("d", "198.19.0.13")],
    endpointSets: [set("a", "s1", ["198.18.0.1"])],
  });
  assertEquals(changes(store.commit()), []);
  // An endpoint set change alone.
  store.replaceAll({
    services: [a, c2, d],
    endpointSets: [set("a", "s1", ["198.18.0.1", "198.18.0.2"])],
  });
  assertEquals(changes(store.commit()), ["~default/a"]);
  assertEquals(backends(store, "default/a"), ["198.18.0.1:8080", "198.18.0.2:8080"]);
});

Deno.test("ModelStore: namespaces, derived or explicit", () => {
  const store = new ModelStore();
  store.setService(svc("a", "198.19.0.10", 80, "prod"));
  store.commit();
  assertEquals([...store.snapshot.namespaces].sort(), ["default", "prod"]);
  store.setNamespaces(["default", "prod", "staging"]);
  const c = store.commit();
  assertEquals(changes(c), []);
  assertEquals([...c.snapshot.namespaces].sort(), ["default", "prod", "staging"]);
  store.setNamespaces(null);
  store.commit();
  assertEquals([...store.snapshot.namespaces].sort(), ["default", "prod"]);
  store.replaceAll({ services: [svc("b", "198.19.0.11", 80, "dev")], endpointSets: [] });
  store.commit();
  assertEquals([...store.snapshot.namespaces].sort(), ["default", "dev"]);
});

Deno.test({
  name: "ModelStore: replaceAll with the same state commits nothing",
  fn() {
    const store = new ModelStore();
    const state = {
      services: [svc("a", "198.19.0.10")],
      endpointSets: [],
      namespaces: ["default"],
    };
    store.replaceAll(state);
    const first = store.commit().snapshot;
    store.replaceAll(state);
    strictEqual(store.hasChanges, false);
    strictEqual(store.commit().snapshot, first);
  },
});

Deno.test({
  name: "ModelStore: a namespace holding only endpoint sets appears at once",
  fn() {
    const store = new ModelStore();
    store.commit();
    store.setEndpointSet(set("db", "s1", ["198.18.0.5"], "data"));
    assertEquals([...store.commit().snapshot.namespaces].sort(), ["data", "default"]);
  },
});

Deno.test("store: marking the state partial or complete commits a new snapshot that says so", () => {
  const store = new ModelStore();
  store.replaceAll({ services: [], endpointSets: [], partial: true });
  strictEqual(store.hasChanges, true);
  const partial = store.commit().snapshot;
  strictEqual(partial.partial, true);
  store.replaceAll({ services: [], endpointSets: [], partial: true });
  strictEqual(store.commit().snapshot, partial, "unchanged: the same snapshot");
  store.setPartial(false);
  const complete = store.commit().snapshot;
  strictEqual(complete.partial, undefined);
  strictEqual(complete.version, partial.version + 1);
});

Deno.test("ModelStore counts writes as kube-proxy's change trackers, with trigger times", () => {
  const store = new ModelStore();
  const withTrigger = (s: EndpointSet, time: number): EndpointSet => ({ ...s, triggerTime: time });
  store.setService(svc("a", "198.19.0.1"));
  store.setService(svc("a", "198.19.0.1", 81));
  store.setService(svc("b", "198.19.0.2"));
  store.setEndpointSet(withTrigger(set("a", "a-1", ["198.18.0.10"]), 1000));
  store.setEndpointSet(withTrigger(set("a", "a-1", ["198.18.0.11"]), 1000)); // same trigger: once
  store.setEndpointSet(withTrigger(set("b", "b-1", ["2001:db8::a"]), 2000));
  assertEquals(store.pending, { services: 2, endpoints: 3 }, "services counted once each");
  const first = store.commit().pending;
  assertEquals(first, {
    services: 2,
    endpoints: 3,
    triggerTimes: [{ time: 1000, family: 4 }, { time: 2000, family: 6 }],
  });
  assertEquals(store.pending, { services: 0, endpoints: 0 }, "a commit takes them");
  store.setEndpointSet(withTrigger(set("a", "a-1", ["198.18.0.12"]), 3000));
  store.setEndpointSet(withTrigger(set("a", "a-2", ["198.18.0.13"]), 3500));
  // As kube-proxy: a removed set's annotation says nothing of the removal; the service's pending
  // trigger times are forgotten.
  store.deleteEndpointSet("default", "a", "a-2");
  store.setEndpointSet(withTrigger(set("b", "b-1", ["2001:db8::b"]), 4000));
  assertEquals(store.commit().pending.triggerTimes, [{ time: 4000, family: 6 }]);
  store.deleteService("default", "b");
  store.deleteService("default", "nope");
  assertEquals(store.commit().pending, { services: 1, endpoints: 0, triggerTimes: [] });
  assertEquals(store.changeTotals, { services: 4, endpoints: 7 }, "totals since start");
});

Deno.test("ModelStore: node facts; only what rules depend on makes a new snapshot", () => {
  const store = new ModelStore();
  const node = { name: "n1", podCidrs: [], addresses: [], deleting: false, toBeDeleted: false };
  store.commit();
  store.setNode({ ...node, zone: "z1" });
  const v1 = store.commit().snapshot;
  assertEquals(v1.node?.zone, "z1");
  store.setNode({ ...node, zone: "z1", toBeDeleted: true });
  strictEqual(store.commit().snapshot, v1, "a taint is read from store.node, not synced");
  assertEquals(store.node?.toBeDeleted, true);
  store.setNode({ ...node, zone: "z2" });
  assertEquals(store.commit().snapshot.node?.zone, "z2");
  store.setNode(null);
  assertEquals(store.commit().snapshot.node, undefined, "unknown again");
});
