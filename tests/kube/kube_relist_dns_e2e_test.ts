/**
 * The daemon in Kubernetes mode (`svcgate run --kubeconfig`, default flags) with 10,000 services
 * and 100,000 endpoints in the fake API server: a steady 500 DNS queries/s for one of them sees no
 * failure (1 s timeout) while the daemon relists everything, after a 410 and after the server's
 * history was reset ("Too large resource version": every object comes back at a new
 * resourceVersion and is read again). Latency is measured in tests/bench/dns_heavy_work_bench.ts.
 */

import { Lab, labTest } from "../lab/lab.ts";
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { startDaemon, waitFor } from "../daemon/harness.ts";
import { ApiServerProcess } from "./apiserver_proc.ts";
import { CLUSTER_10K, serviceName } from "../bench/kube_scale.ts";
import { formatStats, startDnsLoad, windowStats } from "../support/dns_load.ts";
import { epochMs } from "../bench/kube_daemon_probe.ts";

const DNS = "198.18.0.1";

labTest(
  "kube e2e: DNS answers 500 queries/s without a failure through relists of 10,000 services",
  async () => {
    const lab = await Lab.create({ pods: 1 });
    let api: ApiServerProcess | null = null;
    try {
      api = await ApiServerProcess.spawn(lab, lab.node.ns);
      await api.loadScale(CLUSTER_10K);
      const daemon = startDaemon(lab, {
        args: [
          ...["--service-cidr", "198.19.0.0/16", "--cluster-cidr", "198.18.0.0/24"],
          ...["--dns-bind-address", `${DNS}:53`, "--upstream", "127.0.0.1:1"],
          ...["--kubeconfig", api.kubeconfig, "--log-format", "json"],
        ],
      });
      await daemon.waitReady(300_000);
      const s = serviceName(CLUSTER_10K, 42);
      const load = startDnsLoad(
        (cmd) => lab.spawn(lab.node.ns, cmd, { stdout: "piped", stderr: "inherit" }),
        { server: DNS, port: 53, name: `${s.name}.${s.namespace}.svc.cluster.local` },
      );
      await new Promise((r) => setTimeout(r, 2000));
      const relisted = async (mark: number, why: string) =>
        await waitFor(
          `the slices to be relisted (${why})`,
          () =>
            daemon.log.slice(mark).some((l) =>
              l.includes('"listed"') && l.includes('"endpointslices"')
            ),
          120_000,
          daemon.log,
        );
      const from = epochMs();
      let mark = daemon.log.length;
      await api.call({ op: "compact" });
      await api.call({ op: "expireWatches" });
      await relisted(mark, "410");
      mark = daemon.log.length;
      await api.call({ op: "resetHistory" });
      await relisted(mark, "Too large resource version");
      await new Promise((r) => setTimeout(r, 2000));
      const to = epochMs();
      const stats = windowStats(await load.finish(), from, to);
      assert(stats.sent > 1000, `queries were sent: ${formatStats(stats)}`);
      assertEquals(stats.failed, 0, `failed queries (1 s timeout): ${formatStats(stats)}`);
      assertEquals(await daemon.stop(), 0, "daemon exits 0");
    } finally {
      await api?.close();
      await lab.destroy();
    }
  },
);
