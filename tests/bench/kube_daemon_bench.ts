/**
 * Daemon-level Kubernetes benchmark: the real daemon (`main.ts run --kubeconfig`) in a lab node,
 * against the fake API server running as a process in the same namespace, with 10,000 services
 * and 100,000 endpoints present (default size).
 *
 * Measured:
 * - initial sync: from spawning the daemon to a probe VIP (created last in the API) answering a
 *   real TCP connection, and to its DNS name answering;
 * - network programming latency over N changes: from the API server sending the watch event (its
 *   clock, right after the write) to
 *   (a) the rule being live: a probe in the node namespace opens a fresh TCP connection through
 *       the VIP of a probe service in a tight loop; each change moves that service's only
 *       endpoint to another real pod, and the first connection answered by the new pod marks it;
 *   (b) the DNS answer changing: a probe queries a headless probe service's A record over UDP in
 *       a tight loop; each change moves its only endpoint to another address;
 *   and (a) again from the `endpoints.kubernetes.io/last-change-trigger-time` annotation each
 *   probe slice update carries (set just before the write, as the EndpointSlice controller does),
 *   beside what the daemon itself reports from it (kubeproxy_network_programming_duration_seconds);
 * - the daemon's RSS (VmRSS and peak VmHWM of the deno process) after the initial sync and after
 *   the changes.
 *
 * Changes are sent one at a time: each waits until it is observed (or 10 s), then `--gap-ms`.
 * `--churn=N` adds N background slice updates per second to the scale services meanwhile (a
 * cluster is never idle); `--daemon-args` passes extra daemon flags (e.g. `--sync-period 0s` to
 * turn the periodic drift check off, `--dns=false`). The machine's other load shows in the
 * figures: run it on an otherwise idle host.
 *
 * Everything runs inside network namespaces the benchmark creates and deletes (tests/lab).
 *
 * Run: `deno run -A tests/bench/kube_daemon_bench.ts [--services=10000] [--endpoints=10]
 *   [--changes=1000] [--max-seconds=900] [--gap-ms=10] [--churn=0]
 *   [--daemon-args="--sync-period 0s"]`
 * @module
 */

import { Lab } from "../lab/lab.ts";
import { type DaemonProcess, startDaemon } from "../daemon/harness.ts";
import {
  bundleDaemon,
  DNS,
  fmtMs,
  heapLine,
  intFlag,
  memoryOf,
  metricsText,
  metricValue,
  MiB,
  parsedLog,
  PROBE,
  PROBE_VIP,
  ProbeReader,
  sleep,
  summary,
} from "./daemon_bench_lib.ts";
import { makeEndpointSlice, makeNamespace, makeService } from "../fake_apiserver/fixtures.ts";
import { ApiServerProcess } from "../kube/apiserver_proc.ts";
import { epochMs } from "./kube_daemon_probe.ts";
import { sliceOf } from "./kube_scale.ts";

const PROBE_DNS_NAME = "probe-dns.default.svc.cluster.local";
async function main(): Promise<void> {
  const services = intFlag("services", 10_000);
  const perService = intFlag("endpoints", 10);
  const changes = intFlag("changes", 1000);
  const maxSeconds = intFlag("max-seconds", 900);
  const gapMs = intFlag("gap-ms", 10);
  // Background endpoint updates of the scale services per second during the changes (0: none).
  const churn = intFlag("churn", 0);
  // Extra daemon flags, space separated, e.g. --daemon-args="--sync-period 0s --dns=false".
  const daemonArgs = (Deno.args.find((a) => a.startsWith("--daemon-args="))
    ?.slice("--daemon-args=".length) ?? "").split(" ").filter(Boolean);
  const withDns = !daemonArgs.includes("--dns=false");
  // --bundle runs the shipped form (deploy/bundle.ts: minified entry and chunks under the compile
  // task's flags) instead of `deno run main.ts`: no TypeScript module graph to hold.
  const bundled = Deno.args.includes("--bundle");
  const namespaces = Math.max(1, Math.min(100, services));
  const lab = await Lab.create({ pods: 3 });
  let api: ApiServerProcess | null = null;
  let daemon: DaemonProcess | null = null;
  let bundleDir: string | null = null;
  try {
    await lab.startPodServers();
    api = await ApiServerProcess.spawn(lab, lab.node.ns);
    const t0 = performance.now();
    const loaded = await api.loadScale({ services, endpointsPerService: perService, namespaces });
    console.log(
      `fake API server loaded ${loaded.result.services} services, ` +
        `${loaded.result.endpointslices} slices (${perService} endpoints each) in ` +
        `${Math.round(performance.now() - t0)} ms`,
    );
    const pods = lab.pods;
    let program: string[] | undefined;
    if (bundled) {
      const bundle = await bundleDaemon();
      program = bundle.program;
      bundleDir = bundle.dir;
    }
    // The probe services, created last.
    await api.create("namespaces", makeNamespace("default"));
    let dnsIp = "198.18.201.1";
    await api.create("services", makeService("default", "probe-dns", "None"));
    await api.create(
      "endpointslices",
      makeEndpointSlice("default", "probe-dns", "probe-dns-1", [{ ip: dnsIp }]),
    );
    let podIndex = 0;
    await api.create("services", makeService("default", "probe-vip", PROBE_VIP));
    await api.create(
      "endpointslices",
      makeEndpointSlice("default", "probe-vip", "probe-vip-1", [{ ip: pods[podIndex].ip }]),
    );

    const probeChild = lab.spawn(lab.node.ns, [
      Deno.execPath(),
      "run",
      "--allow-net",
      PROBE,
      ...["tcp", PROBE_VIP, "80"],
      ...(withDns ? ["dns", DNS, "53", PROBE_DNS_NAME] : []),
    ], { stdout: "piped", stderr: "inherit" });
    const probe = new ProbeReader(probeChild);

    // ---- initial sync ----
    const spawnedAt = epochMs();
    daemon = startDaemon(lab, {
      ...(program ? { program } : {}),
      args: [
        ...["--service-cidr", "198.19.0.0/16", "--cluster-cidr", "198.18.0.0/24"],
        ...["--dns-bind-address", `${DNS}:53`, "--upstream", "127.0.0.1:1"],
        ...["--kubeconfig", api.kubeconfig, "--log-format", "json"],
        ...daemonArgs,
      ],
    });
    const initialTimeoutMs = 600_000;
    const tcpLive = await probe.waitFor("tcp", pods[podIndex].name, initialTimeoutMs);
    if (!tcpLive) throw new Error(`the probe VIP did not answer within ${initialTimeoutMs} ms`);
    const dnsLive = withDns ? await probe.waitFor("dns", dnsIp, initialTimeoutMs) : null;
    if (withDns && !dnsLive) {
      throw new Error(`the probe DNS name did not answer within ${initialTimeoutMs} ms`);
    }
    console.error(
      `probe VIP live ${fmtMs(tcpLive.hit.at - spawnedAt)} after the daemon was spawned`,
    );
    const syncLog = parsedLog(daemon.log);
    const firstLogAt = Date.parse(String(syncLog[0]?.ts ?? "")) || NaN;
    const listed = syncLog.filter((l) => l.msg === "listed");
    const firstNft = syncLog.find((l) => l.msg === "nftables synced");
    await sleep(2000);
    const memSync = await memoryOf(daemon.child.pid);

    // ---- changes ----
    const tcpLat: number[] = [], dnsLat: number[] = [], triggerLat: number[] = [];
    let tcpTimeouts = 0, dnsTimeouts = 0, tcpFailedRounds = 0;
    const phaseStart = performance.now();
    const metricsBefore = await metricsText(lab);
    console.error(`daemon RSS ${(memSync.rss / MiB).toFixed(1)} MiB; starting ${changes} changes`);
    const logMark = daemon.log.length;
    let churnStop = false, churned = 0;
    const churnLoop = async (): Promise<void> => {
      const spec = { services, endpointsPerService: perService, namespaces };
      const version = new Map<number, number>();
      let next = performance.now();
      for (let i = 0; !churnStop; i++) {
        const n = (i * 7919) % services; // spread over the whole set
        const v = (version.get(n) ?? 0) + 1;
        version.set(n, v);
        await api!.update("endpointslices", sliceOf(spec, n, v));
        churned++;
        next += 1000 / churn;
        await sleep(Math.max(0, next - performance.now()));
      }
    };
    const churnDone = churn > 0 ? churnLoop() : Promise.resolve();
    let done = 0;
    for (; done < changes; done++) {
      if (performance.now() - phaseStart > maxSeconds * 1000) break;
      if (done > 0 && done % 100 === 0) console.error(`${done} changes done`);
      // (a) move the probe VIP's only endpoint to the next pod.
      podIndex = (podIndex + 1) % pods.length;
      probe.drain("tcp");
      // As the EndpointSlice controller: the change's trigger time on the slice (kube-proxy and
      // the Kubernetes SLO measure network programming from it; so does the daemon's
      // kubeproxy_network_programming_duration_seconds).
      const slice = makeEndpointSlice("default", "probe-vip", "probe-vip-1", [{
        ip: pods[podIndex].ip,
      }]);
      const triggerMs = epochMs();
      slice.metadata.annotations = {
        "endpoints.kubernetes.io/last-change-trigger-time": new Date(triggerMs).toISOString(),
      };
      const a = await api.update("endpointslices", slice);
      const hitA = await probe.waitFor("tcp", pods[podIndex].name, 10_000);
      if (hitA) {
        triggerLat.push(hitA.hit.at - Math.floor(triggerMs));
        tcpLat.push(hitA.hit.at - a.at);
        tcpFailedRounds += hitA.skipped.filter((o) => o.value === "").length;
      } else tcpTimeouts++;
      await sleep(gapMs);
      // (b) move the headless probe's only endpoint to another address.
      if (!withDns) continue;
      dnsIp = `198.18.201.${((done + 1) % 250) + 1}`;
      probe.drain("dns");
      const b = await api.update(
        "endpointslices",
        makeEndpointSlice("default", "probe-dns", "probe-dns-1", [{ ip: dnsIp }]),
      );
      const hitB = await probe.waitFor("dns", dnsIp, 10_000);
      if (hitB) dnsLat.push(hitB.hit.at - b.at);
      else dnsTimeouts++;
      await sleep(gapMs);
    }
    churnStop = true;
    await churnDone;
    const phaseSeconds = (performance.now() - phaseStart) / 1000;
    const metricsAfter = await metricsText(lab);
    const memAfter = await memoryOf(daemon.child.pid);
    const changeLog = parsedLog(daemon.log.slice(logMark));
    const nftMs = changeLog.filter((l) => l.msg === "nftables synced").map((l) =>
      Number(l.durationMs)
    );
    const progName = "svcgate_network_programming_duration_seconds";
    const progCount = metricValue(metricsAfter, `${progName}_count`) -
      metricValue(metricsBefore, `${progName}_count`);
    const progSum = metricValue(metricsAfter, `${progName}_sum`) -
      metricValue(metricsBefore, `${progName}_sum`);
    // kube-proxy's programming latency, as the daemon measures it from the trigger times.
    const kpName = "kubeproxy_network_programming_duration_seconds";
    const kp = (suffix: string) =>
      metricValue(metricsAfter, `${kpName}${suffix}{ip_family="IPv4"}`) -
      (metricValue(metricsBefore, `${kpName}${suffix}{ip_family="IPv4"}`) || 0);
    const kpCount = kp("_count"), kpSum = kp("_sum");
    // The smallest bucket bound holding 99% of the observations (kube-proxy's buckets: 0, 0.25 s,
    // 0.5 s, 1 s...): what a dashboard's histogram_quantile(0.99) would bound.
    const kpP99Bound = (() => {
      for (const line of metricsAfter.split("\n")) {
        const m = line.match(
          /^kubeproxy_network_programming_duration_seconds_bucket\{ip_family="IPv4",le="([^"]+)"\} (\S+)$/,
        );
        if (!m) continue;
        const before = metricValue(
          metricsBefore,
          `${kpName}_bucket{ip_family="IPv4",le="${m[1]}"}`,
        ) || 0;
        if (Number(m[2]) - before >= 0.99 * kpCount) return m[1];
      }
      return "n/a";
    })();
    // Probe resolution: mean time between rounds of each loop.
    const rate = (kind: "tcp" | "dns") => {
      const xs = probe.all.filter((o) => o.kind === kind);
      if (xs.length < 2) return NaN;
      return (xs[xs.length - 1].at - xs[0].at) / (xs[xs.length - 1].rounds - xs[0].rounds);
    };

    // ---- report ----
    const tcp = summary(tcpLat), dns = summary(dnsLat), nft = summary(nftMs);
    const trig = summary(triggerLat);
    const rows: [string, string][] = [
      ["daemon program", bundled ? "the bundle (deploy/bundle.ts)" : "deno run main.ts"],
      ["daemon flags added", daemonArgs.join(" ") || "(none: defaults)"],
      [
        "data set",
        `${services} services x ${perService} endpoints = ${
          services * perService
        } endpoints (+2 probe services), ${namespaces} namespaces`,
      ],
      ["initial sync: daemon spawn -> probe VIP live (TCP)", fmtMs(tcpLive.hit.at - spawnedAt)],
      [
        "initial sync: daemon spawn -> probe DNS answer",
        dnsLive ? fmtMs(dnsLive.hit.at - spawnedAt) : "n/a (--dns=false)",
      ],
      ["  of which process start -> first log line", fmtMs(firstLogAt - spawnedAt)],
      [
        "  lists (per resource, s)",
        listed.map((l) => `${l.resource} ${l.items} in ${l.seconds}`).join("; "),
      ],
      [
        "  first nft apply",
        firstNft
          ? `${fmtMs(Number(firstNft.durationMs))}, ${
            Math.round(Number(firstNft.scriptBytes) / 1024)
          } KiB script`
          : "n/a",
      ],
      [
        "daemon RSS after initial sync (VmRSS / peak VmHWM)",
        `${(memSync.rss / MiB).toFixed(1)} MiB / ${(memSync.hwm / MiB).toFixed(1)} MiB`,
      ],
      [
        "daemon RSS after the changes (VmRSS / peak VmHWM)",
        `${(memAfter.rss / MiB).toFixed(1)} MiB / ${(memAfter.hwm / MiB).toFixed(1)} MiB`,
      ],
      [
        "  V8 heap in use after the changes, per isolate",
        heapLine(metricsAfter),
      ],
      [
        `changes measured (of ${changes} asked; ${phaseSeconds.toFixed(0)} s)`,
        `${tcpLat.length} rule, ${dnsLat.length} DNS; timeouts ${tcpTimeouts} rule, ${dnsTimeouts} DNS`,
      ],
      [
        "background churn (scale slices updated)",
        churn > 0 ? `${churned} updates at ${churn}/s` : "none",
      ],
      [
        "event -> rule live (TCP via VIP)",
        `p50 ${fmtMs(tcp.p50)}, p90 ${fmtMs(tcp.p90)}, p99 ${fmtMs(tcp.p99)}, max ${
          fmtMs(tcp.max)
        }`,
      ],
      [
        "trigger-time annotation -> rule live (TCP via VIP)",
        `p50 ${fmtMs(trig.p50)}, p90 ${fmtMs(trig.p90)}, p99 ${fmtMs(trig.p99)}, max ${
          fmtMs(trig.max)
        }`,
      ],
      [
        `  ${kpName} (daemon, from the annotation)`,
        `${kpCount} observed, mean ${fmtMs((kpSum / kpCount) * 1000)}, p99 <= ${kpP99Bound} s`,
      ],
      [
        "event -> DNS answer changed",
        `p50 ${fmtMs(dns.p50)}, p90 ${fmtMs(dns.p90)}, p99 ${fmtMs(dns.p99)}, max ${
          fmtMs(dns.max)
        }`,
      ],
      [
        "  nft apply during changes (daemon log)",
        `${nftMs.length} applies: p50 ${fmtMs(nft.p50)}, p99 ${fmtMs(nft.p99)}, max ${
          fmtMs(nft.max)
        }`,
      ],
      [
        `  ${progName} (daemon, model -> published)`,
        `${progCount} syncs, mean ${fmtMs((progSum / progCount) * 1000)}`,
      ],
      ["  failed probe connections during changes", String(tcpFailedRounds)],
      [
        "  probe resolution (mean time per round)",
        `TCP ${fmtMs(rate("tcp"))}, DNS ${fmtMs(rate("dns"))}`,
      ],
      ["  daemon process", `pid ${daemon.child.pid} (${memAfter.exe})`],
    ];
    const width = Math.max(...rows.map(([k]) => k.length));
    console.log("");
    console.log("svcgate daemon, Kubernetes mode (fake API server over TLS in the node namespace)");
    for (const [k, v] of rows) console.log(`${k.padEnd(width)}  ${v}`);
    const verdict = (ok: boolean | null) => ok === null ? "not measured" : ok ? "met" : "MISSED";
    const mb = (bytes: number) => `${(bytes / 1e6).toFixed(0)} MB`;
    console.log(
      `targets: event->rule p99 <= 50 ms: ${verdict(tcpLat.length ? tcp.p99 <= 50 : null)}; ` +
        `event->DNS p99 <= 50 ms: ${verdict(dnsLat.length ? dns.p99 <= 50 : null)}; ` +
        `RSS <= 150 MB after the sync and the changes: ` +
        `${verdict(memSync.rss <= 150e6 && memAfter.rss <= 150e6)} ` +
        `(${mb(memSync.rss)}, ${mb(memAfter.rss)}); ` +
        `peak RSS <= 150 MB: ${verdict(memAfter.hwm <= 150e6)} (${mb(memAfter.hwm)})`,
    );
  } finally {
    if (daemon) await daemon.stop();
    await api?.close();
    await lab.destroy();
    if (bundleDir) await Deno.remove(bundleDir, { recursive: true });
  }
}

if (import.meta.main) await main();
