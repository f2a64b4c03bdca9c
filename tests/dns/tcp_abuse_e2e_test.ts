/**
 * Issue 20 end to end: the real daemon (`main.ts run` on manifests, default DNS settings) in a lab
 * node, and a "bad" client in a pod namespace that pipelines DNS queries over TCP for ~12 s and
 * never reads an answer (reconnecting whenever it is cut off). Meanwhile and afterwards a "good"
 * client in another pod asks over UDP and over fresh TCP connections and must always be answered;
 * the daemon's RSS must stay within 64 MB of its value before the attack; the server must close
 * the bad connection (the bad client sees a reset); /metrics must count the slow client; and
 * SIGTERM must stop the daemon within 5 s.
 *
 * Traffic stays inside the lab's namespaces (198.18.0.0/16, 198.19.0.0/16).
 * @module
 */

import { Lab, labTest } from "../lab/lab.ts";
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { startDaemon, waitFor } from "../daemon/harness.ts";
import { headlessManifest, WEB_MANIFEST } from "../support/dns_attack_lab.ts";

const DNS = "198.18.0.1";
const HEALTHZ = "http://127.0.0.1:10256";
const ATTACK_SECONDS = 12;
const RSS_LIMIT_MB = 64;
/** Past this much growth the attack is stopped early: the test has failed and the host matters. */
const RSS_ABORT_MB = 4 * RSS_LIMIT_MB;
/** Endpoints of the headless service the bad client asks for: ~1.1 KB answers. */
const BIG_ENDPOINTS = 64;

const ARGS = [
  "--service-cidr",
  "198.19.0.0/16",
  "--cluster-cidr",
  "198.18.0.0/24",
  "--dns-bind-address",
  `${DNS}:53`,
  "--upstream",
  "127.0.0.1:1",
  "--min-sync-period",
  "5ms",
];

const MANIFEST = [
  WEB_MANIFEST,
  headlessManifest("big", Array.from({ length: BIG_ENDPOINTS }, (_, i) => `198.18.0.${100 + i}`)),
].join("---\n");

/**
 * The bad client: pipelines A queries as fast as TCP lets it, never reads, reconnects when cut
 * off. Writes keep frames whole across partial sends, so the server never sees a torn stream.
 * Prints a JSON summary.
 */
const BAD_CLIENT = String.raw`
import json, socket, struct, sys, time
host, port, secs, name = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
qname = b"".join(bytes([len(l)]) + l.encode() for l in name.split(".")) + b"\0"
def frame(i):
    m = struct.pack(">HHHHHH", i & 0xFFFF, 0x0100, 1, 0, 0, 0) + qname + struct.pack(">HH", 1, 1)
    return struct.pack(">H", len(m)) + m
batch = memoryview(b"".join(frame(i) for i in range(1000)))
out = {"connections": 0, "resets": 0, "queries": 0, "firstCutSeconds": None, "errors": []}
t0 = time.monotonic()
end = t0 + secs
while time.monotonic() < end:
    s = socket.create_connection((host, port), timeout=2)
    out["connections"] += 1
    s.settimeout(0.25)
    off = 0
    try:
        while time.monotonic() < end:
            try:
                off += s.send(batch[off:])
            except socket.timeout:
                continue
            if off == len(batch):
                off = 0
                out["queries"] += 1000
    except (ConnectionResetError, BrokenPipeError) as e:
        out["resets"] += 1
        if out["firstCutSeconds"] is None:
            out["firstCutSeconds"] = round(time.monotonic() - t0, 2)
        if len(out["errors"]) < 3:
            out["errors"].append(repr(e))
    finally:
        s.close()
print(json.dumps(out), flush=True)
`;

/** Resident memory of a process, in MB, from /proc/<pid>/status. */
async function rssMb(pid: number): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  const kb = /^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1];
  if (!kb) throw new Error(`No VmRSS in /proc/${pid}/status`);
  return Number(kb) / 1024;
}

/** One dig from a namespace; returns the answers, or a description of the failure. */
async function ask(
  lab: Lab,
  ns: string,
  name: string,
  tcp: boolean,
): Promise<{ ok: boolean; answers: string[]; detail: string }> {
  const r = await lab.exec(ns, [
    ...["dig", `@${DNS}`, name, "A", "+tries=1", "+time=2", "+nocookie", "+short"],
    ...(tcp ? ["+tcp"] : []),
  ]);
  const answers = r.stdout.split("\n").map((l) => l.trim()).filter(Boolean);
  const ok = r.code === 0 && answers.length > 0 && !answers[0].startsWith(";;");
  return { ok, answers, detail: `exit ${r.code}: ${(r.stdout + r.stderr).trim().slice(0, 200)}` };
}

async function metric(lab: Lab, name: string): Promise<number> {
  const r = await lab.exec(lab.node.ns, ["curl", "-s", "-m", "2", `${HEALTHZ}/metrics`]);
  return Number(new RegExp(`^${name} (\\d+)`, "m").exec(r.stdout)?.[1] ?? "0");
}

labTest(
  "dns: a TCP client that pipelines and never reads is cut off; memory stays bounded, others are answered, SIGTERM works",
  async () => {
    const lab = await Lab.create({ pods: 2 });
    const dir = await Deno.makeTempDir({ prefix: "svcgate-tcp-abuse-" });
    const [bad, good] = lab.pods;
    let daemon: ReturnType<typeof startDaemon> | null = null;
    try {
      await Deno.mkdir(`${dir}/manifests`);
      await Deno.writeTextFile(`${dir}/manifests/services.yaml`, MANIFEST);
      daemon = startDaemon(lab, {
        args: [...ARGS, "--manifests", `${dir}/manifests`, "--state-dir", `${dir}/state`],
      });
      await daemon.waitReady();
      const pid = daemon.child.pid;
      assertEquals(
        (await Deno.readTextFile(`/proc/${pid}/comm`)).trim(),
        "deno",
        `process ${pid} is the daemon itself`,
      );
      const bigName = "big.default.svc.cluster.local";
      const webName = "web.default.svc.cluster.local";
      // Warm up both transports (and the fast path), then take the baseline.
      for (const tcp of [false, true]) {
        const w = await ask(lab, good.ns, webName, tcp);
        assertEquals(w.answers, ["198.19.0.10"], `warm-up ${tcp ? "TCP" : "UDP"}: ${w.detail}`);
        const b = await ask(lab, good.ns, bigName, tcp);
        assertEquals(b.answers.length, BIG_ENDPOINTS, `warm-up big: ${b.detail}`);
      }
      await new Promise((r) => setTimeout(r, 1000));
      const rssBefore = await rssMb(pid);

      const attacker = lab.spawn(bad.ns, [
        ...["python3", "-c", BAD_CLIENT, DNS, "53", String(ATTACK_SECONDS), bigName],
      ], { stdout: "piped", stderr: "piped" });
      const attackerOutput = attacker.output();
      const attackEnd = performance.now() + ATTACK_SECONDS * 1000;

      // The good client asks all along the attack, alternating UDP and fresh TCP connections.
      let rssMax = rssBefore;
      let aborted = false;
      const failures: string[] = [];
      let asked = 0;
      const sampler = (async () => {
        while (performance.now() < attackEnd + 1000) {
          rssMax = Math.max(rssMax, await rssMb(pid).catch(() => rssMax));
          if (!aborted && rssMax - rssBefore > RSS_ABORT_MB) {
            aborted = true;
            try {
              attacker.kill("SIGKILL");
            } catch { /* gone */ }
          }
          await new Promise((r) => setTimeout(r, 200));
        }
      })();
      while (performance.now() < attackEnd) {
        const tcp = asked % 2 === 1;
        const r = await ask(lab, good.ns, webName, tcp);
        asked++;
        if (!r.ok || r.answers[0] !== "198.19.0.10") {
          failures.push(`${tcp ? "TCP" : "UDP"} at ${asked}: ${r.detail}`);
        }
      }
      const out = await attackerOutput;
      await sampler;
      const attack = JSON.parse(new TextDecoder().decode(out.stdout) || "{}") as {
        connections?: number;
        resets?: number;
        queries?: number;
        firstCutSeconds?: number | null;
      };
      // After the attack: still answering, both ways.
      const afterUdp = await ask(lab, good.ns, bigName, false);
      const afterTcp = await ask(lab, good.ns, bigName, true);
      const rssAfter = await rssMb(pid);
      let slow = 0;
      await waitFor(
        "svcgate_dns_tcp_slow_clients_total >= 1 on /metrics",
        async () => (slow = await metric(lab, "svcgate_dns_tcp_slow_clients_total")) >= 1,
        5_000,
      ).catch(() => {});
      const slowLogLines = daemon.log.filter((l) =>
        l.includes("stopped reading") && l.includes(bad.ip)
      );
      const t0 = performance.now();
      try {
        daemon.child.kill("SIGTERM");
      } catch { /* exited already */ }
      const exit = await Promise.race([
        daemon.child.status.then((s) => s.code),
        new Promise<null>((r) => setTimeout(() => r(null), 5_000)),
      ]);
      const stopMs = performance.now() - t0;

      const summary = {
        rssBeforeMb: Math.round(rssBefore),
        rssMaxMb: Math.round(rssMax),
        rssAfterMb: Math.round(rssAfter),
        aborted,
        attack,
        goodAsked: asked,
        goodFailures: failures.length,
        slowClientsMetric: slow,
        slowLogLines: slowLogLines.length,
        sigtermExit: exit,
        sigtermMs: Math.round(stopMs),
      };
      console.log(`tcp abuse: ${JSON.stringify(summary)}`);
      const context = `\n${JSON.stringify(summary)}\n--- svcgate log ---\n${
        daemon.log.slice(-30).join("\n")
      }\n--- bad client stderr ---\n${new TextDecoder().decode(out.stderr).slice(-2000)}`;

      assert(
        rssMax - rssBefore <= RSS_LIMIT_MB,
        `daemon RSS grew from ${rssBefore.toFixed(0)} MB to ${
          rssMax.toFixed(0)
        } MB during the attack (limit +${RSS_LIMIT_MB} MB)${context}`,
      );
      assert(asked >= 5, `the good client asked only ${asked} times${context}`);
      assertEquals(failures, [], `good client answers during the attack${context}`);
      assert(
        afterUdp.ok && afterUdp.answers.length === BIG_ENDPOINTS,
        `UDP after: ${afterUdp.detail}`,
      );
      assert(
        afterTcp.ok && afterTcp.answers.length === BIG_ENDPOINTS,
        `TCP after: ${afterTcp.detail}`,
      );
      assert(
        (attack.resets ?? 0) >= 1,
        `the server never closed the bad client's connection${context}`,
      );
      assert(slow >= 1, `svcgate_dns_tcp_slow_clients_total is ${slow}${context}`);
      // One address, one log line a minute, however often it was cut off.
      assertEquals(slowLogLines.length, 1, `slow-client log lines for ${bad.ip}${context}`);
      assertEquals(exit, 0, `exit code within 5 s of SIGTERM (null: still running)${context}`);
    } finally {
      // A daemon still running (the old, wedged one) is SIGKILLed by the lab's teardown.
      await lab.destroy();
      if (daemon) await daemon.child.status.catch(() => {});
      await Deno.remove(dir, { recursive: true });
    }
  },
);
