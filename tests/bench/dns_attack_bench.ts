/**
 * DNS under attack (issue 20): the real daemon (`svcgate run`, default flags) in a lab node, a
 * "bad" client pod attacking it and a "good" client pod asking `web.default.svc.cluster.local`
 * meanwhile, over UDP (a steady rate) and over fresh TCP connections (one query each). Per
 * attack it prints the good client's failed queries and latency percentiles, and the daemon's
 * peak RSS against its idle RSS; then the size of a truncated ANY answer for a 200-endpoint
 * headless service against its query, and how long SIGTERM takes under attack.
 *
 *   deno run -A tests/bench/dns_attack_bench.ts [--seconds 15] [--udp-qps 200] [--only a,b]
 *     [-- extra daemon flags...]
 *
 * Attacks (`--only` names): none, never-read (1 pipelining connection that never reads),
 * connections (300 keep-alive + 2,000 idle + 2,000 slowloris), pointer (2 connections streaming
 * 64 KB queries whose owners walk 8,000-pointer chains), flat (2 connections streaming 64 KB
 * queries of uncompressed records).
 * @module
 */

import { probeSummary } from "../support/dns_probe.ts";
import {
  attack,
  ATTACK_DNS,
  BIG_NAME,
  memoryMiB,
  probe,
  rssSampler,
  sigterm,
  startAttackStage,
} from "../support/dns_attack_lab.ts";

function arg(name: string, fallback: string): string {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 && i + 1 < Deno.args.length ? Deno.args[i + 1] : fallback;
}
const SECONDS = Number(arg("seconds", "15"));
const UDP_QPS = Number(arg("udp-qps", "200"));
const dash = Deno.args.indexOf("--");
const daemonArgs = dash >= 0 ? Deno.args.slice(dash + 1) : [];
const ATTACKS: Record<string, Record<string, number>> = {
  none: {},
  "never-read": { "never-read": 1 },
  connections: { keepalive: 300, idle: 2000, slowloris: 2000 },
  pointer: { "stream-pointer": 2 },
  flat: { "stream-flat": 2 },
};
const only = arg("only", Object.keys(ATTACKS).join(",")).split(",");
/** The attack ramps up this long before the good client starts measuring. */
const RAMP_S = 3;

async function loadavg(): Promise<string> {
  return (await Deno.readTextFile("/proc/loadavg")).split(" ").slice(0, 3).join(" ");
}

const rows: string[][] = [];
const notes: string[] = [];
const loadBefore = await loadavg();
const stage = await startAttackStage(daemonArgs);
try {
  // Warm up the names the probes ask, then let the daemon settle.
  await probe(stage, { seconds: 1, udpQps: 50, tcp: true });
  await new Promise((r) => setTimeout(r, 2000));
  const idle = await memoryMiB(stage.pid);
  notes.push(`daemon idle RSS ${idle.rss.toFixed(1)} MiB`);
  for (const name of only) {
    const populations = ATTACKS[name];
    if (!populations) throw new Error(`Unknown attack "${name}"; known: ${Object.keys(ATTACKS)}`);
    const sampler = rssSampler(stage.pid);
    const attacking = Object.keys(populations).length > 0
      ? attack(stage, populations, SECONDS + RAMP_S + 1)
      : Promise.resolve([]);
    if (Object.keys(populations).length > 0) await new Promise((r) => setTimeout(r, RAMP_S * 1000));
    const seen = await probe(stage, { seconds: SECONDS, udpQps: UDP_QPS, tcp: true });
    const bad = await attacking;
    const peak = await sampler.stop();
    const u = probeSummary(seen.udp!), t = probeSummary(seen.tcp!);
    const fmt = (v: number) => (Number.isFinite(v) ? v.toFixed(2) : "-");
    rows.push([
      name,
      `${u.failed}/${u.sent}`,
      fmt(u.p50),
      fmt(u.p99),
      fmt(u.max),
      `${t.failed}/${t.sent}`,
      fmt(t.p50),
      fmt(t.p99),
      `${peak.toFixed(0)} (+${(peak - idle.rss).toFixed(0)})`,
    ]);
    if (u.failed || t.failed) {
      notes.push(
        `${name}: UDP failures ${JSON.stringify(u.failures)}, TCP ${JSON.stringify(t.failures)}`,
      );
    }
    if (bad.length > 0) {
      notes.push(
        `${name}: bad client ${
          bad.map((p) =>
            `${p.kind} peak ${p.peakOpen} open, ${p.connects} connects, ${p.closedByServer} closed by the server (${p.closedEarly} at once), ${p.sent} sent`
          ).join("; ")
        }`,
      );
    }
    // Let the daemon finish closing the attack's connections before the next one.
    await new Promise((r) => setTimeout(r, 2000));
  }

  // Amplification: ANY for the 200-endpoint headless service, the issue's 58-byte query.
  for (const opts of [["+noedns"], ["+bufsize=1232"]]) {
    const r = await stage.lab.exec(stage.good.ns, [
      ...["dig", `@${ATTACK_DNS}`, BIG_NAME, "ANY", "+notcp", "+ignore", "+nocookie", "+tries=1"],
      ...opts,
    ]);
    const size = Number(/MSG SIZE\s+rcvd: (\d+)/.exec(r.stdout)?.[1] ?? NaN);
    const query = 12 + BIG_NAME.length + 2 + 4 + (opts[0] === "+noedns" ? 0 : 11);
    const flags = /;; flags: ([^;]*);/.exec(r.stdout)?.[1] ?? "?";
    const answers = Number(/ANSWER: (\d+)/.exec(r.stdout)?.[1] ?? NaN);
    notes.push(
      `ANY ${BIG_NAME} ${opts[0]}: query ${query} B, answer ${size} B (${
        (size / query).toFixed(2)
      }x), flags "${flags}", ${answers} answer records`,
    );
  }

  // SIGTERM under the heaviest attacks at once.
  const bad = attack(
    stage,
    { "stream-pointer": 2, keepalive: 300, idle: 2000, slowloris: 2000 },
    8,
  );
  await new Promise((r) => setTimeout(r, 4000));
  const stop = await sigterm(stage, 10_000);
  notes.push(`SIGTERM under attack: exit ${stop.code} after ${stop.ms} ms`);
  await bad.catch(() => {});
  const hwm = await memoryMiB(stage.pid).catch(() => null);
  if (hwm) notes.push(`daemon VmHWM ${hwm.hwm.toFixed(1)} MiB`);
} finally {
  await stage.destroy();
}

console.log(
  `\nDNS under attack: ${SECONDS}s per attack, good client UDP at ${UDP_QPS} qps + fresh TCP, ${navigator.hardwareConcurrency} CPUs, load ${loadBefore} before, ${await loadavg()} after${
    daemonArgs.length ? `, daemon flags ${daemonArgs.join(" ")}` : ""
  }\n`,
);
const header = [
  "attack",
  "UDP failed",
  "UDP p50 ms",
  "UDP p99 ms",
  "UDP max ms",
  "TCP failed",
  "TCP p50 ms",
  "TCP p99 ms",
  "peak RSS MiB",
];
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i])).join("  ");
console.log(line(header));
console.log(widths.map((w) => "-".repeat(w)).join("  "));
for (const r of rows) console.log(line(r));
console.log("");
for (const n of notes) console.log(`- ${n}`);
