import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { ModelStore } from "../model/store.ts";
import type { Snapshot } from "../model/snapshot.ts";
import type { Service } from "../model/types.ts";
import { testService } from "../../tests/support/test_service.ts";
import { silentLogger } from "../observe/log.ts";
import { MetricsRegistry } from "../observe/metrics.ts";
import { type LoopClock, SyncLoop } from "./sync_loop.ts";
import { ip } from "../../tests/support/model_values.ts";
import { ProxierHealth } from "./proxier_health.ts";
import type { EndpointSet } from "../model/types.ts";

function service(name: string): Service {
  return testService(`default/${name}`, { clusterIPs: [ip("198.19.0.10")], ipFamilies: [4] });
}

/** A manual clock: timers fire only when the test advances time. */
class ManualClock implements LoopClock {
  t = 0;
  /** Wall clock: 1,000 s after the epoch plus the monotonic time. */
  wallNow() {
    return 1_000_000 + this.t;
  }
  #timers = new Map<number, { at: number; fn: () => void }>();
  #next = 1;
  now() {
    return this.t;
  }
  setTimeout(fn: () => void, ms: number) {
    const id = this.#next++;
    this.#timers.set(id, { at: this.t + ms, fn });
    return id;
  }
  clearTimeout(id: unknown) {
    this.#timers.delete(id as number);
  }
  /** Moves time forward, firing due timers, and lets their promises settle. */
  async advance(ms: number) {
    this.t += ms;
    for (const [id, timer] of [...this.#timers]) {
      if (timer.at <= this.t) {
        this.#timers.delete(id);
        timer.fn();
      }
    }
    for (let i = 0; i < 10; i++) await Promise.resolve();
  }
}

function setup(failures: number, health?: ProxierHealth) {
  const store = new ModelStore();
  const clock = new ManualClock();
  const applied: number[] = [];
  const published: number[] = [];
  const metrics = new MetricsRegistry();
  let toFail = failures;
  const loop = new SyncLoop({
    store,
    dataplane: {
      apply(s: Snapshot) {
        if (toFail-- > 0) return Promise.reject(new Error("nft: injected failure"));
        applied.push(s.version);
        // The first apply reconciles against the kernel, as NftDataplane's does.
        return Promise.resolve({ mode: applied.length === 1 ? "full" : "incremental" });
      },
    },
    publish: (s) => published.push(s.version),
    minSyncPeriodMs: 5,
    log: silentLogger,
    metrics,
    clock,
    initialBackoffMs: 100,
    ...(health ? { health } : {}),
  });
  return { store, clock, loop, applied, published, metrics };
}

Deno.test("sync loop: a burst inside the min sync period becomes one apply, then publish", async () => {
  const { store, clock, loop, applied, published } = setup(0);
  store.setService(service("a"));
  loop.requestSync();
  await clock.advance(0);
  store.setService(service("b"));
  loop.requestSync();
  store.setService(service("c"));
  loop.requestSync();
  await clock.advance(2);
  assertEquals(applied, [1]);
  await clock.advance(5);
  assertEquals(applied, [1, 2]);
  assertEquals(published, [1, 2]);
});

Deno.test("sync loop: a failed apply publishes nothing and is retried with backoff", async () => {
  const { store, clock, loop, applied, published } = setup(2);
  store.setService(service("a"));
  loop.requestSync();
  await clock.advance(0);
  assertEquals([applied, published, loop.lastError], [[], [], "nft: injected failure"]);
  await clock.advance(99);
  assertEquals(applied, []);
  await clock.advance(1); // first retry at 100 ms fails again
  assertEquals(applied, []);
  await clock.advance(199);
  assertEquals(applied, []);
  await clock.advance(1); // second retry at +200 ms succeeds
  assertEquals([applied, published, loop.lastError], [[1], [1], undefined]);
  assertEquals(loop.converged, true);
});

Deno.test("sync loop: nothing new to apply publishes nothing again", async () => {
  const { store, clock, loop, applied } = setup(0);
  store.setService(service("a"));
  loop.requestSync();
  await clock.advance(0);
  store.setService(service("a")); // same content: commit returns the same snapshot
  loop.requestSync();
  await clock.advance(10);
  assertEquals(applied, [1]);
});

/** The value of one series in the Prometheus text, or null. */
function sample(text: string, series: string): number | null {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? null : Number(line.split(" ").pop());
}

function slice(name: string, address: string, triggerTime?: number): EndpointSet {
  return {
    namespace: "default",
    serviceName: name,
    id: `${name}-1`,
    ports: [],
    endpoints: [{ address: ip(address), ready: true, serving: true, terminating: false }],
    ...(triggerTime !== undefined ? { triggerTime } : {}),
  };
}

Deno.test("sync loop: kube-proxy's metrics after a known sequence of syncs", async () => {
  const { store, clock, loop, metrics } = setup(1);
  // 1. Two services and a slice whose trigger time is from before the daemon started: not a
  //    latency (kube-proxy's trackerStartTime). The first apply fails, the retry is a full sync.
  store.setService(service("a"));
  store.setService(service("b"));
  store.setEndpointSet(slice("a", "198.18.0.10", 1_000_000 - 5000));
  loop.requestSync();
  await clock.advance(0);
  let text = metrics.render();
  assertEquals(sample(text, "kubeproxy_sync_proxy_rules_service_changes_total"), 2);
  assertEquals(sample(text, "kubeproxy_sync_proxy_rules_endpoint_changes_total"), 1);
  assertEquals(sample(text, "kubeproxy_sync_proxy_rules_service_changes_pending"), 0);
  assertEquals(
    sample(text, 'kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds{ip_family="IPv4"}'),
    1000,
  );
  assertEquals(
    sample(text, 'kubeproxy_sync_proxy_rules_last_timestamp_seconds{ip_family="IPv4"}'),
    null,
  );
  await clock.advance(100); // retry
  // 2. Endpoint changes triggered 250 ms and 900 ms before they arrive.
  await clock.advance(900);
  store.setEndpointSet(slice("a", "198.18.0.11", 1_001_000 - 250));
  store.setEndpointSet(slice("b", "198.18.0.12", 1_001_000 - 900));
  loop.requestSync();
  text = metrics.render();
  assertEquals(sample(text, "kubeproxy_sync_proxy_rules_endpoint_changes_pending"), 2, "pending");
  await clock.advance(5);
  // 3. A write that changes nothing: no sync, no latency.
  store.setEndpointSet(slice("b", "198.18.0.12", 1_001_000));
  loop.requestSync();
  await clock.advance(10);
  text = metrics.render();
  for (const ip_family of ["IPv4", "IPv6"]) {
    const f = `{ip_family="${ip_family}"}`;
    assertEquals(
      sample(text, `kubeproxy_sync_proxy_rules_duration_seconds_count${f}`),
      2,
      ip_family,
    );
    assertEquals(sample(text, `kubeproxy_sync_full_proxy_rules_duration_seconds_count${f}`), 1);
    assertEquals(sample(text, `kubeproxy_sync_partial_proxy_rules_duration_seconds_count${f}`), 1);
    assertEquals(sample(text, `kubeproxy_sync_proxy_rules_last_timestamp_seconds${f}`), 1001.005);
  }
  const prog = (le: string) =>
    sample(
      text,
      `kubeproxy_network_programming_duration_seconds_bucket{ip_family="IPv4",le="${le}"}`,
    );
  assertEquals([prog("0.25"), prog("0.5"), prog("1"), prog("2"), prog("+Inf")], [0, 1, 2, 2, 2]);
  assertEquals(sample(text, "kubeproxy_sync_proxy_rules_endpoint_changes_total"), 4);
  assertEquals(sample(text, "kubeproxy_sync_proxy_rules_endpoint_changes_pending"), 0);
  assertEquals(sample(text, "kubeproxy_sync_proxy_rules_service_changes_total"), 2);
});

Deno.test("sync loop: /healthz follows pending changes and successful syncs", async () => {
  const health = new ProxierHealth(2000);
  const { store, clock, loop } = setup(100, health);
  store.setService(service("a"));
  loop.requestSync();
  await clock.advance(0);
  assertEquals(health.isHealthy(clock.wallNow()), true, "pending, not late");
  await clock.advance(2000);
  assertEquals(health.isHealthy(clock.wallNow()), false, "late: every retry failed");
});
