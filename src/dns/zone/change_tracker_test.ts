import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { ModelStore } from "../../model/store.ts";
import { DnsChangeTracker } from "./change_tracker.ts";
import {
  endpointSet,
  ep,
  FIXTURE_NAMESPACES,
  FIXTURE_SERVICES,
  makeService,
} from "../../../tests/support/dns_fixture.ts";
import { ip } from "../../../tests/support/model_values.ts";
import { COREDNS_RECORDS, STRICT_RECORDS } from "./zone.ts";

Deno.test("DnsChangeTracker: only changes DNS shows count, and each is taken once", () => {
  const store = new ModelStore();
  for (const put of Object.values(FIXTURE_SERVICES)) put(store);
  store.setNamespaces(FIXTURE_NAMESPACES);
  const changes = new DnsChangeTracker(STRICT_RECORDS);
  const first = store.commit().snapshot;
  assertEquals(changes.examine(first), true, "the first snapshot");
  assertEquals(changes.take(first).upserts.length, first.services.size);

  // Endpoints behind a ClusterIP service: nothing the spec's letter shows.
  store.setEndpointSet(endpointSet("default", "web", [], [ep("198.18.0.51", { ready: false })]));
  const quiet = store.commit().snapshot;
  assertEquals(changes.examine(quiet), false);
  assertEquals(changes.take(quiet), { upserts: [], removed: [] });

  store.setService(
    makeService({ namespace: "prod", name: "api", clusterIPs: [ip("198.19.0.21")] }),
  );
  store.deleteService("default", "pending");
  const moved = store.commit().snapshot;
  assertEquals(changes.examine(moved), true);
  const taken = changes.take(moved);
  assertEquals(taken.upserts.map((e) => e.key), ["prod/api"]);
  assertEquals(taken.removed, ["default/pending"]);
  assertEquals(changes.take(moved), { upserts: [], removed: [] });

  store.setNamespaces([...FIXTURE_NAMESPACES, "extra"]);
  assertEquals(changes.examine(store.commit().snapshot), true, "a namespace appeared");
});

Deno.test("DnsChangeTracker: CoreDNS's answers show the endpoints of ClusterIP services", () => {
  const store = new ModelStore();
  for (const put of Object.values(FIXTURE_SERVICES)) put(store);
  store.setNamespaces(FIXTURE_NAMESPACES);
  const changes = new DnsChangeTracker(COREDNS_RECORDS);
  const first = store.commit().snapshot;
  changes.examine(first);
  changes.take(first);
  // Their names and PTRs answer (and verified pod records read them).
  store.setEndpointSet(endpointSet("default", "web", [], [ep("198.18.0.51", { ready: false })]));
  const moved = store.commit().snapshot;
  assertEquals(changes.examine(moved), true);
  assertEquals(changes.take(moved).upserts.map((e) => e.key), ["default/web"]);
  // Node names are still nothing DNS shows.
  store.setEndpointSet(
    endpointSet("default", "web", [], [ep("198.18.0.51", { ready: false, nodeName: "n1" })]),
  );
  assertEquals(changes.examine(store.commit().snapshot), false);
});
