import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { ModelStore } from "../model/store.ts";
import type { Snapshot } from "../model/snapshot.ts";
import type { Service } from "../model/types.ts";
import { testService } from "../../tests/support/test_service.ts";
import { silentLogger } from "../observe/log.ts";
import { MetricsRegistry } from "../observe/metrics.ts";
import { type LoopClock, SyncLoop } from "./sync_loop.ts";
import { ip } from "../../tests/support/model_values.ts";

function service(name: string): Service {
  return testService(`default/${name}`, { clusterIPs: [ip("198.19.0.10")], ipFamilies: [4] });
}

/** A manual clock: timers fire only when the test advances time. */
class ManualClock implements LoopClock {
  t = 0;
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

function setup(failures: number) {
  const store = new ModelStore();
  const clock = new ManualClock();
  const applied: number[] = [];
  const published: number[] = [];
  let toFail = failures;
  const loop = new SyncLoop({
    store,
    dataplane: {
      apply(s: Snapshot) {
        if (toFail-- > 0) return Promise.reject(new Error("nft: injected failure"));
        applied.push(s.version);
        return Promise.resolve();
      },
    },
    publish: (s) => published.push(s.version),
    minSyncPeriodMs: 5,
    log: silentLogger,
    metrics: new MetricsRegistry(),
    clock,
    initialBackoffMs: 100,
  });
  return { store, clock, loop, applied, published };
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
