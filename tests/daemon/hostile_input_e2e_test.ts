/**
 * Hostile manifest files against the whole daemon (`svcgate run --manifests DIR`, default flags)
 * in a lab node: each file dropped into the live folder while another file is edited is rejected
 * alone with one log line naming it; the edit applies; the healthy service keeps resolving and
 * routing; and the daemon's peak RSS stays within 64 MiB of its normal peak. DNS latency while the
 * heaviest files are read is measured by tests/bench/dns_heavy_work_bench.ts (a benchmark: its
 * failures at a 1 s timeout follow the machine's load).
 */

import { labTest } from "../lab/lab.ts";
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import {
  dig,
  httpGet,
  serviceManifest,
  startDaemon,
  waitFor,
  withLab,
  writeManifest,
} from "./harness.ts";
import { hostileFiles } from "../support/hostile_manifests.ts";
import { daemonMemory } from "../support/proc_memory.ts";

const DNS = "198.18.0.1";
const MiB = 2 ** 20;
const ARGS = [
  ...["--service-cidr", "198.19.0.0/16", "--cluster-cidr", "198.18.0.0/24"],
  ...["--dns-bind-address", `${DNS}:53`, "--upstream", "127.0.0.1:1"],
];

labTest(
  "daemon: each hostile file dropped in a live folder is rejected alone while an edit applies; RSS bounded",
  async () => {
    await withLab(2, async (lab, dir) => {
      const manifests = `${dir}/manifests`;
      await Deno.mkdir(manifests);
      const [pod0, pod1] = lab.pods;
      await writeManifest(manifests, "web.yaml", serviceManifest("web", "198.19.0.10", [pod0.ip]));
      await writeManifest(manifests, "api.yaml", serviceManifest("api", "198.19.0.20", [pod0.ip]));
      const daemon = startDaemon(lab, {
        args: [...ARGS, "--manifests", manifests, "--state-dir", `${dir}/state`],
      });
      await daemon.waitReady();
      const pid = daemon.child.pid;
      // The normal peak: after the start and a few ordinary edits.
      let target = pod0;
      const editApi = async () => {
        target = target === pod0 ? pod1 : pod0;
        await writeManifest(
          manifests,
          "api.yaml",
          serviceManifest("api", "198.19.0.20", [target.ip]),
        );
        await waitFor(
          `api's edit to route to ${target.name}`,
          async () => (await httpGet(lab, "http://198.19.0.20/")) === target.name,
          20_000,
          daemon.log,
        );
      };
      for (let i = 0; i < 3; i++) await editApi();
      const normalPeak = (await daemonMemory(pid)).hwm;

      for (const file of hostileFiles()) {
        const mark = daemon.log.length;
        const path = `${manifests}/${file.name}`;
        await Promise.all([file.write(manifests), editApi()]);
        await waitFor(
          `a log line naming ${file.name}`,
          () => daemon.log.slice(mark).some((l) => l.includes(path)),
          20_000,
          daemon.log,
        );
        const lines = daemon.log.slice(mark).filter((l) => l.includes(path));
        assertEquals(lines.length, 1, `log lines naming ${file.name}: ${lines.join("\n")}`);
        assert(file.reason.test(lines[0]), `${file.name}: ${lines[0]} matches ${file.reason}`);
        assertEquals(
          await httpGet(lab, "http://198.19.0.10/"),
          pod0.name,
          `web routes (${file.name})`,
        );
        assertEquals(
          (await dig(lab, DNS, "web.default.svc.cluster.local")).answers,
          ["198.19.0.10"],
          `web resolves (${file.name})`,
        );
        await Deno.remove(path);
      }
      const peak = (await daemonMemory(pid)).hwm;
      assert(
        peak <= normalPeak + 64 * MiB,
        `peak RSS ${(peak / MiB).toFixed(1)} MiB is within 64 MiB of the normal peak ` +
          `${(normalPeak / MiB).toFixed(1)} MiB`,
      );
      assertEquals(await daemon.stop(), 0, "daemon exits 0");
    });
  },
);
