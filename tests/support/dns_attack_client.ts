/**
 * The command-line face of tests/support/dns_attack.ts and dns_probe.ts, run inside a lab
 * namespace (the "bad" or the "good" client) by the attack test and benchmark. Prints one JSON line on stdout.
 *
 *   deno run -A dns_attack_client.ts attack --server IP --port N --seconds S --question NAME
 *     [--keepalive N] [--idle N] [--slowloris N] [--stream-pointer N] [--stream-flat N]
 *     [--never-read N] [--chain N]
 *   deno run -A dns_attack_client.ts probe --server IP --port N --seconds S --name NAME
 *     [--udp-qps N] [--tcp-pause-ms N] [--timeout-ms N]
 *
 * `probe` runs the UDP probe (when --udp-qps > 0) and the fresh-TCP probe (when --tcp-pause-ms
 * is given) side by side.
 * @module
 */

import { type PopulationKind, type PopulationReport, runPopulation } from "./dns_attack.ts";
import { type ProbeReport, tcpFreshProbe, udpProbe } from "./dns_probe.ts";

const [mode, ...rest] = Deno.args;
const flags = new Map<string, string>();
for (let i = 0; i < rest.length; i += 2) {
  if (!rest[i].startsWith("--") || i + 1 >= rest.length) {
    console.error(`dns_attack_client: expected --flag value pairs, got ${JSON.stringify(rest[i])}`);
    Deno.exit(2);
  }
  flags.set(rest[i].slice(2), rest[i + 1]);
}
const num = (name: string, fallback: number): number => {
  const v = flags.get(name);
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) {
    console.error(`dns_attack_client: --${name} ${JSON.stringify(v)} is not a number`);
    Deno.exit(2);
  }
  return n;
};
const server = flags.get("server") ?? "127.0.0.1";
const port = num("port", 53);
const seconds = num("seconds", 10);

if (mode === "attack") {
  const question = flags.get("question") ?? "web.default.svc.cluster.local";
  const kinds: PopulationKind[] = [
    "keepalive",
    "idle",
    "slowloris",
    "stream-pointer",
    "stream-flat",
    "never-read",
  ];
  const runs: Promise<PopulationReport>[] = [];
  for (const kind of kinds) {
    const count = num(kind, 0);
    if (count === 0) continue;
    runs.push(runPopulation({
      kind,
      hostname: server,
      port,
      count,
      seconds,
      question,
      ...(flags.has("chain") ? { chain: num("chain", 8000) } : {}),
    }));
  }
  console.log(JSON.stringify(await Promise.all(runs)));
} else if (mode === "probe") {
  const name = flags.get("name") ?? "web.default.svc.cluster.local";
  const timeoutMs = num("timeout-ms", 2000);
  const runs: Promise<ProbeReport>[] = [];
  const qps = num("udp-qps", 0);
  if (qps > 0) runs.push(udpProbe({ hostname: server, port, name, qps, seconds, timeoutMs }));
  if (flags.has("tcp-pause-ms")) {
    runs.push(tcpFreshProbe({
      hostname: server,
      port,
      name,
      seconds,
      pauseMs: num("tcp-pause-ms", 50),
      timeoutMs,
    }));
  }
  console.log(JSON.stringify(await Promise.all(runs)));
} else {
  console.error(`dns_attack_client: unknown mode ${JSON.stringify(mode)} (attack or probe)`);
  Deno.exit(2);
}
