/**
 * The embedded default at fleet scale (issue 19): `svcgate run --manifests DIR` in a lab node with
 * 10,000 Services and 10,000 Endpoints objects (10 addresses each, VIPs allocated by svcgate, 100
 * namespaces) written as (a) one big YAML file or (b) a directory of 10,000 small files, plus one
 * probe service in a file of its own whose only endpoint is a real pod.
 *
 * Measured per layout: process start -> first log line -> "manifests loaded" -> the first nft
 * apply done -> the probe VIP answering a real TCP connection and its name answering over DNS;
 * VmRSS and peak VmHWM after the initial sync and after the reloads; reload latency: the probe's
 * file rewritten to move its endpoint to another pod, -> the first connection answered by the new
 * pod, over `--changes` rewrites.
 *
 * Run: `deno run -A tests/bench/standalone_bench.ts [--services=10000] [--endpoints=10]
 *   [--changes=100] [--layout=file|dir|both] [--bundle] [--daemon-args="..."]`
 * (`deno task bench standalone` runs both layouts with the bundle.) Everything runs in network
 * namespaces the benchmark creates and deletes (tests/lab); run it on an otherwise idle host.
 * @module
 */

import { Lab } from "../lab/lab.ts";
import { type DaemonProcess, startDaemon, writeManifest } from "../daemon/harness.ts";
import { epochMs } from "./kube_daemon_probe.ts";
import {
  bundleDaemon,
  DNS,
  fmtMs,
  intFlag,
  memoryOf,
  MiB,
  parsedLog,
  PROBE,
  PROBE_VIP,
  ProbeReader,
  sleep,
  summary,
} from "./daemon_bench_lib.ts";

const PROBE_NAME = "probe.default.svc.cluster.local";

/** Service `i`'s Service and Endpoints documents. */
function serviceDocs(i: number, endpoints: number): string {
  const ns = `ns-${i % 100}`;
  const addresses: string[] = [];
  for (let j = 0; j < endpoints; j++) {
    const n = i * endpoints + j;
    addresses.push(`{ ip: 198.18.${16 + ((n >> 8) % 224)}.${n & 255} }`);
  }
  return `apiVersion: v1\nkind: Service\nmetadata: { name: svc-${i}, namespace: ${ns} }\n` +
    `spec:\n  ports: [{ name: http, port: 80, targetPort: 8080 }]\n---\n` +
    `apiVersion: v1\nkind: Endpoints\nmetadata: { name: svc-${i}, namespace: ${ns} }\n` +
    `subsets: [{ addresses: [${addresses.join(", ")}], ports: [{ name: http, port: 8080 }] }]\n`;
}

function probeDocs(podIp: string): string {
  return `apiVersion: v1\nkind: Service\nmetadata: { name: probe, namespace: default }\n` +
    `spec:\n  clusterIP: ${PROBE_VIP}\n  ports: [{ port: 80, targetPort: 8080 }]\n---\n` +
    `apiVersion: v1\nkind: Endpoints\nmetadata: { name: probe, namespace: default }\n` +
    `subsets: [{ addresses: [{ ip: ${podIp} }], ports: [{ port: 8080 }] }]\n`;
}

async function writeScale(
  dir: string,
  layout: "file" | "dir",
  services: number,
  endpoints: number,
): Promise<number> {
  if (layout === "file") {
    const parts: string[] = [];
    for (let i = 0; i < services; i++) parts.push(serviceDocs(i, endpoints));
    const text = parts.join("---\n");
    await Deno.writeTextFile(`${dir}/services.yaml`, text);
    return text.length;
  }
  let bytes = 0;
  for (let i = 0; i < services; i++) {
    const text = serviceDocs(i, endpoints);
    bytes += text.length;
    await Deno.writeTextFile(`${dir}/svc-${String(i).padStart(5, "0")}.yaml`, text);
  }
  return bytes;
}

async function runLayout(
  layout: "file" | "dir",
  o: {
    services: number;
    endpoints: number;
    changes: number;
    program?: string[];
    daemonArgs: string[];
  },
): Promise<void> {
  const lab = await Lab.create({ pods: 3 });
  const dir = await Deno.makeTempDir({ prefix: "svcgate-standalone-bench-" });
  let daemon: DaemonProcess | null = null;
  try {
    await lab.startPodServers();
    const manifests = `${dir}/manifests`;
    await Deno.mkdir(manifests);
    const bytes = await writeScale(manifests, layout, o.services, o.endpoints);
    const pods = lab.pods;
    let podIndex = 0;
    await writeManifest(manifests, "zz-probe.yaml", probeDocs(pods[podIndex].ip));
    const probeChild = lab.spawn(lab.node.ns, [
      Deno.execPath(),
      "run",
      "--allow-net",
      PROBE,
      ...["tcp", PROBE_VIP, "80", "dns", DNS, "53", PROBE_NAME],
    ], { stdout: "piped", stderr: "inherit" });
    const probe = new ProbeReader(probeChild);

    // ---- cold start ----
    const spawnedAt = epochMs();
    daemon = startDaemon(lab, {
      ...(o.program ? { program: o.program } : {}),
      args: [
        ...["--service-cidr", "198.19.0.0/16", "--cluster-cidr", "198.18.0.0/16"],
        ...["--dns-bind-address", `${DNS}:53`, "--upstream", "127.0.0.1:1"],
        ...["--manifests", manifests, "--state-dir", `${dir}/state`, "--log-format", "json"],
        ...o.daemonArgs,
      ],
    });
    const timeoutMs = 600_000;
    const tcpLive = await probe.waitFor("tcp", pods[podIndex].name, timeoutMs);
    if (!tcpLive) throw new Error(`the probe VIP did not answer within ${timeoutMs} ms`);
    const dnsLive = await probe.waitFor("dns", PROBE_VIP, timeoutMs);
    if (!dnsLive) throw new Error(`the probe name did not answer within ${timeoutMs} ms`);
    await sleep(2000);
    const memSync = await memoryOf(daemon.child.pid);
    const syncLog = parsedLog(daemon.log);
    const at = (l: Record<string, unknown> | undefined) =>
      l ? Date.parse(String(l.ts)) - spawnedAt : NaN;
    const firstLog = syncLog[0];
    const loaded = syncLog.find((l) => l.msg === "manifests loaded");
    const firstNft = syncLog.find((l) => l.msg === "nftables synced");

    // ---- reloads: the probe's file rewritten, its endpoint moved to the next pod ----
    const lat: number[] = [];
    let timeouts = 0;
    const logMark = daemon.log.length;
    for (let i = 0; i < o.changes; i++) {
      podIndex = (podIndex + 1) % pods.length;
      probe.drain("tcp");
      const t = epochMs();
      await writeManifest(manifests, "zz-probe.yaml", probeDocs(pods[podIndex].ip));
      const hit = await probe.waitFor("tcp", pods[podIndex].name, 10_000);
      if (hit) lat.push(hit.hit.at - t);
      else timeouts++;
      await sleep(20);
    }
    const memAfter = await memoryOf(daemon.child.pid);
    const reloads = parsedLog(daemon.log.slice(logMark)).filter((l) =>
      l.msg === "manifests loaded"
    ).length;
    const s = summary(lat);

    const rows: [string, string][] = [
      ["layout", layout === "file" ? "one file" : `a directory of ${o.services} files`],
      [
        "data set",
        `${o.services} services x ${o.endpoints} endpoints (+1 probe service), ${
          (bytes / 1e6).toFixed(1)
        } MB of YAML`,
      ],
      ["daemon flags added", o.daemonArgs.join(" ") || "(none: defaults)"],
      ["process start -> first log line", fmtMs(at(firstLog))],
      ["process start -> manifests loaded", fmtMs(at(loaded))],
      [
        "process start -> first nft apply done",
        firstNft ? `${fmtMs(at(firstNft))} (apply ${fmtMs(Number(firstNft.durationMs))})` : "n/a",
      ],
      ["process start -> probe VIP live (TCP)", fmtMs(tcpLive.hit.at - spawnedAt)],
      ["process start -> probe name answers (DNS)", fmtMs(dnsLive.hit.at - spawnedAt)],
      [
        "RSS after the initial sync (VmRSS / peak VmHWM)",
        `${(memSync.rss / MiB).toFixed(1)} / ${(memSync.hwm / MiB).toFixed(1)} MiB`,
      ],
      [
        `one file rewritten -> rule live (${lat.length} of ${o.changes}, ${timeouts} timeouts)`,
        `p50 ${fmtMs(s.p50)}, p90 ${fmtMs(s.p90)}, p99 ${fmtMs(s.p99)}, max ${fmtMs(s.max)}`,
      ],
      ["  reloads logged during the rewrites", String(reloads)],
      [
        "RSS after the rewrites (VmRSS / peak VmHWM)",
        `${(memAfter.rss / MiB).toFixed(1)} / ${(memAfter.hwm / MiB).toFixed(1)} MiB`,
      ],
    ];
    const width = Math.max(...rows.map(([k]) => k.length));
    console.log(`\nsvcgate daemon, standalone mode (--manifests), ${new Date().toISOString()}`);
    for (const [k, v] of rows) console.log(`${k.padEnd(width)}  ${v}`);
    const verdict = (ok: boolean) => ok ? "met" : "MISSED";
    const cold = tcpLive.hit.at - spawnedAt;
    console.log(
      `targets: cold start <= 3 s: ${verdict(cold <= 3000)} (${fmtMs(cold)}); ` +
        `peak RSS <= 150 MB: ${verdict(memAfter.hwm <= 150e6)} (${
          (memAfter.hwm / 1e6).toFixed(0)
        } MB); rewrite -> rule p99 <= 50 ms: ${verdict(lat.length > 0 && s.p99 <= 50)}`,
    );
    probeChild.kill();
    await probeChild.status;
  } finally {
    if (daemon) await daemon.stop();
    await lab.destroy();
    await Deno.remove(dir, { recursive: true });
  }
}

async function main(): Promise<void> {
  const layoutArg = Deno.args.find((a) => a.startsWith("--layout="))?.slice(9) ?? "both";
  if (!["file", "dir", "both"].includes(layoutArg)) {
    throw new Error(`Cannot use --layout "${layoutArg}": expected file, dir or both`);
  }
  const daemonArgs = (Deno.args.find((a) => a.startsWith("--daemon-args="))
    ?.slice("--daemon-args=".length) ?? "").split(" ").filter(Boolean);
  const bundle = Deno.args.includes("--bundle") ? await bundleDaemon() : null;
  try {
    for (const layout of layoutArg === "both" ? ["file", "dir"] as const : [layoutArg]) {
      await runLayout(layout as "file" | "dir", {
        services: intFlag("services", 10_000),
        endpoints: intFlag("endpoints", 10),
        changes: intFlag("changes", 100),
        ...(bundle ? { program: bundle.program } : {}),
        daemonArgs,
      });
    }
  } finally {
    if (bundle) await Deno.remove(bundle.dir, { recursive: true });
  }
}

if (import.meta.main) await main();
