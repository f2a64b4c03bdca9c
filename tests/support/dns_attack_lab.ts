/**
 * The stage of issue 20's attack test and benchmark: a lab node running the real daemon
 * (`svcgate run` on manifests, DNS on the node's bridge address), a "bad" client pod and a
 * "good" client pod; the bad client's attacks and the good client's probes run as processes in
 * their namespaces (tests/support/dns_attack_client.ts); the daemon's RSS is sampled meanwhile.
 *
 * Services: `web` (a ClusterIP, what the good client asks), `big`, headless with 200 endpoints
 * (the truncation and amplification case), and `mid`, headless with 20 (fits in 512 bytes).
 * @module
 */

import { Lab } from "../lab/lab.ts";
import { daemonMetric, type DaemonProcess, startDaemon } from "../daemon/harness.ts";
import type { PopulationReport } from "./dns_attack.ts";
import type { ProbeReport } from "./dns_probe.ts";

const CLIENT = new URL("./dns_attack_client.ts", import.meta.url).pathname;

/** The DNS address (the node's bridge address, reachable from every pod). */
export const ATTACK_DNS = "198.18.0.1";
export const WEB_NAME = "web.default.svc.cluster.local";
export const WEB_VIP = "198.19.0.10";
export const BIG_NAME = "big.default.svc.cluster.local";
export const BIG_ENDPOINTS = 200;
/** A headless service whose A answer (20 records) fits in 512 bytes: never truncated. */
export const MID_NAME = "mid.default.svc.cluster.local";
export const MID_ENDPOINTS = 20;

/** A headless Service and its Endpoints, as manifest YAML. */
export function headlessManifest(name: string, ips: readonly string[]): string {
  return `apiVersion: v1
kind: Service
metadata: { name: ${name}, namespace: default }
spec:
  clusterIP: None
  ports: [{ name: http, port: 80, targetPort: 8080 }]
---
apiVersion: v1
kind: Endpoints
metadata: { name: ${name}, namespace: default }
subsets:
  - addresses: [${ips.map((ip) => `{ ip: "${ip}" }`).join(", ")}]
    ports: [{ name: http, port: 8080 }]
`;
}

/** The ClusterIP service `web` (198.19.0.10), as manifest YAML. */
export const WEB_MANIFEST = `apiVersion: v1
kind: Service
metadata: { name: web, namespace: default }
spec:
  clusterIP: ${WEB_VIP}
  ports: [{ name: http, port: 80, targetPort: 8080 }]
`;

const MANIFEST = [
  WEB_MANIFEST,
  headlessManifest(
    "big",
    Array.from({ length: BIG_ENDPOINTS }, (_, i) => `198.18.${1 + (i >> 8)}.${i & 0xff}`),
  ),
  headlessManifest("mid", Array.from({ length: MID_ENDPOINTS }, (_, i) => `198.18.3.${i + 1}`)),
].join("---\n");

/** A running stage. Always call {@link AttackStage.destroy}. */
export interface AttackStage {
  readonly lab: Lab;
  readonly daemon: DaemonProcess;
  readonly pid: number;
  readonly bad: { readonly ns: string; readonly ip: string };
  readonly good: { readonly ns: string; readonly ip: string };
  destroy(): Promise<void>;
}

/** Builds the lab and starts the daemon with the default flags plus `extraArgs`. */
export async function startAttackStage(extraArgs: readonly string[] = []): Promise<AttackStage> {
  const lab = await Lab.create({ pods: 2 });
  const dir = await Deno.makeTempDir({ prefix: "svcgate-dns-attack-" });
  let daemon: DaemonProcess | null = null;
  const destroy = async () => {
    await lab.destroy();
    if (daemon) await daemon.child.status.catch(() => {});
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  try {
    await Deno.mkdir(`${dir}/manifests`);
    await Deno.writeTextFile(`${dir}/manifests/services.yaml`, MANIFEST);
    daemon = startDaemon(lab, {
      args: [
        ...["--service-cidr", "198.19.0.0/16", "--cluster-cidr", "198.18.0.0/16"],
        ...["--dns-bind-address", `${ATTACK_DNS}:53`, "--upstream", "127.0.0.1:1"],
        ...["--manifests", `${dir}/manifests`, "--state-dir", `${dir}/state`],
        ...extraArgs,
      ],
    });
    await daemon.waitReady();
    const [bad, good] = lab.pods;
    return { lab, daemon, pid: daemon.child.pid, bad, good, destroy };
  } catch (e) {
    await destroy();
    throw e;
  }
}

async function runClient<T>(lab: Lab, ns: string, args: string[]): Promise<T> {
  const child = lab.spawn(ns, [Deno.execPath(), "run", "-A", CLIENT, ...args], {
    stdout: "piped",
    stderr: "piped",
  });
  const out = await child.output();
  const text = new TextDecoder().decode(out.stdout).trim();
  if (out.code !== 0 || text === "") {
    throw new Error(
      `dns_attack_client ${args.join(" ")} in ${ns} exited ${out.code}: ${
        new TextDecoder().decode(out.stderr).slice(-1500)
      }`,
    );
  }
  return JSON.parse(text) as T;
}

/** Runs the bad client's populations (e.g. `{ keepalive: 300, idle: 2000 }`) for `seconds`. */
export function attack(
  stage: AttackStage,
  populations: Readonly<Record<string, number>>,
  seconds: number,
  extra: readonly string[] = [],
): Promise<PopulationReport[]> {
  const args = ["attack", "--server", ATTACK_DNS, "--port", "53", "--seconds", String(seconds)];
  for (const [kind, count] of Object.entries(populations)) args.push(`--${kind}`, String(count));
  return runClient(stage.lab, stage.bad.ns, [...args, "--question", WEB_NAME, ...extra]);
}

/** Runs the good client's probes for `seconds`: UDP at `udpQps`, and fresh TCP when `tcp`. */
export async function probe(
  stage: AttackStage,
  opts: { seconds: number; udpQps?: number; tcp?: boolean; timeoutMs?: number },
): Promise<{ udp?: ProbeReport; tcp?: ProbeReport }> {
  const args = [
    ...["probe", "--server", ATTACK_DNS, "--port", "53", "--seconds", String(opts.seconds)],
    ...["--name", WEB_NAME, "--udp-qps", String(opts.udpQps ?? 0)],
    ...(opts.tcp ? ["--tcp-pause-ms", "50"] : []),
    ...["--timeout-ms", String(opts.timeoutMs ?? 2000)],
  ];
  const reports = await runClient<ProbeReport[]>(stage.lab, stage.good.ns, args);
  return {
    udp: reports.find((r) => r.transport === "udp"),
    tcp: reports.find((r) => r.transport === "tcp"),
  };
}

/** Resident memory (VmRSS) and its peak (VmHWM) of a process, in MiB. */
export async function memoryMiB(pid: number): Promise<{ rss: number; hwm: number }> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  const kb = (field: string) =>
    Number(new RegExp(`^${field}:\\s+(\\d+) kB$`, "m").exec(status)?.[1]);
  return { rss: kb("VmRSS") / 1024, hwm: kb("VmHWM") / 1024 };
}

/** Samples a process's RSS every 100 ms until stopped; `stop()` returns the highest seen. */
export function rssSampler(pid: number): { stop(): Promise<number> } {
  let max = 0;
  let running = true;
  const loop = (async () => {
    while (running) {
      try {
        max = Math.max(max, (await memoryMiB(pid)).rss);
      } catch { /* exited */ }
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return max;
    },
  };
}

/** A counter's value on the daemon's /metrics (0 when absent); `labels` selects one series. */
export function metricValue(stage: AttackStage, name: string, labels = ""): Promise<number> {
  return daemonMetric(stage.lab, name, labels);
}

/** Sends SIGTERM; returns the exit code (null if still running after `withinMs`) and the time. */
export async function sigterm(
  stage: AttackStage,
  withinMs = 5000,
): Promise<{ code: number | null; ms: number }> {
  const t0 = performance.now();
  try {
    stage.daemon.child.kill("SIGTERM");
  } catch { /* exited already */ }
  const code = await Promise.race([
    stage.daemon.child.status.then((s) => s.code),
    new Promise<null>((r) => setTimeout(() => r(null), withinMs)),
  ]);
  return { code, ms: Math.round(performance.now() - t0) };
}
