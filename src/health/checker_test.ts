import {
  deepStrictEqual as assertEquals,
  ok as assert,
  strictEqual as assertStrictEquals,
} from "node:assert/strict";
import { testService } from "../../tests/support/test_service.ts";
import type { EndpointSet, Service } from "../model/types.ts";
import { MetricsRegistry } from "../observe/metrics.ts";
import { type CheckerClock, HealthChecker } from "./checker.ts";
import type { HealthCheckConfig } from "./config.ts";
import type { ProbeOutcome, ProbeTarget } from "./probe.ts";
import { METRICS } from "../observe/metrics_catalogue.ts";
import { ip } from "../../tests/support/model_values.ts";

/** Timers that fire only when the test advances time. */
class FakeClock implements CheckerClock {
  #t = 0;
  #next = 1;
  #timers = new Map<number, { at: number; fn: () => void }>();
  now(): number {
    return this.#t;
  }
  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.#next++;
    this.#timers.set(id, { at: this.#t + ms, fn });
    return id;
  }
  clearTimeout(handle: unknown): void {
    this.#timers.delete(handle as number);
  }
  get pending(): number {
    return this.#timers.size;
  }
  /** Moves time forward, firing due timers in order and letting probe promises settle. */
  async advance(ms: number): Promise<void> {
    const end = this.#t + ms;
    for (;;) {
      let due: [number, { at: number; fn: () => void }] | null = null;
      for (const e of this.#timers) if (e[1].at <= end && (!due || e[1].at < due[1].at)) due = e;
      if (!due) break;
      this.#t = due[1].at;
      this.#timers.delete(due[0]);
      due[1].fn();
      await settle();
    }
    this.#t = end;
    await settle();
  }
}

async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await Promise.resolve();
  await new Promise((r) => setTimeout(r, 0));
}

/** A probe whose answer per address the test sets; records every call. */
class FakeProbe {
  up = new Map<string, boolean>();
  hang = new Set<string>();
  throwFor = new Set<string>();
  calls: string[] = [];
  fn = (target: ProbeTarget, check: HealthCheckConfig, signal: AbortSignal) => {
    this.calls.push(`${target.address}:${target.port} ${check.kind}${check.path}`);
    if (this.throwFor.has(target.address)) return Promise.reject(new Error("probe exploded"));
    if (this.hang.has(target.address)) return new Promise<ProbeOutcome>(() => {}); // ignores signal
    void signal;
    const ok = this.up.get(target.address) ?? true;
    return Promise.resolve({ ok, detail: ok ? "connected" : "Connection refused" });
  };
}

const HC = "svcgate.io/health-check";

function svc(
  name: string,
  annotations: Record<string, string>,
  targetPort: number | string = 8080,
): Service {
  return testService(`default/${name}`, {
    clusterIPs: [ip("198.19.0.10")],
    ports: [{ name: "http", protocol: "TCP", port: 80, targetPort }],
    ipFamilies: [4],
    annotations,
  });
}

function slice(service: string, id: string, addresses: string[], ports = [{
  name: "http",
  protocol: "TCP" as const,
  port: 8080,
}]): EndpointSet {
  return {
    namespace: "default",
    serviceName: service,
    id,
    ports,
    endpoints: addresses.map((address) => ({
      address: ip(address),
      ready: true,
      serving: true,
      terminating: false,
    })),
  };
}

function readyOf(sets: EndpointSet[]): string[] {
  return sets.flatMap((s) =>
    s.endpoints.map((e) => `${e.address}=${e.ready ? "R" : "-"}${e.serving ? "S" : "-"}`)
  );
}

const CHECKED = { [HC]: "tcp", [`${HC}-interval`]: "1s", [`${HC}-timeout`]: "200ms" };
const PODS = ["198.18.0.10", "198.18.0.11", "198.18.0.12"];

Deno.test("HealthChecker: an endpoint goes out after the unhealthy threshold and back after the healthy one", async () => {
  const clock = new FakeClock();
  const probe = new FakeProbe();
  const metrics = new MetricsRegistry();
  let changes = 0;
  const checker = new HealthChecker({ onChange: () => changes++, probe: probe.fn, clock, metrics });
  const services = [svc("web", CHECKED)];
  const sets = [slice("web", "web-1", PODS)];
  assertEquals(checker.update(services, sets), []);

  // Before any verdict: as declared, same objects.
  assertStrictEquals(checker.apply(sets)[0], sets[0]);
  await clock.advance(1000); // first probes (staggered within the first second)
  assertEquals(probe.calls.length, 3);
  await clock.advance(1000);
  assertEquals(checker.status().map((s) => s.verdict), ["healthy", "healthy", "healthy"]);
  assertEquals(changes, 0); // unknown -> healthy changes nothing anyone sees
  assertStrictEquals(checker.apply(sets)[0], sets[0]);

  probe.up.set("198.18.0.11", false);
  await clock.advance(2000); // two failures: not yet
  assertEquals(changes, 0);
  assertStrictEquals(checker.apply(sets)[0], sets[0]);
  await clock.advance(1000); // third failure
  assertEquals(changes, 1);
  const out = checker.apply(sets);
  assertEquals(readyOf(out), ["198.18.0.10=RS", "198.18.0.11=--", "198.18.0.12=RS"]);
  // Identity is stable while the verdicts are.
  assertStrictEquals(checker.apply(sets)[0], out[0]);
  assertEquals(
    metrics.of(METRICS.healthEndpoints).get({
      service: "default/web",
      verdict: "unhealthy",
    }),
    1,
  );
  assertEquals(checker.status()[1].detail, "Connection refused");

  probe.up.set("198.18.0.11", true);
  await clock.advance(1000); // one success: still out
  assertEquals(changes, 1);
  await clock.advance(1000);
  assertEquals(changes, 2);
  assertStrictEquals(checker.apply(sets)[0], sets[0]);
  assertEquals(
    metrics.of(METRICS.healthProbes).get({
      service: "default/web",
      result: "failure",
    }),
    3,
  );
  await checker.stop();
  assertEquals(clock.pending, 0);
});

Deno.test("HealthChecker: a dead endpoint at startup counts as declared until the threshold", async () => {
  const clock = new FakeClock();
  const probe = new FakeProbe();
  probe.up.set("198.18.0.10", false);
  let changes = 0;
  const checker = new HealthChecker({ onChange: () => changes++, probe: probe.fn, clock });
  const sets = [slice("web", "web-1", PODS)];
  checker.update([svc("web", CHECKED)], sets);
  await clock.advance(1000);
  await clock.advance(1000);
  assertEquals(readyOf(checker.apply(sets))[0], "198.18.0.10=RS");
  await clock.advance(1000);
  assertEquals(changes, 1);
  assertEquals(readyOf(checker.apply(sets))[0], "198.18.0.10=--");
  await checker.stop();
});

Deno.test("HealthChecker: a probe that hangs times out; one that throws fails; neither stops the schedule", async () => {
  const clock = new FakeClock();
  const probe = new FakeProbe();
  probe.hang.add("198.18.0.10");
  probe.throwFor.add("198.18.0.11");
  let changes = 0;
  const checker = new HealthChecker({ onChange: () => changes++, probe: probe.fn, clock });
  const sets = [slice("web", "web-1", PODS)];
  checker.update([svc("web", CHECKED)], sets);
  await clock.advance(3000);
  const status = checker.status();
  assertEquals(status.map((s) => [s.address, s.verdict, s.detail]), [
    ["198.18.0.10", "unhealthy", "timed out"],
    ["198.18.0.11", "unhealthy", "probe exploded"],
    ["198.18.0.12", "healthy", "connected"],
  ]);
  assertEquals(changes, 2);
  await checker.stop();
});

Deno.test("HealthChecker: probes the resolved target port (named or numbered) or the annotated port", async () => {
  const clock = new FakeClock();
  const probe = new FakeProbe();
  const checker = new HealthChecker({ onChange: () => {}, probe: probe.fn, clock });
  const named = svc("named", { [HC]: "http:/healthz" }, "web");
  const pinned = svc("pinned", { [HC]: "tcp", [`${HC}-port`]: "9000" });
  checker.update([named, pinned], [
    // Named target port "web": 8081 in one slice, 8082 in another.
    slice("named", "a", ["198.18.0.10"], [{ name: "http", protocol: "TCP", port: 8081 }]),
    slice("named", "b", ["198.18.0.11"], [{ name: "http", protocol: "TCP", port: 8082 }]),
    slice("pinned", "c", ["198.18.0.12"]),
  ]);
  await clock.advance(1000);
  assertEquals(probe.calls.sort(), [
    "198.18.0.10:8081 http/healthz",
    "198.18.0.11:8082 http/healthz",
    "198.18.0.12:9000 tcp",
  ]);
  await checker.stop();
});

Deno.test("HealthChecker: only annotated services, and only endpoints declared ready or serving, are probed", async () => {
  const clock = new FakeClock();
  const probe = new FakeProbe();
  const checker = new HealthChecker({ onChange: () => {}, probe: probe.fn, clock });
  const declared: EndpointSet = {
    ...slice("web", "w", PODS),
    endpoints: [
      { address: ip("198.18.0.10"), ready: true, serving: true, terminating: false },
      { address: ip("198.18.0.11"), ready: false, serving: false, terminating: false },
      { address: ip("198.18.0.12"), ready: false, serving: true, terminating: true },
    ],
  };
  const plain = slice("plain", "p", ["198.18.0.20"]);
  checker.update([svc("web", CHECKED), svc("plain", {})], [declared, plain]);
  await clock.advance(1000);
  assertEquals(probe.calls.sort(), ["198.18.0.10:8080 tcp", "198.18.0.12:8080 tcp"]);
  const out = checker.apply([declared, plain]);
  assertStrictEquals(out[0], declared);
  assertStrictEquals(out[1], plain);
  await checker.stop();
});

Deno.test("HealthChecker: reloads keep verdicts, stop probing removed endpoints and services", async () => {
  const clock = new FakeClock();
  const probe = new FakeProbe();
  probe.up.set("198.18.0.11", false);
  const checker = new HealthChecker({ onChange: () => {}, probe: probe.fn, clock });
  const web = svc("web", CHECKED);
  checker.update([web], [slice("web", "w", PODS)]);
  await clock.advance(3000);
  assertEquals(checker.status().map((s) => s.verdict), ["healthy", "unhealthy", "healthy"]);

  // Reload with new objects (as a re-read of the files gives): verdicts stay.
  const sets2 = [slice("web", "w", PODS)];
  checker.update([svc("web", CHECKED)], sets2);
  assertEquals(readyOf(checker.apply(sets2)), [
    "198.18.0.10=RS",
    "198.18.0.11=--",
    "198.18.0.12=RS",
  ]);

  // One endpoint removed: no more probes to it.
  const sets3 = [slice("web", "w", ["198.18.0.10", "198.18.0.11"])];
  checker.update([web], sets3);
  probe.calls = [];
  await clock.advance(2000);
  assert(!probe.calls.some((c) => c.startsWith("198.18.0.12")), probe.calls.join());

  // Annotation removed: nothing probed, sets pass through.
  checker.update([svc("web", {})], sets3);
  probe.calls = [];
  await clock.advance(5000);
  assertEquals(probe.calls, []);
  assertStrictEquals(checker.apply(sets3)[0], sets3[0]);
  assertEquals(clock.pending, 0);
  await checker.stop();
});

Deno.test("HealthChecker: an invalid annotation change keeps the previous check and is reported", async () => {
  const clock = new FakeClock();
  const probe = new FakeProbe();
  const lines: string[] = [];
  const logger = {
    debug() {},
    info() {},
    warn: (m: string) => lines.push(m),
    error() {},
    child() {
      return logger;
    },
  };
  const checker = new HealthChecker({ onChange: () => {}, probe: probe.fn, clock, logger });
  const sets = [slice("web", "w", ["198.18.0.10"])];
  checker.update([svc("web", CHECKED)], sets);
  const bad = svc("web", { ...CHECKED, [`${HC}-interval`]: "5 sec" });
  const problems = checker.update([bad], sets);
  assertEquals(problems, [`default/web: annotation ${HC}-interval "5 sec" is not a duration`]);
  checker.update([bad], sets); // same problem again: logged once
  assertEquals(lines, [
    `default/web: annotation ${HC}-interval "5 sec" is not a duration; keeping the previous health check`,
  ]);
  probe.calls = [];
  await clock.advance(2000);
  assertEquals(probe.calls, ["198.18.0.10:8080 tcp", "198.18.0.10:8080 tcp"]); // still every 1s
  await checker.stop();
});

Deno.test("HealthChecker: probes of one endpoint never overlap, even when each one runs to its timeout", async () => {
  const clock = new FakeClock();
  let inFlight = 0, maxInFlight = 0, started = 0;
  const checker = new HealthChecker({
    onChange: () => {},
    clock,
    // Never answers; settles only when the checker aborts it.
    probe: (_t, _c, signal) => {
      inFlight++;
      started++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      return new Promise<ProbeOutcome>((resolve) =>
        signal.addEventListener("abort", () => {
          inFlight--;
          resolve({ ok: false, detail: "aborted" });
        })
      );
    },
  });
  // Timeout equal to the interval: each probe takes its whole interval.
  const sets = [slice("web", "w", ["198.18.0.10"])];
  checker.update(
    [svc("web", { [HC]: "tcp", [`${HC}-interval`]: "1s", [`${HC}-timeout`]: "1s" })],
    sets,
  );
  await clock.advance(5500);
  assertEquals(maxInFlight, 1);
  assert(started >= 4 && started <= 6, `started ${started}`);
  assertEquals(checker.status()[0].detail, "timed out");
  await checker.stop();
  assertEquals(inFlight, 0);
});

Deno.test("HealthChecker: an onChange callback that throws is logged, not fatal", async () => {
  const clock = new FakeClock();
  const probe = new FakeProbe();
  probe.up.set("198.18.0.10", false);
  const checker = new HealthChecker({
    onChange: () => {
      throw new Error("daemon busy");
    },
    probe: probe.fn,
    clock,
  });
  const sets = [slice("web", "w", ["198.18.0.10"])];
  checker.update([svc("web", CHECKED)], sets);
  await clock.advance(5000);
  assertEquals(readyOf(checker.apply(sets)), ["198.18.0.10=--"]);
  await checker.stop();
});
