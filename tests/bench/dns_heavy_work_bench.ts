/**
 * Does DNS wait for heavy work? The real daemon in a lab node answers a steady 500 queries/s for
 * a healthy name (UDP, 1 s timeout, tests/support/dns_load.ts) while it does heavy work, and each
 * phase reports the queries sent during it: failures, p50, p99, max; and the daemon's peak RSS.
 *
 * - `--mode=manifests` (default): a 100,000-document file (wrong kinds), then a 50 MB file of
 *   text, then a Service with 10,000 ports and an EndpointSlice with 100,000 endpoints are dropped
 *   into the manifest folder, one after the other;
 * - `--mode=kube`: 10,000 services and 100,000 endpoints in the fake API server; then (a) every
 *   watch expires (410) and the daemon relists, (b) the server's history is reset (every object at
 *   a new, lower resourceVersion: "Too large resource version", a relist that re-reads every
 *   object).
 *
 * Run: `deno run -A tests/bench/dns_heavy_work_bench.ts [--mode=manifests|kube] [--bundle]
 *   [--daemon-args="--dns-workers 1"]`
 * @module
 */

import { Lab } from "../lab/lab.ts";
import { COMPILE_FLAGS, type DaemonProcess, startDaemon, waitFor } from "../daemon/harness.ts";
import { ApiServerProcess } from "../kube/apiserver_proc.ts";
import { formatStats, type Sample, startDnsLoad, windowStats } from "../support/dns_load.ts";
import { daemonMemory } from "../support/proc_memory.ts";
import { epochMs } from "./kube_daemon_probe.ts";
import { serviceName } from "./kube_scale.ts";
import { hostileFiles } from "../support/hostile_manifests.ts";

const DNS = "198.18.0.1";
const MiB = 2 ** 20;

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

interface Phase {
  readonly name: string;
  readonly from: number;
  readonly to: number;
  readonly hwmAfter: number;
}

async function bundleProgram(): Promise<{ program: string[]; dir: string }> {
  const dir = await Deno.makeTempDir({ prefix: "svcgate-bench-" });
  const root = new URL("../..", import.meta.url).pathname;
  const built = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${root}deploy/bundle.ts`, `${dir}/svcgate`],
    stdout: "null",
  }).output();
  if (built.code !== 0) throw new Error(`Cannot bundle the daemon into ${dir}`);
  const program = ["run", ...COMPILE_FLAGS, `${dir}/svcgate/svcgate.js`];
  await new Deno.Command(Deno.execPath(), { args: [...program, "--help"], stdout: "null" })
    .output();
  return { program, dir };
}

async function writeByRename(dir: string, name: string, data: string | Uint8Array) {
  const tmp = `${dir}/.${name}.tmp`;
  if (typeof data === "string") await Deno.writeTextFile(tmp, data);
  else await Deno.writeFile(tmp, data);
  await Deno.rename(tmp, `${dir}/${name}`);
}

async function main(): Promise<void> {
  const mode = Deno.args.find((a) => a.startsWith("--mode="))?.slice(7) ?? "manifests";
  const daemonArgs = (Deno.args.find((a) => a.startsWith("--daemon-args="))
    ?.slice("--daemon-args=".length) ?? "").split(" ").filter(Boolean);
  const bundled = Deno.args.includes("--bundle") ? await bundleProgram() : null;
  const lab = await Lab.create({ pods: 1 });
  const dir = await Deno.makeTempDir({ prefix: "svcgate-heavy-" });
  let api: ApiServerProcess | null = null;
  let daemon: DaemonProcess | null = null;
  const phases: Phase[] = [];
  let samples: Sample[] = [];
  try {
    const base = [
      ...["--service-cidr", "198.19.0.0/16", "--cluster-cidr", "198.18.0.0/24"],
      ...["--dns-bind-address", `${DNS}:53`, "--upstream", "127.0.0.1:1", "--log-format", "json"],
      ...daemonArgs,
    ];
    let name: string;
    const manifests = `${dir}/manifests`;
    if (mode === "kube") {
      api = await ApiServerProcess.spawn(lab, lab.node.ns);
      const spec = { services: 10_000, endpointsPerService: 10, namespaces: 100 };
      await api.loadScale(spec);
      const s = serviceName(spec, 42);
      name = `${s.name}.${s.namespace}.svc.cluster.local`;
      daemon = startDaemon(lab, {
        ...(bundled ? { program: bundled.program } : {}),
        args: [...base, "--kubeconfig", api.kubeconfig],
      });
      await daemon.waitReady(600_000);
    } else {
      await Deno.mkdir(manifests);
      await writeByRename(
        manifests,
        "web.yaml",
        `apiVersion: v1\nkind: Service\nmetadata: { name: web }\nspec:\n  clusterIP: 198.19.0.10\n` +
          `  ports: [{ port: 80, targetPort: 8080 }]\n---\napiVersion: v1\nkind: Endpoints\n` +
          `metadata: { name: web }\nsubsets: [{ addresses: [{ ip: "${
            lab.pods[0].ip
          }" }], ports: [{ port: 8080 }] }]\n`,
      );
      name = "web.default.svc.cluster.local";
      daemon = startDaemon(lab, {
        ...(bundled ? { program: bundled.program } : {}),
        args: [...base, "--manifests", manifests, "--state-dir", `${dir}/state`],
      });
      await daemon.waitReady(60_000);
    }
    const pid = daemon.child.pid;
    const load = startDnsLoad(
      (cmd) => lab.spawn(lab.node.ns, cmd, { stdout: "piped", stderr: "inherit" }),
      { server: DNS, port: 53, name },
    );
    await sleep(3000);
    const phase = async (label: string, act: () => Promise<void>) => {
      const from = epochMs();
      await act();
      const to = epochMs();
      phases.push({ name: label, from, to, hwmAfter: (await daemonMemory(pid)).hwm });
      console.error(`${label}: ${((to - from) / 1000).toFixed(1)} s`);
    };
    const logged = (mark: number, pred: (l: string) => boolean, timeoutMs = 120_000) =>
      waitFor("the daemon to log it", () => daemon!.log.slice(mark).some(pred), timeoutMs);
    await phase("idle, 5 s", () => sleep(5000));
    if (mode === "kube") {
      await phase("relist after 410 (10,000 services, 10,000 slices)", async () => {
        const mark = daemon!.log.length;
        await api!.call({ op: "compact" });
        await api!.call({ op: "expireWatches" });
        await logged(mark, (l) => l.includes('"listed"') && l.includes("endpointslices"));
        await sleep(3000);
      });
      await phase("relist after a history reset (every object re-read)", async () => {
        const mark = daemon!.log.length;
        await api!.call({ op: "resetHistory" });
        await logged(mark, (l) => l.includes('"listed"') && l.includes("endpointslices"), 60_000)
          .catch((e) => console.error(`no relist seen: ${e.message}`));
        await sleep(3000);
      });
    } else {
      for (const file of hostileFiles()) {
        if (!file.bench) continue;
        await phase(file.label, async () => {
          const mark = daemon!.log.length;
          await file.write(manifests);
          await logged(mark, (l) => l.includes(file.name) || l.includes('"manifests loaded"'))
            .catch((e) => console.error(`${file.name}: ${e.message}`));
          // Until the daemon is done with it: the next "manifests loaded" line, or 60 s.
          await logged(mark, (l) => l.includes('"manifests loaded"'), 60_000)
            .catch(() => console.error(`${file.name}: no "manifests loaded" within 60 s`));
          await sleep(2000);
          await Deno.remove(`${manifests}/${file.name}`);
          await sleep(3000);
        });
      }
    }
    samples = await load.finish();
    const mem = await daemonMemory(pid);
    console.log("");
    console.log(
      `svcgate daemon (${bundled ? "bundle" : "deno run main.ts"}), mode ${mode}, flags added: ${
        daemonArgs.join(" ") || "(none)"
      }; DNS load: 500 queries/s for ${name}, UDP, 1 s timeout`,
    );
    const width = Math.max(...phases.map((p) => p.name.length));
    for (const p of phases) {
      console.log(
        `${p.name.padEnd(width)}  ${formatStats(windowStats(samples, p.from, p.to))}; ` +
          `peak RSS so far ${(p.hwmAfter / MiB).toFixed(1)} MiB`,
      );
    }
    console.log(
      `whole run: ${formatStats(windowStats(samples, 0, Infinity))}; ` +
        `RSS now ${(mem.rss / MiB).toFixed(1)} MiB, peak ${(mem.hwm / MiB).toFixed(1)} MiB`,
    );
  } finally {
    if (daemon) await daemon.stop();
    await api?.close();
    await lab.destroy();
    await Deno.remove(dir, { recursive: true });
    if (bundled) await Deno.remove(bundled.dir, { recursive: true });
  }
}

if (import.meta.main) await main();
