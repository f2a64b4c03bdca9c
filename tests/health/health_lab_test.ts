// Active health checks end to end: real pod servers in network namespaces, the real checker with
// its real TCP and HTTP probes running inside the node namespace, a pod's server killed and
// restarted.
import { ok as assert } from "node:assert/strict";
import { Lab, labTest } from "../lab/lab.ts";
import type { EndpointSet, Service } from "../../src/model/types.ts";
import { testService } from "../support/test_service.ts";
import { ip } from "../support/model_values.ts";

const CHECKER_MAIN = new URL("./checker_main.ts", import.meta.url).pathname;

const INTERVAL_MS = 500;
const TIMEOUT_MS = 300;
const HEALTHY_THRESHOLD = 2;
const UNHEALTHY_THRESHOLD = 2;
/** Room for process scheduling and line delivery on a busy 2-core machine. */
const SLACK_MS = 1000;

function svc(name: string, check: string, families: (4 | 6)[]): Service {
  return testService(`default/${name}`, {
    ports: [{ name: "http", protocol: "TCP", port: 80, targetPort: 8080 }],
    ipFamilies: families,
    annotations: {
      "svcgate.io/health-check": check,
      "svcgate.io/health-check-interval": `${INTERVAL_MS}ms`,
      "svcgate.io/health-check-timeout": `${TIMEOUT_MS}ms`,
      "svcgate.io/health-check-healthy-threshold": String(HEALTHY_THRESHOLD),
      "svcgate.io/health-check-unhealthy-threshold": String(UNHEALTHY_THRESHOLD),
    },
  });
}

function endpoints(service: string, addresses: string[]): EndpointSet {
  return {
    namespace: "default",
    serviceName: service,
    id: `${service}-1`,
    ports: [{ name: "http", protocol: "TCP", port: 8080 }],
    endpoints: addresses.map((address) => ({
      address: ip(address),
      ready: true,
      serving: true,
      terminating: false,
    })),
  };
}

interface Event {
  event: "verdicts" | "change";
  at: number;
  verdicts?: Record<string, string>;
  notReady?: Record<string, string[]>;
}

/** Reads the checker's JSON lines and waits for conditions on them. */
class Events {
  readonly all: Event[] = [];
  #waiters = new Set<() => void>();
  #closed = false;

  constructor(stdout: ReadableStream<Uint8Array>) {
    (async () => {
      let buf = "";
      for await (const chunk of stdout.pipeThrough(new TextDecoderStream())) {
        buf += chunk;
        let nl;
        while ((nl = buf.indexOf("\n")) >= 0) {
          const line = buf.slice(0, nl).trim();
          buf = buf.slice(nl + 1);
          if (line) this.all.push(JSON.parse(line));
          for (const w of this.#waiters) w();
        }
      }
    })().finally(() => {
      this.#closed = true;
      for (const w of this.#waiters) w();
    });
  }

  /** The first event after index `from` that satisfies `pred`, or an error naming `what`. */
  async waitFor(
    from: number,
    pred: (e: Event) => boolean,
    ms: number,
    what: string,
  ): Promise<Event> {
    const deadline = Date.now() + ms;
    for (;;) {
      const found = this.all.slice(from).find(pred);
      if (found) return found;
      if (this.#closed) throw new Error(`checker exited while waiting for ${what}`);
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(
          `Timed out after ${ms} ms waiting for ${what}; last events: ${
            JSON.stringify(this.all.slice(-3))
          }`,
        );
      }
      await new Promise<void>((resolve) => {
        const wake = () => {
          clearTimeout(timer);
          this.#waiters.delete(wake);
          resolve();
        };
        const timer = setTimeout(wake, left);
        this.#waiters.add(wake);
      });
    }
  }
}

labTest(
  "health checks: a killed pod server goes out within interval x threshold and comes back",
  async () => {
    const lab = await Lab.create({ pods: 3 });
    try {
      await lab.startPodServers();
      const v4 = lab.pods.map((p) => p.ip);
      const v6 = lab.pods.map((p) => p.ip6);
      const input = {
        services: [
          svc("web-tcp", "tcp", [4]),
          svc("web-http", "http:/healthz", [4]),
          svc("web-v6", "tcp", [6]),
        ],
        endpointSets: [
          endpoints("web-tcp", v4),
          endpoints("web-http", v4),
          endpoints("web-v6", v6),
        ],
      };
      const child = lab.spawn(lab.node.ns, [
        Deno.execPath(),
        "run",
        "-A",
        CHECKER_MAIN,
        JSON.stringify(input),
      ], { stdout: "piped", stderr: "inherit" });
      const events = new Events(child.stdout);
      const all = (verdict: string) => (e: Event) =>
        e.event === "verdicts" && Object.keys(e.verdicts!).length === 9 &&
        Object.values(e.verdicts!).every((v) => v === verdict);

      // 1. Every endpoint, over TCP and HTTP, IPv4 and IPv6, is found healthy.
      await events.waitFor(0, all("healthy"), 15_000, "all 9 endpoints healthy");

      // 2. Pod 1's server is killed: its three endpoints go out, within interval x threshold.
      const killedAt = Date.now();
      await lab.stopPodServer(1);
      const mark = events.all.length;
      const out = await events.waitFor(
        mark,
        (e) => {
          if (e.event !== "change") return false;
          const nr = e.notReady!;
          return nr["default/web-tcp"]?.join() === v4[1] &&
            nr["default/web-http"]?.join() === v4[1] &&
            nr["default/web-v6"]?.join() === v6[1];
        },
        15_000,
        "pod-1 out of all three services",
      );
      const outMs = out.at - killedAt;
      const outBound = INTERVAL_MS * UNHEALTHY_THRESHOLD + SLACK_MS;
      assert(outMs <= outBound, `pod-1 went out after ${outMs} ms, more than ${outBound} ms`);
      // The poller reports the verdicts a moment later: pod 1 unhealthy everywhere, the rest healthy.
      await events.waitFor(
        mark,
        (e) => {
          if (e.event !== "verdicts") return false;
          return Object.entries(e.verdicts!).every(([k, v]) =>
            v === (k.includes(`|${v4[1]}|`) || k.includes(`|${v6[1]}|`) ? "unhealthy" : "healthy")
          );
        },
        5000,
        "verdicts: pod-1 unhealthy, the others healthy",
      );

      // 3. The server is back: the endpoints come back in, within interval x healthy threshold.
      const mark2 = events.all.length;
      await lab.startPodServer(1);
      const listeningAt = Date.now(); // startPodServer returns once the server listens
      const back = await events.waitFor(
        mark2,
        (e) => e.event === "change" && Object.keys(e.notReady!).length === 0,
        15_000,
        "pod-1 back in every service",
      );
      const backMs = back.at - listeningAt;
      const backBound = INTERVAL_MS * HEALTHY_THRESHOLD + SLACK_MS;
      assert(backMs <= backBound, `pod-1 came back after ${backMs} ms, more than ${backBound} ms`);
      await events.waitFor(mark2, all("healthy"), 5000, "all 9 endpoints healthy again");
      console.log(`  measured: out after ${outMs} ms (bound ${outBound}), back after ${backMs} ms`);
    } finally {
      await lab.destroy();
    }
  },
);
