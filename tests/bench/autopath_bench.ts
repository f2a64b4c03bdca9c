/**
 * The cost of one external-name lookup from a pod, with and without the search path walked on
 * the server: the real daemon (`svcgate run` on manifests) on 169.254.20.10:53 in a lab node, a
 * pod whose resolv.conf is kubelet's (`search default.svc.cluster.local svc.cluster.local
 * cluster.local`, `ndots:5`) that is an endpoint of a service in `default` (so svcgate knows its
 * namespace), knotd as the upstream (a root zone, in the lab), and glibc's getaddrinfo in a loop
 * (one process, N calls, each timed). Prints the queries svcgate received per lookup (its own
 * counters) and the lookup time's p50/p99.
 *
 *   deno run -A tests/bench/autopath_bench.ts [--lookups 1000] [--name www.example.org]
 *     [--main PATH/main.ts]   another tree's main.ts (the branch's base, for "before")
 *     [--modes on,off]        --autopath=true / --autopath=false ("none": pass neither flag)
 *
 * @module
 */

import { Lab } from "../lab/lab.ts";
import { COMPILE_FLAGS, startDaemon } from "../daemon/harness.ts";
import {
  buildResolvers,
  kubeletResolvConf,
  lookups,
  serviceManifest,
  settledRequests,
  startLabKnot,
} from "../support/lab_resolvers.ts";
import { quantile } from "./dns_helpers.ts";

function arg(name: string, fallback: string): string {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 && i + 1 < Deno.args.length ? Deno.args[i + 1] : fallback;
}

const LOOKUPS = Number(arg("lookups", "1000"));
const NAME = arg("name", "www.example.org");
const MAIN = arg("main", "");
const MODES = arg("modes", "on,off").split(",");
const DNS = "169.254.20.10";
const METRICS = "http://127.0.0.1:10256/metrics";
const UPSTREAM = "198.18.100.2";

const MANIFESTS = serviceManifest("default", "web", "198.19.0.10", "198.18.0.10");

const lab = await Lab.create({ pods: 1, clientHost: true });
const dir = await Deno.makeTempDir({ prefix: "svcgate-autopath-bench-" });
const rows: string[] = [];
const load = () => Deno.loadavg().map((l) => l.toFixed(2)).join(" ");
const loadBefore = load();
try {
  await Deno.chmod(dir, 0o755);
  const { glibc } = await buildResolvers(dir);
  if (!glibc) throw new Error("Cannot build the glibc lookup program: gcc is missing");
  await lab.addNodeAddress(`${DNS}/32`);
  await startLabKnot(lab, lab.client!.ns, UPSTREAM, [
    "www.example.org. 60 IN A 198.18.100.80",
    "www.example.org. 60 IN AAAA 2001:db8:100::80",
  ], dir);
  await lab.setResolvConf(lab.node.ns, `nameserver ${UPSTREAM}\n`);
  await lab.setResolvConf(lab.pods[0].ns, kubeletResolvConf("default", DNS));
  await Deno.mkdir(`${dir}/manifests`);
  await Deno.writeTextFile(`${dir}/manifests/web.yaml`, MANIFESTS);
  for (const mode of MODES) {
    const flags = mode === "none" ? [] : [`--autopath=${mode === "on"}`];
    const daemon = startDaemon(lab, {
      args: [
        ...["--manifests", `${dir}/manifests`, "--state-dir", `${dir}/state-${mode}`],
        ...["--service-cidr", "198.19.0.0/16", "--cluster-cidr", "198.18.0.0/24"],
        ...["--dns-bind-address", `${DNS}:53`, ...flags],
      ],
      ...(MAIN
        ? {
          program: [
            "run",
            "-A",
            ...COMPILE_FLAGS.filter((w) => w.startsWith("--v8-flags=")),
            MAIN,
          ],
        }
        : {}),
    });
    try {
      await daemon.waitReady(30_000);
      // Warm the forwarder's cache: every lookup then costs svcgate, not the upstream.
      await lookups(lab, lab.pods[0].ns, glibc, NAME, 5);
      const before = await settledRequests(lab, METRICS);
      const results = await lookups(lab, lab.pods[0].ns, glibc, NAME, LOOKUPS);
      const queries = (await settledRequests(lab, METRICS)) - before;
      const answers = new Set(results.map((r) => r.result));
      const us = results.map((r) => r.us).sort((a, b) => a - b);
      rows.push([
        (MAIN ? "base " : "") + (mode === "none" ? "default" : `--autopath=${mode === "on"}`),
        (queries / LOOKUPS).toFixed(2),
        (quantile(us, 0.5) / 1000).toFixed(3),
        (quantile(us, 0.99) / 1000).toFixed(3),
        [...answers].join(" | "),
      ].join("\t"));
    } finally {
      await daemon.stop();
    }
  }
} finally {
  await lab.destroy();
  await Deno.remove(dir, { recursive: true });
}
console.log(
  `\n${LOOKUPS} glibc lookups of ${NAME} from a pod (kubelet's resolv.conf), load average ` +
    `${loadBefore} before, ${load()} after\n`,
);
console.log(["svcgate", "queries/lookup", "p50 ms", "p99 ms", "answer"].join("\t"));
for (const r of rows) console.log(r);
