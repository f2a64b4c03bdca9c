/**
 * Active health checks for standalone mode: probes every endpoint of every service that asks for
 * it, and marks endpoints that fail not ready (and not serving) in the endpoint sets the
 * standalone source puts in the model. The change then flows to nft and DNS like any other.
 *
 * Wiring (sources/standalone), on every reload: `checker.update(services, declaredSets)` (starts
 * and stops probes), then `store.replaceAll({ services, endpointSets: checker.apply(declaredSets) })`.
 * When a verdict flips, `onChange()` runs: the owner calls `apply` again on the same declared sets.
 * `apply` returns the same objects when nothing changed, so the store sees a minimal diff.
 *
 * Scheduling: each endpoint has its own timer; the first probe runs after a short stagger (a hash
 * of the endpoint, under one interval and at most 1 s) so a reload does not probe everything at
 * once; later probes start `interval` after the previous one started (or right after it, when a
 * probe took longer). A probe never overlaps itself. Probes run from this process's network
 * namespace: the node's.
 * @module
 */

import { fnv1a32 } from "../model/hash.ts";

import { buildServiceEntry } from "../model/snapshot.ts";
import type { Endpoint, EndpointSet, Service } from "../model/types.ts";
import { serviceKey } from "../model/types.ts";
import { compareText } from "../model/text.ts";
import { type Logger, silentLogger } from "../observe/log.ts";
import { type Counter, type Gauge, type Histogram, MetricsRegistry } from "../observe/metrics.ts";
import { type HealthCheckConfig, parseHealthCheck } from "./config.ts";
import { type ProbeFn, type ProbeOutcome, realProbe } from "./probe.ts";
import {
  type EndpointHealth,
  INITIAL_HEALTH,
  isOut,
  recordProbe,
  type Verdict,
} from "./verdict.ts";
import { METRICS } from "../observe/metrics_catalogue.ts";

/** Time and timers, injected so tests can drive the checker without waiting. */
export interface CheckerClock {
  /** Monotonic milliseconds. */
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** The process's real clock and timers. */
export const systemClock: CheckerClock = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as number),
};

/** Options of {@link HealthChecker}. */
export interface HealthCheckerOptions {
  /** Called (synchronously, after the verdict is recorded) when an endpoint goes out or back in. */
  readonly onChange: () => void;
  /** Defaults to {@link realProbe} (TCP connect / HTTP GET). */
  readonly probe?: ProbeFn;
  readonly logger?: Logger;
  readonly metrics?: MetricsRegistry;
  readonly clock?: CheckerClock;
}

/** One probed endpoint, as {@link HealthChecker.status} reports it. */
export interface EndpointStatus {
  readonly service: string;
  readonly address: string;
  readonly port: number;
  /** `tcp` or `http:/path`. */
  readonly check: string;
  readonly verdict: Verdict;
  /** The last probe's detail ("" before the first probe). */
  readonly detail: string;
}

interface Target {
  readonly id: string;
  readonly service: string;
  readonly address: string;
  readonly port: number;
  config: HealthCheckConfig;
  health: EndpointHealth;
  detail: string;
  timer: unknown;
  controller: AbortController | null;
  /** The probe call in flight (settles once the probe itself finished). */
  pending: Promise<unknown> | null;
  removed: boolean;
}

function checkName(c: HealthCheckConfig): string {
  return c.kind === "tcp" ? "tcp" : `http:${c.path}`;
}

function endpointText(address: string, port: number): string {
  return address.includes(":") ? `[${address}]:${port}` : `${address}:${port}`;
}

const VERDICTS: readonly Verdict[] = ["unknown", "healthy", "unhealthy"];

/**
 * Probes endpoints of annotated services and overrides their readiness.
 *
 * @example
 * ```ts
 * const checker = new HealthChecker({ onChange: () => source.reapply(), logger, metrics });
 * const problems = checker.update(services, declaredSets); // on every reload
 * store.replaceAll({ services, endpointSets: checker.apply(declaredSets) });
 * // at shutdown
 * await checker.stop();
 * ```
 */
export class HealthChecker {
  readonly #onChange: () => void;
  readonly #probe: ProbeFn;
  readonly #log: Logger;
  readonly #clock: CheckerClock;
  readonly #probes: Counter;
  readonly #endpoints: Gauge;
  readonly #duration: Histogram;
  readonly #configErrors: Gauge;
  /** Service key -> its service and check. */
  #configs = new Map<string, { service: Service; config: HealthCheckConfig }>();
  #targets = new Map<string, Target>();
  #byService = new Map<string, Set<Target>>();
  /** Per endpoint set: canonical address -> target id (built by update, used by apply). */
  #setTargets = new WeakMap<EndpointSet, Map<string, string>>();
  #applied = new WeakMap<EndpointSet, { sig: string; out: EndpointSet }>();
  #reported = new Set<string>();
  #stopped = false;

  constructor(options: HealthCheckerOptions) {
    this.#onChange = options.onChange;
    this.#probe = options.probe ?? realProbe;
    this.#log = (options.logger ?? silentLogger).child("health");
    this.#clock = options.clock ?? systemClock;
    const m = options.metrics ?? new MetricsRegistry();
    this.#probes = m.of(METRICS.healthProbes);
    this.#endpoints = m.of(METRICS.healthEndpoints);
    this.#duration = m.of(METRICS.healthProbeDuration);
    this.#configErrors = m.of(METRICS.healthConfigErrors);
  }

  /**
   * Takes the full current services and their declared endpoint sets (before {@link apply}):
   * starts probing new endpoints, stops probing gone ones, and keeps the verdicts of the rest.
   * Returns every annotation problem (each already logged once, when it first appears). A service
   * whose annotations turn invalid keeps its previous check, if it had one.
   */
  update(services: readonly Service[], endpointSets: readonly EndpointSet[]): readonly string[] {
    if (this.#stopped) return [];
    const problems: string[] = [];
    const configs = new Map<string, { service: Service; config: HealthCheckConfig }>();
    for (const service of services) {
      const key = serviceKey(service.namespace, service.name);
      const parsed = parseHealthCheck(service);
      problems.push(...parsed.errors);
      if (parsed.config) configs.set(key, { service, config: parsed.config });
      else if (parsed.errors.length > 0) {
        const before = this.#configs.get(key);
        if (before) configs.set(key, { service, config: before.config });
      }
    }
    this.#logProblems(problems, configs);
    this.#configs = configs;

    const desired = new Map<
      string,
      { service: string; address: string; port: number; config: HealthCheckConfig }
    >();
    const setTargets = new WeakMap<EndpointSet, Map<string, string>>();
    for (const set of endpointSets) {
      const key = serviceKey(set.namespace, set.serviceName);
      const c = configs.get(key);
      if (!c) continue;
      const map = new Map<string, string>();
      for (const [address, port] of this.#probePorts(c.service, c.config, set)) {
        const id = `${key}|${address}|${port}|${checkName(c.config)}`;
        map.set(address, id);
        if (!desired.has(id)) desired.set(id, { service: key, address, port, config: c.config });
      }
      setTargets.set(set, map);
    }
    this.#setTargets = setTargets;

    const touched = new Set<string>();
    for (const [id, t] of this.#targets) {
      if (desired.has(id)) continue;
      this.#remove(t);
      touched.add(t.service);
    }
    for (const [id, d] of desired) {
      const existing = this.#targets.get(id);
      if (existing) {
        const intervalChanged = existing.config.intervalMs !== d.config.intervalMs;
        existing.config = d.config;
        if (intervalChanged && existing.timer !== null) {
          this.#clock.clearTimeout(existing.timer);
          this.#schedule(existing, d.config.intervalMs);
        }
        continue;
      }
      const t: Target = {
        id,
        service: d.service,
        address: d.address,
        port: d.port,
        config: d.config,
        health: INITIAL_HEALTH,
        detail: "",
        timer: null,
        controller: null,
        pending: null,
        removed: false,
      };
      this.#targets.set(id, t);
      let group = this.#byService.get(t.service);
      if (!group) this.#byService.set(t.service, group = new Set());
      group.add(t);
      touched.add(t.service);
      this.#schedule(t, fnv1a32(id) % Math.min(d.config.intervalMs, 1000));
    }
    for (const key of touched) this.#updateGauge(key);
    return problems;
  }

  /**
   * The endpoint sets with unhealthy endpoints marked not ready and not serving. Sets with nothing
   * to change are returned as they are (same object), and a changed set is the same object as
   * long as its verdicts stay the same. Endpoints not yet judged keep their declared state.
   */
  apply(endpointSets: readonly EndpointSet[]): EndpointSet[] {
    return endpointSets.map((set) => {
      let map = this.#setTargets.get(set);
      if (!map) {
        const key = serviceKey(set.namespace, set.serviceName);
        const c = this.#configs.get(key);
        if (!c) return set;
        map = new Map();
        for (const [address, port] of this.#probePorts(c.service, c.config, set)) {
          map.set(address, `${key}|${address}|${port}|${checkName(c.config)}`);
        }
        this.#setTargets.set(set, map);
      }
      const out = new Set<string>();
      for (const [address, id] of map) {
        const t = this.#targets.get(id);
        if (t && isOut(t.health.verdict)) out.add(address);
      }
      if (out.size === 0) return set;
      const sig = [...out].sort().join(",");
      const cached = this.#applied.get(set);
      if (cached?.sig === sig) return cached.out;
      const endpoints = set.endpoints.map((ep): Endpoint =>
        out.has(ep.address) ? { ...ep, ready: false, serving: false } : ep
      );
      const result: EndpointSet = { ...set, endpoints };
      this.#applied.set(set, { sig, out: result });
      return result;
    });
  }

  /** Every probed endpoint with its verdict, sorted by service, address and port. */
  status(): EndpointStatus[] {
    return [...this.#targets.values()]
      .map((t) => ({
        service: t.service,
        address: t.address,
        port: t.port,
        check: checkName(t.config),
        verdict: t.health.verdict,
        detail: t.detail,
      }))
      .sort((a, b) =>
        compareText(a.service, b.service) || compareText(a.address, b.address) || a.port - b.port
      );
  }

  /**
   * Stops every probe and timer; resolves once in-flight probes have settled (at most 1 s for a
   * probe that ignores its abort signal). Idempotent.
   */
  async stop(): Promise<void> {
    this.#stopped = true;
    const pending: Promise<unknown>[] = [];
    for (const t of this.#targets.values()) {
      this.#remove(t);
      if (t.pending) pending.push(t.pending);
    }
    this.#targets.clear();
    // Aborted probes settle at once; one that ignores its signal is not waited for long.
    let grace: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      Promise.allSettled(pending),
      new Promise((resolve) => grace = setTimeout(resolve, 1000)),
    ]);
    clearTimeout(grace);
  }

  /** Canonical address -> probed port, for the endpoints of one set worth probing. */
  #probePorts(service: Service, config: HealthCheckConfig, set: EndpointSet): Map<string, number> {
    const out = new Map<string, number>();
    const candidates = set.endpoints.filter((ep) => ep.ready || ep.serving);
    if (candidates.length === 0) return out;
    if (config.port !== undefined) {
      for (const ep of candidates) out.set(ep.address, config.port);
      return out;
    }
    if (service.ports.length === 0) return out;
    // The snapshot's own resolution of the first port's target port, named or numbered.
    const resolved = buildServiceEntry({ ...service, ports: [service.ports[0]] }, [{
      ...set,
      endpoints: candidates,
    }]);
    for (const b of resolved.ports[0].backends) if (!out.has(b.address)) out.set(b.address, b.port);
    return out;
  }

  #schedule(t: Target, delay: number): void {
    if (t.removed || this.#stopped) return;
    t.timer = this.#clock.setTimeout(() => {
      t.timer = null;
      void this.#run(t);
    }, Math.max(0, delay));
  }

  async #run(t: Target): Promise<void> {
    if (t.removed || this.#stopped) return;
    const config = t.config;
    const start = this.#clock.now();
    const controller = new AbortController();
    t.controller = controller;
    const timeout = this.#clock.setTimeout(() => controller.abort(), config.timeoutMs);
    const aborted = new Promise<ProbeOutcome>((resolve) =>
      controller.signal.addEventListener(
        "abort",
        () => resolve({ ok: false, detail: "timed out" }),
        { once: true },
      )
    );
    let outcome: ProbeOutcome;
    try {
      const probe = this.#probe({ address: t.address, port: t.port }, config, controller.signal);
      t.pending = probe.catch(() => {});
      // A probe that ignores the signal cannot stall the endpoint's schedule.
      outcome = await Promise.race([probe, aborted]);
    } catch (e) {
      outcome = { ok: false, detail: e instanceof Error ? e.message : String(e) };
    } finally {
      this.#clock.clearTimeout(timeout);
      t.controller = null;
    }
    if (t.removed || this.#stopped) return;
    const elapsed = this.#clock.now() - start;
    this.#record(t, outcome, elapsed);
    this.#schedule(t, start + t.config.intervalMs - this.#clock.now());
  }

  #record(t: Target, outcome: ProbeOutcome, elapsedMs: number): void {
    this.#probes.inc({ service: t.service, result: outcome.ok ? "success" : "failure" });
    this.#duration.observe(elapsedMs / 1000, { kind: t.config.kind });
    const before = t.health;
    t.health = recordProbe(before, outcome.ok, t.config);
    t.detail = outcome.detail;
    if (before.verdict === t.health.verdict) return;
    const fields = {
      service: t.service,
      endpoint: endpointText(t.address, t.port),
      check: checkName(t.config),
      detail: outcome.detail,
    };
    if (t.health.verdict === "unhealthy") this.#log.warn("endpoint unhealthy", fields);
    else this.#log.info(`endpoint ${t.health.verdict}`, fields);
    this.#updateGauge(t.service);
    if (isOut(before.verdict) !== isOut(t.health.verdict)) {
      try {
        this.#onChange();
      } catch (e) {
        this.#log.error("onChange callback failed", { error: e });
      }
    }
  }

  #remove(t: Target): void {
    t.removed = true;
    if (t.timer !== null) this.#clock.clearTimeout(t.timer);
    t.timer = null;
    t.controller?.abort();
    this.#targets.delete(t.id);
    const group = this.#byService.get(t.service);
    group?.delete(t);
    if (group?.size === 0) this.#byService.delete(t.service);
  }

  #updateGauge(service: string): void {
    const counts: Record<Verdict, number> = { unknown: 0, healthy: 0, unhealthy: 0 };
    for (const t of this.#byService.get(service) ?? []) counts[t.health.verdict]++;
    for (const verdict of VERDICTS) this.#endpoints.set(counts[verdict], { service, verdict });
  }

  #logProblems(
    problems: readonly string[],
    configs: ReadonlyMap<string, unknown>,
  ): void {
    const now = new Set(problems);
    for (const p of problems) {
      if (this.#reported.has(p)) continue;
      const key = p.slice(0, p.indexOf(":"));
      const kept = configs.has(key) && this.#configs.has(key);
      this.#log.warn(
        kept ? `${p}; keeping the previous health check` : `${p}; endpoints are not health-checked`,
        { service: key },
      );
    }
    this.#reported = now;
    this.#configErrors.set(new Set(problems.map((p) => p.slice(0, p.indexOf(":")))).size);
  }
}
