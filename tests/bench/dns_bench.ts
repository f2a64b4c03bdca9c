/**
 * DNS benchmark: dnsperf on loopback against svcgate's DnsServer and against knot, unbound and
 * dnsmasq serving the same 1000 names (`svc<i>.bench.svc.cluster.local A 198.19.x.y`), one after
 * another on this machine. Prints one table: max qps (dnsperf defaults: 1 client, 100
 * outstanding, for `--seconds`) and latency percentiles at a fixed 5k qps (`-Q 5000 -v`).
 *
 *   deno run -A tests/bench/dns_bench.ts [--seconds 10] [--only svcgate,knot,unbound,dnsmasq]
 *     [--variants]   also svcgate with 2 workers, in-process, on the node:dgram fallback, and
 *                    with 10k services republished every second during the runs
 *
 * @module
 */

import { manyServicesSnapshot } from "../support/dns_fixture.ts";
import {
  freePort,
  quantile,
  runDnsperf,
  startDnsmasq,
  type Started,
  startKnot,
  startSvcgate,
  startUnbound,
  udpQuery,
  worldReadableTempDir,
  writePublic,
  type ZoneEntry,
} from "./dns_helpers.ts";

function arg(name: string, fallback: string): string {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 && i + 1 < Deno.args.length ? Deno.args[i + 1] : fallback;
}

const SECONDS = Number(arg("seconds", "10"));
const NAMES = 1000;
const LATENCY_QPS = 5000;
const only = arg("only", "svcgate,knot,unbound,dnsmasq").split(",");
const variants = Deno.args.includes("--variants");

// The same names and addresses svcgate derives from manyServicesSnapshot.
const snapshot = manyServicesSnapshot(NAMES);
const entries: ZoneEntry[] = [...snapshot.services.values()].map((e) => ({
  name: `${e.service.name}.${e.service.namespace}.svc.cluster.local`,
  type: "A",
  value: e.service.clusterIPs[0],
}));

const dir = await worldReadableTempDir("svcgate-dnsbench-");
const queryFile = `${dir}/queries.txt`;
await writePublic(queryFile, entries.map((e) => `${e.name} A`).join("\n") + "\n");

interface Row {
  server: string;
  maxQps: number;
  lostPct: number;
  rcodes: string;
  p50: number;
  p99: number;
  p999: number;
  max: number;
  note: string;
}

const rows: Row[] = [];

/** Load average, printed so a reader can tell a quiet run from a contended one. */
async function loadavg(): Promise<string> {
  try {
    return (await Deno.readTextFile("/proc/loadavg")).split(" ").slice(0, 3).join(" ");
  } catch {
    return "unknown";
  }
}
const loadBefore = await loadavg();

async function measure(
  label: string,
  start: (port: number) => Promise<Started & { udpMode?: string }>,
): Promise<void> {
  const port = await freePort();
  let server: (Started & { udpMode?: string }) | null = null;
  try {
    server = await start(port);
    // Check it serves the right data before timing it.
    const probe = entries[NAMES - 1];
    const m = await udpQuery(server.port, probe.name, "A");
    const got = m.answers.map((a) => (a.data as { address?: string }).address);
    if (!got.includes(probe.value)) {
      throw new Error(
        `${label} answered ${probe.name} with ${JSON.stringify(got)}, expected ${probe.value}`,
      );
    }
    const max = await runDnsperf({ port: server.port, file: queryFile, seconds: SECONDS });
    const lat = await runDnsperf({
      port: server.port,
      file: queryFile,
      seconds: SECONDS,
      qps: LATENCY_QPS,
      verbose: true,
    });
    const ms = (v: number) => v * 1000;
    rows.push({
      server: label,
      maxQps: max.qps,
      lostPct: max.sent ? (100 * max.lost) / max.sent : 0,
      rcodes: max.rcodes,
      p50: ms(quantile(lat.latencies, 0.5)),
      p99: ms(quantile(lat.latencies, 0.99)),
      p999: ms(quantile(lat.latencies, 0.999)),
      max: ms(lat.latencies[lat.latencies.length - 1] ?? NaN),
      note: server.udpMode ? `udp=${server.udpMode}` : "",
    });
  } catch (e) {
    rows.push({
      server: label,
      maxQps: NaN,
      lostPct: NaN,
      rcodes: "",
      p50: NaN,
      p99: NaN,
      p999: NaN,
      max: NaN,
      note: `FAILED: ${(e as Error).message}`,
    });
  } finally {
    await server?.stop();
  }
}

try {
  if (only.includes("svcgate")) {
    await measure(
      "svcgate",
      (port) => startSvcgate(["--port", String(port), "--services", String(NAMES)]),
    );
    if (variants) {
      await measure(
        "svcgate 2 workers",
        (port) =>
          startSvcgate(["--port", String(port), "--services", String(NAMES), "--workers", "2"]),
      );
      await measure(
        "svcgate in-process",
        (port) =>
          startSvcgate(["--port", String(port), "--services", String(NAMES), "--workers", "0"]),
      );
      await measure(
        "svcgate node:dgram",
        (port) =>
          startSvcgate(["--port", String(port), "--services", String(NAMES), "--udp", "node"]),
      );
      // 10k services, the zone rebuilt every second while dnsperf runs (queries hit the first 1000).
      await measure(
        "svcgate 10k churn/1s",
        (port) =>
          startSvcgate(["--port", String(port), "--services", "10000", "--churn-ms", "1000"]),
      );
    }
  }
  if (only.includes("knot")) {
    await measure("knot", (port) => startKnot({ origin: "cluster.local", entries, port }));
  }
  if (only.includes("unbound")) {
    await measure("unbound", (port) => startUnbound({ origin: "cluster.local", entries, port }));
  }
  if (only.includes("dnsmasq")) await measure("dnsmasq", (port) => startDnsmasq({ entries, port }));
} finally {
  await Deno.remove(dir, { recursive: true }).catch(() => {});
}

const fmt = (v: number, d = 0) => (Number.isFinite(v) ? v.toFixed(d) : "-");
const dnsmasq = rows.find((r) => r.server === "dnsmasq");
console.log(
  `\nDNS benchmark: ${NAMES} names, dnsperf ${SECONDS}s per run on loopback, ${navigator.hardwareConcurrency} CPUs, ` +
    `load average ${loadBefore} before, ${await loadavg()} after\n`,
);
const header = [
  "server",
  "max qps",
  "lost %",
  "vs dnsmasq",
  `p50 ms @${LATENCY_QPS}`,
  `p99 ms @${LATENCY_QPS}`,
  "p99.9 ms",
  "max ms",
  "note",
];
const table = rows.map((r) => [
  r.server,
  fmt(r.maxQps),
  fmt(r.lostPct, 2),
  dnsmasq && Number.isFinite(dnsmasq.maxQps) && Number.isFinite(r.maxQps)
    ? `${(r.maxQps / dnsmasq.maxQps).toFixed(2)}x`
    : "-",
  fmt(r.p50, 3),
  fmt(r.p99, 3),
  fmt(r.p999, 3),
  fmt(r.max, 3),
  r.note,
]);
const widths = header.map((h, i) => Math.max(h.length, ...table.map((row) => row[i].length)));
const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i])).join("  ");
console.log(line(header));
console.log(widths.map((w) => "-".repeat(w)).join("  "));
for (const row of table) console.log(line(row));
