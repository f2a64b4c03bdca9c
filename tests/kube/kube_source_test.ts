/**
 * The Kubernetes source with the real @kubernetes/client-node against the fake API server over
 * TLS with a bearer token: initial sync, events, resumption, 410 relists, outages.
 */

import { KubeSource } from "../../src/sources/kube/kube_source.ts";
import { MetricsRegistry } from "../../src/observe/metrics.ts";
import {
  makeEndpoints,
  makeEndpointSlice,
  makeNamespace,
  makeService,
  writeKubeconfig,
} from "../fake_apiserver/fixtures.ts";
import { FakeApiServer } from "../fake_apiserver/fake_apiserver.ts";
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { backendsOf, type Harness, sleep, startHarness, waitFor } from "./harness.ts";
import { METRICS } from "../../src/observe/metrics_catalogue.ts";

const FAST_BACKOFF = { initialMs: 100, maxMs: 1000 };

function seed(h: Harness): void {
  for (const ns of ["default", "kube-system", "shop"]) {
    h.api.create("namespaces", makeNamespace(ns));
  }
  h.api.create("services", makeService("default", "web", "198.19.0.10"));
  h.api.create(
    "endpointslices",
    makeEndpointSlice("default", "web", "web-v4", [
      { ip: "198.18.0.10", nodeName: "node-a" },
      { ip: "198.18.0.11", nodeName: "node-b", ready: false },
    ]),
  );
  h.api.create(
    "services",
    makeService("shop", "cart", "2001:db8:19::20", [{
      name: "grpc",
      port: 9000,
      targetPort: 9090,
    }]),
  );
  h.api.create(
    "endpointslices",
    makeEndpointSlice("shop", "cart", "cart-v6", [{ ip: "2001:db8::a0", nodeName: "node-a" }], [
      { name: "grpc", port: 9090 },
    ]),
  );
  h.api.create(
    "services",
    makeService("kube-system", "kube-dns", "198.19.0.53", [
      { name: "dns", port: 53, protocol: "UDP" },
      { name: "dns-tcp", port: 53, protocol: "TCP" },
    ]),
  );
  h.api.create(
    "endpointslices",
    makeEndpointSlice("kube-system", "kube-dns", "kube-dns-1", [{ ip: "198.18.0.53" }], [
      { name: "dns", port: 53, protocol: "UDP" },
      { name: "dns-tcp", port: 53, protocol: "TCP" },
    ]),
  );
}

function newSource(h: Harness, extra: Partial<ConstructorParameters<typeof KubeSource>[0]> = {}) {
  return new KubeSource({
    kubeconfigPath: h.kubeconfig,
    useEndpoints: false,
    syncTimeoutMs: 5000,
    log: h.log,
    backoff: FAST_BACKOFF,
    ...extra,
  });
}

Deno.test("initial sync lists everything, paged, into the model; nodeName is kept", async () => {
  const h = await startHarness();
  const metrics = new MetricsRegistry();
  const source = newSource(h, { pageSize: 2, metrics });
  try {
    seed(h);
    assert(!source.status().synced, "not synced before start");
    await source.start(h.sink);
    assertEquals(source.status(), { synced: true, degraded: false }, "status after sync");
    const snap = h.store.snapshot;
    assertEquals([...snap.services.keys()].sort(), [
      "default/web",
      "kube-system/kube-dns",
      "shop/cart",
    ]);
    assertEquals([...snap.namespaces].sort(), ["default", "kube-system", "shop"]);
    assertEquals(backendsOf(h.store, "default/web"), [
      "198.18.0.10:8080",
      "198.18.0.11:8080(not ready)",
    ]);
    assertEquals(backendsOf(h.store, "shop/cart"), ["[2001:db8::a0]:9090"]);
    const nodes = snap.services.get("default/web")!.ports[0].backends.map((b) => b.nodeName)
      .sort();
    assertEquals(nodes, ["node-a", "node-b"], "nodeName kept for Local traffic policies");
    // Three services with pageSize 2: two pages.
    assertEquals(h.api.counts.list.services, 2, "services listed in 2 pages");
    assertEquals(h.api.counts.list.namespaces, 2, "namespaces listed in 2 pages");
    assert(h.syncRequests() >= 1, "requestSync called after sync");
    assertEquals(
      metrics.of(METRICS.kubeSynced).get(),
      1,
      "synced gauge",
    );
  } finally {
    await source.stop();
    await h.close();
  }
});

Deno.test("adds, updates and deletes of services and slices reach the model", async () => {
  const h = await startHarness();
  const source = newSource(h);
  try {
    seed(h);
    await source.start(h.sink);
    // Add a service, then its slice.
    h.api.create("services", makeService("default", "api", "198.19.0.11"));
    await waitFor("api added", () => h.store.snapshot.services.has("default/api"));
    assertEquals(backendsOf(h.store, "default/api"), []);
    h.api.create(
      "endpointslices",
      makeEndpointSlice("default", "api", "api-1", [{ ip: "198.18.0.20" }]),
    );
    await waitFor("api backends", () => backendsOf(h.store, "default/api").length === 1);
    // A second slice of the same service is merged.
    h.api.create(
      "endpointslices",
      makeEndpointSlice("default", "api", "api-2", [{ ip: "198.18.0.21" }]),
    );
    await waitFor("api merged", () => backendsOf(h.store, "default/api").length === 2);
    assertEquals(backendsOf(h.store, "default/api"), ["198.18.0.20:8080", "198.18.0.21:8080"]);
    // Update the service port and a slice.
    h.api.update(
      "services",
      makeService("default", "api", "198.19.0.11", [{ name: "http", port: 81, targetPort: 8080 }]),
    );
    await waitFor(
      "port 81",
      () => h.store.snapshot.services.get("default/api")?.ports[0].servicePort.port === 81,
    );
    h.api.update(
      "endpointslices",
      makeEndpointSlice("default", "api", "api-2", [{ ip: "198.18.0.22", ready: false }]),
    );
    await waitFor(
      "slice update",
      () => backendsOf(h.store, "default/api").includes("198.18.0.22:8080(not ready)"),
    );
    assertEquals(backendsOf(h.store, "default/api"), [
      "198.18.0.20:8080",
      "198.18.0.22:8080(not ready)",
    ]);
    // Delete a slice, then the service.
    h.api.delete("endpointslices", "default", "api-1");
    await waitFor("slice deleted", () => backendsOf(h.store, "default/api").length === 1);
    h.api.delete("services", "default", "api");
    await waitFor("service deleted", () => !h.store.snapshot.services.has("default/api"));
    // No relist happened: everything came through the watches.
    assertEquals(h.api.counts.list.services, 1, "one services list");
    assertEquals(h.api.counts.list.endpointslices, 1, "one slices list");
  } finally {
    await source.stop();
    await h.close();
  }
});

Deno.test("namespaces: creation and deletion reach snapshot.namespaces", async () => {
  const h = await startHarness();
  const source = newSource(h);
  try {
    seed(h);
    await source.start(h.sink);
    h.api.create("namespaces", makeNamespace("staging"));
    await waitFor("staging exists", () => h.store.snapshot.namespaces.has("staging"));
    h.api.delete("namespaces", undefined, "shop");
    await waitFor("shop gone", () => !h.store.snapshot.namespaces.has("shop"));
    assertEquals([...h.store.snapshot.namespaces].sort(), ["default", "kube-system", "staging"]);
  } finally {
    await source.stop();
    await h.close();
  }
});

Deno.test("a cut watch stream resumes from the last resourceVersion without a relist", async () => {
  const h = await startHarness();
  const source = newSource(h);
  try {
    seed(h);
    await source.start(h.sink);
    h.api.create("services", makeService("default", "a", "198.19.0.21"));
    await waitFor("a", () => h.store.snapshot.services.has("default/a"));
    await waitFor("4 watches", () => h.api.openWatches() === 4);
    const rvBeforeCut = String(h.api.resourceVersion);
    h.api.resetCounts();
    const cut = h.api.cutWatches();
    assertEquals(cut, 4, "four watches cut (services, slices, namespaces, ServiceCIDRs)");
    // Changes while the watches are gone arrive through the resumed watches.
    h.api.create("services", makeService("default", "b", "198.19.0.22"));
    h.api.delete("services", "default", "a");
    await waitFor("b", () => h.store.snapshot.services.has("default/b"));
    await waitFor("a gone", () => !h.store.snapshot.services.has("default/a"));
    await waitFor("4 watches back", () => h.api.openWatches() === 4);
    const counts = h.api.counts;
    assertEquals(counts.list, {
      services: 0,
      endpointslices: 0,
      endpoints: 0,
      namespaces: 0,
      nodes: 0,
      servicecidrs: 0,
      pods: 0,
    }, "no relist after a cut");
    const resumed = h.api.watchLog.find((w) => w.resource === "services")!;
    assertEquals(resumed.resourceVersion, rvBeforeCut, "services watch resumed from its last RV");
    assert(resumed.allowWatchBookmarks, "bookmarks requested");
  } finally {
    await source.stop();
    await h.close();
  }
});

Deno.test("a clean server-side watch close (timeoutSeconds) resumes; bookmarks advance the RV", async () => {
  const h = await startHarness({ bookmarkIntervalMs: 100 });
  const source = newSource(h, { watchTimeoutSeconds: 1 });
  try {
    seed(h);
    await source.start(h.sink);
    await waitFor("4 watches", () => h.api.openWatches() === 4);
    h.api.resetCounts();
    // Slices change; the services watch only sees bookmarks, which carry the global RV.
    h.api.create(
      "endpointslices",
      makeEndpointSlice("default", "web", "web-x", [{ ip: "198.18.0.30" }]),
    );
    const rvAfter = h.api.resourceVersion;
    await waitFor(
      "services watch re-opened",
      () => h.api.watchLog.some((w) => w.resource === "services"),
      5000,
    );
    const rewatch = h.api.watchLog.find((w) => w.resource === "services")!;
    assertEquals(rewatch.resourceVersion, String(rvAfter), "bookmark moved the services RV");
    assertEquals(rewatch.timeoutSeconds, 1, "timeoutSeconds sent");
    assertEquals(h.api.counts.list.services, 0, "no relist");
    assertEquals(backendsOf(h.store, "default/web").length, 3);
  } finally {
    await source.stop();
    await h.close();
  }
});

Deno.test("410 Gone relists and converges; only the difference is committed", async () => {
  const h = await startHarness();
  const source = newSource(h);
  try {
    seed(h);
    for (let i = 0; i < 20; i++) {
      h.api.create("services", makeService("default", `s${i}`, `198.19.1.${i}`));
    }
    await source.start(h.sink);
    await waitFor("all", () => h.store.snapshot.services.size === 23);
    // Take the services watch down, change things while it is gone, and compact the history
    // so its resourceVersion has expired when it comes back.
    await h.api.stop();
    h.api.delete("services", "default", "s0");
    h.api.update("services", makeService("default", "s1", "198.19.1.1", [{ name: "x", port: 99 }]));
    h.api.create("services", makeService("default", "s-new", "198.19.1.200"));
    h.api.compact();
    h.api.resetCounts();
    const commitsBefore = h.commits.length;
    await h.api.start();
    await waitFor("converged", () => {
      const s = h.store.snapshot.services;
      return !s.has("default/s0") && s.has("default/s-new") &&
        s.get("default/s1")?.ports[0].servicePort.port === 99;
    });
    assertEquals(h.api.counts.list.services, 1, "services relisted once");
    const changes = h.commits.slice(commitsBefore).map((c) => c.changes);
    const all = {
      added: changes.flatMap((c) => c.added).sort(),
      removed: changes.flatMap((c) => c.removed).sort(),
      changed: changes.flatMap((c) => c.changed).sort(),
    };
    assertEquals(all, {
      added: ["default/s-new"],
      removed: ["default/s0"],
      changed: ["default/s1"],
    }, "only the difference was committed (no flush)");
    assertEquals(h.store.snapshot.services.size, 23);
  } finally {
    await source.stop();
    await h.close();
  }
});

Deno.test("an ERROR 410 event on an open watch relists", async () => {
  const h = await startHarness();
  const source = newSource(h);
  try {
    seed(h);
    await source.start(h.sink);
    await waitFor("4 watches", () => h.api.openWatches() === 4);
    h.api.resetCounts();
    h.api.compact();
    h.api.create("services", makeService("default", "late", "198.19.0.99"));
    assertEquals(h.api.expireWatches(), 4, "four watches expired");
    await waitFor("relisted", () => h.api.counts.list.services === 1);
    await waitFor("late", () => h.store.snapshot.services.has("default/late"));
    assertEquals(h.api.counts.list.namespaces, 1, "namespaces relisted");
  } finally {
    await source.stop();
    await h.close();
  }
});

for (const reply of ["error-event", "http"] as const) {
  Deno.test(`a server whose history was reset answers "Too large resource version" (${reply}): relist, converge`, async () => {
    const h = await startHarness({ tooLargeWaitMs: 50 });
    const metrics = new MetricsRegistry();
    const source = newSource(h, { metrics });
    try {
      seed(h);
      for (let i = 0; i < 5; i++) {
        h.api.create("services", makeService("default", `s${i}`, `198.19.1.${i}`));
      }
      await source.start(h.sink);
      await waitFor("4 watches", () => h.api.openWatches() === 4);
      const held = Number(source.resources().services.resourceVersion);
      // The new history starts below what svcgate holds; changes made in it stay below too.
      const rv = h.api.resetHistory({ resourceVersion: 1001, reply });
      assert(rv < held, `reset resourceVersion ${rv} is below the one held (${held})`);
      h.api.delete("services", "default", "s0");
      h.api.create("services", makeService("default", "after-reset", "198.19.1.99"));
      h.api.resetCounts();
      await waitFor("converged on the new history", () => {
        const s = h.store.snapshot.services;
        return !s.has("default/s0") && s.has("default/after-reset");
      });
      assertEquals(h.api.counts.list.services, 1, "services relisted once");
      const relists = metrics.of(METRICS.kubeRelists);
      assertEquals(relists.get({ resource: "services", reason: "too_large" }), 1, "counted");
      await waitFor("watching again", () => h.api.openWatches() === 4);
      assertEquals(source.status().synced, true, "synced");
    } finally {
      await source.stop();
      await h.close();
    }
  });
}

Deno.test("an expired continue token restarts the paged list", async () => {
  const h = await startHarness();
  const source = newSource(h, { pageSize: 5 });
  try {
    seed(h);
    for (let i = 0; i < 20; i++) {
      h.api.create("services", makeService("default", `s${i}`, `198.19.1.${i}`));
    }
    let expired = false;
    h.api.onRequest = (info) => {
      // Compact once, just before the second page of services is served.
      if (!expired && info.resource === "services" && info.params.get("continue")) {
        expired = true;
        h.api.create("services", makeService("default", "zz-during-list", "198.19.1.250"));
        h.api.compact();
      }
    };
    await source.start(h.sink);
    assert(expired, "a continue token was used");
    assertEquals(h.store.snapshot.services.size, 24, "all services after the restarted list");
    // 24 services / 5 per page = 5 pages; the first attempt made 2 requests (the second got 410).
    assertEquals(h.api.counts.list.services, 2 + 5, "list restarted from the first page");
  } finally {
    await source.stop();
    await h.close();
  }
});

Deno.test("API server down: last state keeps serving, degraded shows, then converges", async () => {
  const h = await startHarness();
  const metrics = new MetricsRegistry();
  const source = newSource(h, { metrics });
  try {
    seed(h);
    await source.start(h.sink);
    const before = h.store.snapshot;
    await h.api.stop();
    await waitFor("degraded", () => source.status().degraded);
    const st = source.status();
    assert(st.synced, "still synced");
    assert(
      /ECONNREFUSED|ECONNRESET|Premature close|ERR_STREAM_PREMATURE_CLOSE/.test(st.lastError ?? ""),
      `lastError names the failure: ${st.lastError}`,
    );
    // Changes while the API is unreachable (the fake's store keeps them).
    h.api.delete("services", "shop", "cart");
    h.api.create("services", makeService("default", "new", "198.19.0.77"));
    await sleep(5000);
    assert(h.store.snapshot === before, "the last state is kept while the API is down");
    assert(
      metrics.of(METRICS.kubeWatchFailures).values.size > 0,
      "watch failures counted",
    );
    assertEquals(metrics.of(METRICS.kubeDegraded).get(), 1, "degraded gauge");
    h.api.resetCounts();
    await h.api.start();
    await waitFor("converged", () =>
      !h.store.snapshot.services.has("shop/cart") &&
      h.store.snapshot.services.has("default/new"));
    await waitFor("healthy", () => !source.status().degraded);
    assertEquals(h.api.counts.list.services, 0, "resumed from the RV: no relist");
    assertEquals(metrics.of(METRICS.kubeDegraded).get(), 0, "degraded gauge cleared");
  } finally {
    await source.stop();
    await h.close();
  }
});

Deno.test({
  name: "API server down for 30 s: state kept, converges within the backoff bound",
  ignore: Deno.env.get("SVCGATE_SKIP_SLOW") === "1",
  async fn() {
    const h = await startHarness();
    const source = newSource(h, { backoff: { initialMs: 500, maxMs: 5000 } });
    try {
      seed(h);
      await source.start(h.sink);
      const before = h.store.snapshot;
      await h.api.stop();
      h.api.create("services", makeService("default", "after-outage", "198.19.0.78"));
      await sleep(30_000);
      assert(h.store.snapshot === before, "the last state is kept for 30 s");
      assert(source.status().degraded, "degraded during the outage");
      const back = Date.now();
      await h.api.start();
      // Bounded by the largest backoff (5 s) plus slack.
      await waitFor(
        "converged",
        () => h.store.snapshot.services.has("default/after-outage"),
        10_000,
      );
      console.log(`converged ${Date.now() - back} ms after the API server returned`);
    } finally {
      await source.stop();
      await h.close();
    }
  },
});

Deno.test("legacy v1 Endpoints with --use-endpoints", async () => {
  const h = await startHarness();
  const source = newSource(h, { useEndpoints: true });
  try {
    seed(h);
    h.api.create(
      "endpoints",
      makeEndpoints("default", "web", [{ ip: "198.18.0.40", nodeName: "node-a" }, {
        ip: "198.18.0.41",
        ready: false,
      }]),
    );
    await source.start(h.sink);
    assertEquals(backendsOf(h.store, "default/web"), [
      "198.18.0.40:8080",
      "198.18.0.41:8080(not ready)",
    ]);
    assertEquals(h.api.counts.list.endpointslices, 0, "slices not read");
    h.api.update("endpoints", makeEndpoints("default", "web", [{ ip: "198.18.0.42" }]));
    await waitFor(
      "endpoints update",
      () => JSON.stringify(backendsOf(h.store, "default/web")) === '["198.18.0.42:8080"]',
    );
    h.api.delete("endpoints", "default", "web");
    await waitFor("endpoints delete", () => backendsOf(h.store, "default/web").length === 0);
  } finally {
    await source.stop();
    await h.close();
  }
});

Deno.test("an invalid update keeps the last good version and is counted", async () => {
  const h = await startHarness();
  const metrics = new MetricsRegistry();
  const source = newSource(h, { metrics });
  try {
    seed(h);
    await source.start(h.sink);
    h.api.update(
      "services",
      makeService("default", "web", "198.19.0.10", [{ name: "http", port: 70000 }]),
    );
    await waitFor(
      "invalid counted",
      () =>
        metrics.of(METRICS.kubeInvalidObjects).get({ resource: "services" }) ===
          1,
    );
    assertEquals(
      h.store.snapshot.services.get("default/web")?.ports[0].servicePort.port,
      80,
      "last good version serving",
    );
    h.api.update(
      "services",
      makeService("default", "web", "198.19.0.10", [{ name: "http", port: 8000 }]),
    );
    await waitFor(
      "valid again",
      () => h.store.snapshot.services.get("default/web")?.ports[0].servicePort.port === 8000,
    );
  } finally {
    await source.stop();
    await h.close();
  }
});

Deno.test("a wrong token: status names the 401 after syncTimeoutMs; nothing before sync", async () => {
  const h = await startHarness();
  const bad = await writeKubeconfig(h.tls.dir, {
    server: h.api.url,
    caFile: h.tls.caCertFile,
    token: "wrong",
  });
  const source = newSource(h, { kubeconfigPath: bad, syncTimeoutMs: 500 });
  try {
    seed(h);
    const started = source.start(h.sink);
    let outcome = "pending";
    started.then(() => outcome = "resolved", (e) => outcome = `rejected: ${e.message}`);
    await waitFor("refused", () => h.api.counts.unauthorized > 0);
    await sleep(700);
    const st = source.status();
    assert(!st.synced && st.degraded, `status: ${JSON.stringify(st)}`);
    assert(st.lastError?.includes("401"), `lastError names the 401: ${st.lastError}`);
    assertEquals(outcome, "pending", "start() waits for the sync");
    assertEquals(h.syncRequests(), 0, "nothing requested before sync");
    await source.stop();
    await waitFor("start settled", () => outcome !== "pending");
    assert(outcome.includes("stopped before"), `start() after stop(): ${outcome}`);
  } finally {
    await source.stop();
    await h.close();
  }
});

Deno.test("API down at startup: not synced past the timeout, then syncs when it comes up", async () => {
  const h = await startHarness();
  const source = newSource(h, { syncTimeoutMs: 300 });
  try {
    seed(h);
    await h.api.stop();
    let synced = false;
    const started = source.start(h.sink).then(() => synced = true);
    await sleep(800);
    const st = source.status();
    assert(!synced && !st.synced, "not synced while the API is down");
    assert(
      /ECONNREFUSED|Connection refused/.test(st.lastError ?? ""),
      `lastError: ${st.lastError}`,
    );
    assertEquals(h.syncRequests(), 0, "no requestSync before sync");
    assertEquals(h.store.snapshot.services.size, 0, "nothing committed");
    await h.api.start();
    await started;
    assert(source.status().synced, "synced later");
    assert(h.syncRequests() > 0, "requestSync after the late sync");
    assertEquals(h.store.snapshot.services.size, 3);
  } finally {
    await source.stop();
    await h.close();
  }
});

Deno.test("stop() ends every watch and no restart follows", async () => {
  const h = await startHarness();
  const source = newSource(h);
  try {
    seed(h);
    await source.start(h.sink);
    await waitFor("4 watches", () => h.api.openWatches() === 4);
    await source.stop();
    await waitFor("watches closed", () => h.api.openWatches() === 0);
    h.api.resetCounts();
    await sleep(500);
    assertEquals(h.api.counts.watch.services + h.api.counts.list.services, 0, "no restart");
  } finally {
    await source.stop();
    await h.close();
  }
});

Deno.test("plain HTTP works only with insecure-skip-tls-verify", async () => {
  const api = await FakeApiServer.start({});
  const dir = await Deno.makeTempDir();
  try {
    api.create("services", makeService("default", "web", "198.19.0.10"));
    const refused = await writeKubeconfig(dir, { server: api.url });
    const s1 = new KubeSource({
      kubeconfigPath: refused,
      useEndpoints: false,
      syncTimeoutMs: 1000,
    });
    let message = "";
    await s1.start({
      store: new (await import("../../src/model/store.ts")).ModelStore(),
      requestSync() {},
    })
      .catch((e) => message = e.message);
    assert(message.includes("insecure-skip-tls-verify"), `message: ${message}`);
    await s1.stop();
    const allowed = await writeKubeconfig(dir, { server: api.url, insecureSkipTlsVerify: true });
    const { ModelStore } = await import("../../src/model/store.ts");
    const store = new ModelStore();
    const s2 = new KubeSource({
      kubeconfigPath: allowed,
      useEndpoints: false,
      syncTimeoutMs: 5000,
    });
    await s2.start({ store, requestSync: () => store.commit() });
    assert(store.snapshot.services.has("default/web"), "synced over http");
    await s2.stop();
  } finally {
    await api.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("in-cluster service account: token file and CA bundle against the TLS server", async () => {
  const h = await startHarness();
  const sa = await Deno.makeTempDir({ prefix: "svcgate-sa-" });
  try {
    seed(h);
    await Deno.writeTextFile(`${sa}/token`, (await import("./harness.ts")).TOKEN);
    await Deno.copyFile(h.tls.caCertFile, `${sa}/ca.crt`);
    const env = (n: string) =>
      ({ KUBERNETES_SERVICE_HOST: "127.0.0.1", KUBERNETES_SERVICE_PORT: String(h.api.port) })[n];
    const source = new KubeSource({
      useEndpoints: false,
      syncTimeoutMs: 5000,
      env,
      serviceAccountDir: sa,
      log: h.log,
    });
    try {
      await source.start(h.sink);
      assertEquals(source.connection?.origin, "in-cluster");
      assertEquals(h.store.snapshot.services.size, 3);
    } finally {
      await source.stop();
    }
  } finally {
    await Deno.remove(sa, { recursive: true });
    await h.close();
  }
});

Deno.test("a CA that did not sign the server certificate is refused (TLS verification on)", async () => {
  const h = await startHarness();
  const { generateTlsMaterial, removeTlsMaterial } = await import("../fake_apiserver/tls.ts");
  const other = await generateTlsMaterial();
  try {
    seed(h);
    const kc = await writeKubeconfig(other.dir, {
      server: h.api.url,
      caFile: other.caCertFile,
      token: (await import("./harness.ts")).TOKEN,
    });
    const source = newSource(h, { kubeconfigPath: kc, syncTimeoutMs: 300 });
    source.start(h.sink).catch(() => {});
    await waitFor("degraded", () => source.status().degraded);
    const message = source.status().lastError ?? "";
    await source.stop();
    assert(
      /certificate|UnknownIssuer|self.signed/i.test(message),
      `names the TLS failure: ${message}`,
    );
    assertEquals(h.api.counts.list.services, 0, "no request got through");
  } finally {
    await removeTlsMaterial(other);
    await h.close();
  }
});

Deno.test("lists through client-node's generated API client ('typed') give the same model", async () => {
  const h = await startHarness();
  const typed = newSource(h, { lists: "typed", pageSize: 2 });
  try {
    seed(h);
    await typed.start(h.sink);
    const viaTyped = [...h.store.snapshot.services.values()].map((e) => e.fingerprint).sort();
    await typed.stop();
    const { ModelStore } = await import("../../src/model/store.ts");
    const store = new ModelStore();
    const raw = newSource(h, { lists: "raw" });
    await raw.start({ store, requestSync: () => store.commit() });
    await raw.stop();
    const viaRaw = [...store.snapshot.services.values()].map((e) => e.fingerprint).sort();
    assertEquals(viaTyped, viaRaw, "same services and endpoints");
    assertEquals(viaTyped.length, 3);
  } finally {
    await typed.stop();
    await h.close();
  }
});
