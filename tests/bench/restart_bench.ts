/**
 * Restart under load at 10,000 services (issue 15): the real daemon in Kubernetes mode (the fake
 * API server in the lab with 10,000 services x 10 endpoints) on 169.254.20.10:53, a client in the
 * node sending 2,000 UDP queries a second for a cluster name and an external one (knotd in the
 * lab), svcgate restarted N times; every reply judged (tests/support/restart_load.ts).
 *
 * Modes:
 * - `socket`: systemd-socket-activate holds the sockets, svcgate restarts on them (SIGTERM, the
 *   next process starts when it exits);
 * - `reuseport`: a new svcgate (`--reuse-port`) starts beside the running one, which then gets
 *   SIGTERM and serves `--dns-lameduck 2s`;
 * - `plain`: SIGTERM, then a new svcgate once it exited (what a restart was before; runs on any
 *   version, for the "before" figure).
 *
 * Reported per mode: queries sent, lost (no reply within 10 s), SERVFAIL, wrong, replies later
 * than 1 s (what a client with a 1 s timeout would have seen as a gap), the longest reply, and
 * per restart the time from the signal to the first right answer of a query sent after it.
 *
 * Run: `deno run -A tests/bench/restart_bench.ts [--mode=socket,reuseport,plain] [--restarts=3]
 *   [--services=10000] [--main=OTHER/main.ts] [--daemon-args="--dns-workers 1"]` (`--mode=plain --main=...` of an older checkout
 *   gives the figure before this change)
 * @module
 */

import { Lab } from "../lab/lab.ts";
import { COMPILE_FLAGS, type DaemonProcess, startDaemon, waitFor } from "../daemon/harness.ts";
import { ApiServerProcess } from "../kube/apiserver_proc.ts";
import { serviceIp, serviceName } from "./kube_scale.ts";
import { startLabKnot } from "../support/lab_resolvers.ts";
import { type LoadReport, startRestartLoad } from "../support/restart_load.ts";
import { startSocketActivated } from "../support/socket_activation.ts";

const DNS = "169.254.20.10";
const UPSTREAM = "198.18.100.2";

const arg = (name: string, def: string) =>
  Deno.args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? def;
const modes = arg("mode", "socket,reuseport,plain").split(",");
const restarts = Number(arg("restarts", "3"));
const services = Number(arg("services", "10000"));
/** The svcgate to run: this checkout's by default, another's main.ts for a "before" figure. */
const MAIN = arg("main", new URL("../../main.ts", import.meta.url).pathname);
/** More svcgate flags, e.g. `--daemon-args="--dns-workers 1"`. */
const extra = arg("daemon-args", "").split(" ").filter(Boolean);
const V8 = COMPILE_FLAGS.filter((f) => f.startsWith("--v8-flags="));

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function ready(lab: Lab, port: number): Promise<boolean> {
  const r = await lab.exec(lab.node.ns, [
    ...["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-m", "2"],
    `http://127.0.0.1:${port}/readyz`,
  ]);
  return r.stdout === "200";
}

/** Epoch ms when the first right answer arrived to a query sent at or after `since` (dig loop). */
async function firstAnswer(lab: Lab, name: string, want: string, since: number): Promise<number> {
  for (;;) {
    const sent = Date.now();
    const r = await lab.exec(lab.node.ns, [
      "dig",
      `@${DNS}`,
      name,
      "+short",
      "+tries=1",
      "+time=5",
    ]);
    if (sent >= since && r.stdout.trim() === want) return Date.now();
    if (Date.now() - since > 120_000) return NaN;
  }
}

/** Datagrams each UDP socket of the node dropped (`ss` skmem d), by local address, and in all. */
async function udpDrops(lab: Lab): Promise<string> {
  const ss = (await lab.exec(lab.node.ns, ["ss", "-uamn"])).stdout.split("\n");
  const out: string[] = [];
  for (let i = 0; i + 1 < ss.length; i++) {
    const d = ss[i + 1].match(/\bd(\d+)\)/);
    const local = ss[i].trim().split(/\s+/)[3];
    if (d && local) out.push(`${local}=${d[1]}`);
  }
  const snmp = (await lab.exec(lab.node.ns, ["cat", "/proc/net/snmp"])).stdout.split("\n")
    .filter((l) => l.startsWith("Udp:"));
  const rcvbuf = snmp.length === 2
    ? snmp[1].split(" ")[snmp[0].split(" ").indexOf("RcvbufErrors")]
    : "?";
  return `sockets ${out.join(" ")}; RcvbufErrors ${rcvbuf}`;
}

async function runMode(
  mode: string,
): Promise<{ report: LoadReport; firsts: number[]; load: string }> {
  const lab = await Lab.create({ pods: 1, clientHost: true });
  const dir = await Deno.makeTempDir({ prefix: "svcgate-restart-bench-" });
  let api: ApiServerProcess | null = null;
  try {
    await Deno.chmod(dir, 0o755);
    await lab.addNodeAddress(`${DNS}/32`);
    await startLabKnot(
      lab,
      lab.client!.ns,
      UPSTREAM,
      ["www.example.org. 60 IN A 198.18.100.80"],
      dir,
    );
    api = await ApiServerProcess.spawn(lab, lab.node.ns);
    const spec = { services, endpointsPerService: 10, namespaces: 100 };
    await api.loadScale(spec);
    const s = serviceName(spec, 42);
    const cluster = `${s.name}.${s.namespace}.svc.cluster.local`;
    const expect = { [cluster]: serviceIp(42), "www.example.org": "198.18.100.80" };
    const flags = [
      ...["--kubeconfig", api.kubeconfig, "--state-dir", `${dir}/state`],
      ...["--service-cidr", "198.19.0.0/16", "--cluster-cidr", "198.18.0.0/16"],
      ...["--dns-bind-address", `${DNS}:53`, "--upstream", UPSTREAM],
      ...["--dns-allow-recursion", `${DNS}/32,127.0.0.0/8`, "--log-format", "json"],
      ...extra,
    ];
    const spawnLoad = () =>
      startRestartLoad(
        (cmd) => lab.spawn(lab.node.ns, cmd, { stdout: "piped", stderr: "inherit" }),
        { server: DNS, port: 53, expect, dir },
      );
    const firsts: number[] = [];
    const loadAvg = async () =>
      (await Deno.readTextFile("/proc/loadavg")).split(" ").slice(0, 3).join(" ");
    let loadDuring = "";
    if (mode === "socket") {
      const svcgate = await startSocketActivated(lab, {
        argv: [Deno.execPath(), "run", "-A", ...V8, MAIN, "run", ...flags],
        address: DNS,
        port: 53,
        dir,
        env: { MALLOC_ARENA_MAX: "2" },
      });
      try {
        await waitFor("svcgate ready", () => ready(lab, 10256), 600_000, svcgate.log);
        await sleep(3000); // the snapshot is saved
        const load = await spawnLoad();
        await sleep(2000);
        for (let i = 0; i < restarts; i++) {
          const at = Date.now();
          await svcgate.restart();
          firsts.push(await firstAnswer(lab, cluster, serviceIp(42), at) - at);
          await waitFor("svcgate ready", () => ready(lab, 10256), 600_000, svcgate.log);
          loadDuring = await loadAvg();
          await sleep(3000);
        }
        console.error(`socket: UDP drops before the load stops: ${await udpDrops(lab)}`);
        return { report: await load.finish(), firsts, load: loadDuring };
      } finally {
        await svcgate.stop();
      }
    }
    const overlap = mode === "reuseport";
    const start = (n: number): DaemonProcess =>
      startDaemon(lab, {
        program: ["run", "-A", ...V8, MAIN],
        healthzPort: 10256 + (n % 2),
        args: [...flags, ...(overlap ? ["--reuse-port", "--dns-lameduck", "2s"] : [])],
      });
    let current = start(0);
    try {
      await current.waitReady(600_000);
      await sleep(3000);
      const load = await spawnLoad();
      await sleep(2000);
      for (let i = 1; i <= restarts; i++) {
        if (overlap) {
          const next = start(i);
          await next.waitReady(600_000);
          const at = Date.now();
          const first = firstAnswer(lab, cluster, serviceIp(42), at);
          await current.stop("SIGTERM");
          firsts.push(await first - at);
          current = next;
        } else {
          const at = Date.now();
          await current.stop("SIGTERM");
          current = start(i);
          firsts.push(await firstAnswer(lab, cluster, serviceIp(42), at) - at);
          await current.waitReady(600_000);
        }
        loadDuring = await loadAvg();
        await sleep(3000);
      }
      console.error(`${mode}: UDP drops before the load stops: ${await udpDrops(lab)}`);
      return { report: await load.finish(), firsts, load: loadDuring };
    } finally {
      await current.stop();
    }
  } finally {
    await api?.close();
    await lab.destroy();
    await Deno.remove(dir, { recursive: true });
  }
}

const rows: string[] = [];
for (const mode of modes) {
  const started = (await Deno.readTextFile("/proc/loadavg")).split(" ").slice(0, 3).join(" ");
  const { report: r, firsts, load } = await runMode(mode);
  console.error(
    `${mode}: ${JSON.stringify({ ...r, check: { ...r.check, slow: r.check.slow.slice(0, 10) } })}`,
  );
  const { NOERROR = 0, ...others } = r.rcodes;
  void NOERROR;
  rows.push(
    `| ${mode} | ${r.sent} | ${r.lost} | ${
      JSON.stringify(others)
    } | ${r.check.wrong} | ${r.check.lost} | ${r.check.lateOver1s} | ${Math.round(r.maxMs)} | ${
      firsts.map((f) => Math.round(f)).join(", ")
    } | ${started} / ${load} |`,
  );
}
console.log(
  `\nRestart under load: ${services} services (Kubernetes mode), ${restarts} restarts, 2,000 qps (dnsperf) + a 200 qps answer checker`,
);
console.log(
  "| mode | sent | lost | other rcodes | wrong (checker) | lost (checker) | checker replies > 1 s | max reply ms | signal -> first right answer to a dig sent after it (ms) | load avg before / during |",
);
console.log("| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | --- | --- |");
for (const row of rows) console.log(row);
