/**
 * Issue 20 end to end: the real daemon (`svcgate run` on manifests, the default DNS limits) in a
 * lab node, a "bad" client pod attacking it and a "good" client pod that must always be answered
 * (tests/support/dns_attack_lab.ts). One daemon lives through, in turn:
 * - amplification: ANY for a 200-endpoint headless service over UDP is truncated to the question
 *   (response/request <= 2x; it is 1.0x), and real clients still resolve: dig and glibc retry
 *   over TCP and get all 200; musl 1.2.3 (no TCP retry before 1.2.4) resolves names whose answer
 *   fits and gets the 29 records that fit in 512 bytes for the truncated one (an A question's
 *   truncated answer keeps what fits; only ANY's is empty);
 * - 300 keep-alive + 2,000 idle + 2,000 slowloris TCP connections: the good client's fresh TCP
 *   queries (and UDP ones) all answered, RSS within +64 MB, the limits counted on /metrics;
 * - two connections streaming 64 KB queries whose owners walk 8,000-pointer chains, then two
 *   streaming 64 KB queries of flat records: the good client's UDP queries all answered (p99
 *   printed; tests/bench/dns_attack_bench.ts reports it on a quiet machine);
 * - SIGTERM while the pointer streams and the connections attack: exit 0 within 5 s.
 * The never-reading client is tests/dns/tcp_abuse_e2e_test.ts's.
 *
 * Traffic stays inside the lab's namespaces (198.18.0.0/16, 198.19.0.0/16).
 * @module
 */

import { labTest } from "../lab/lab.ts";
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { probeSummary } from "../support/dns_probe.ts";
import {
  attack,
  ATTACK_DNS,
  BIG_ENDPOINTS,
  BIG_NAME,
  memoryMiB,
  metricValue,
  MID_ENDPOINTS,
  MID_NAME,
  probe,
  rssSampler,
  sigterm,
  startAttackStage,
  WEB_NAME,
} from "../support/dns_attack_lab.ts";

const RSS_LIMIT_MIB = 64;
const PROBE_SECONDS = 6;
/** The bad client ramps up this long before the good client starts asking. */
const RAMP_MS = 3000;
const GETADDRINFO_C = new URL("../support/getaddrinfo.c", import.meta.url).pathname;

labTest(
  "dns under attack: no client can wedge, starve or amplify through svcgate",
  async () => {
    const stage = await startAttackStage();
    const dir = await Deno.makeTempDir({ prefix: "svcgate-dns-attack-test-" });
    const report: Record<string, unknown> = {};
    const context = () =>
      `\n${JSON.stringify(report)}\n--- svcgate log ---\n${stage.daemon.log.slice(-30).join("\n")}`;
    try {
      const { lab, good } = stage;
      // --- Amplification, and the clients that must still resolve.
      for (const [flag, query] of [["+noedns", 47], ["+bufsize=1232", 58]] as const) {
        const r = await lab.exec(good.ns, [
          ...["dig", `@${ATTACK_DNS}`, BIG_NAME, "ANY", "+notcp", "+ignore", "+nocookie"],
          ...["+tries=1", "+time=2", flag],
        ]);
        const size = Number(/MSG SIZE\s+rcvd: (\d+)/.exec(r.stdout)?.[1] ?? NaN);
        report[`ANY ${flag}`] = `${query} B -> ${size} B (${(size / query).toFixed(2)}x)`;
        assert(/;; flags: qr aa tc/.test(r.stdout), `ANY ${flag} not truncated:\n${r.stdout}`);
        assert(/ANSWER: 0,/.test(r.stdout), `ANY ${flag} carries records:\n${r.stdout}`);
        assert(size / query <= 2, `ANY ${flag}: ${query} B query, ${size} B answer${context()}`);
      }
      const dig = await lab.exec(good.ns, [
        ...["dig", `@${ATTACK_DNS}`, BIG_NAME, "A", "+nocookie", "+tries=1", "+time=2"],
      ]);
      assert(dig.stdout.includes("Truncated, retrying in TCP mode"), dig.stdout);
      assertEquals(/ANSWER: (\d+),/.exec(dig.stdout)?.[1], String(BIG_ENDPOINTS), "dig's answers");
      await lab.setResolvConf(good.ns, `nameserver ${ATTACK_DNS}\noptions attempts:1 timeout:2\n`);
      const glibc = await lab.exec(good.ns, ["getent", "ahostsv4", BIG_NAME]);
      const glibcAddresses = new Set(
        glibc.stdout.split("\n").filter(Boolean).map((l) => l.split(" ")[0]),
      );
      assertEquals(glibcAddresses.size, BIG_ENDPOINTS, `glibc (getent ahostsv4) ${glibc.stderr}`);
      const build = await lab.exec(good.ns, [
        ...["musl-gcc", "-static", "-O2", "-o", `${dir}/getaddrinfo-musl`, GETADDRINFO_C],
      ]);
      assertEquals(build.code, 0, `musl-gcc: ${build.stderr}`);
      const musl = async (name: string) =>
        (await lab.exec(good.ns, [`${dir}/getaddrinfo-musl`, name])).stdout.trim();
      // musl 1.2.3 does not retry over TCP: it resolves with what fits in the truncated answer
      // (12 header + 47 question + 29 records of 16 bytes), as it did with CoreDNS.
      assertEquals(await musl(WEB_NAME), "addresses 1", "musl web");
      assertEquals(await musl(MID_NAME), `addresses ${MID_ENDPOINTS}`, "musl mid");
      assertEquals(await musl(BIG_NAME), "addresses 29", "musl big");

      await new Promise((r) => setTimeout(r, 500));
      const idle = (await memoryMiB(stage.pid)).rss;
      report.idleRssMiB = Math.round(idle);

      // --- The connections: keep-alive, idle and slowloris, 4,300 of them from one address.
      {
        const sampler = rssSampler(stage.pid);
        const bad = attack(
          stage,
          { keepalive: 300, idle: 2000, slowloris: 2000 },
          (RAMP_MS + PROBE_SECONDS * 1000) / 1000 + 1,
        );
        await new Promise((r) => setTimeout(r, RAMP_MS));
        const seen = await probe(stage, { seconds: PROBE_SECONDS, udpQps: 100, tcp: true });
        const populations = await bad;
        const peak = await sampler.stop();
        const [udp, tcp] = [probeSummary(seen.udp!), probeSummary(seen.tcp!)];
        report.connections = {
          udp,
          tcp,
          peakRssMiB: Math.round(peak),
          bad: populations.map((p) =>
            `${p.kind}: ${p.peakOpen} open at most, ${p.connects} accepted`
          ),
        };
        assert(tcp.sent >= 20, `the good client asked only ${tcp.sent} times over TCP${context()}`);
        assertEquals(tcp.failures, {}, `good client's fresh TCP queries${context()}`);
        assertEquals(udp.failures, {}, `good client's UDP queries${context()}`);
        assert(
          peak - idle <= RSS_LIMIT_MIB,
          `RSS ${idle.toFixed(0)} -> ${peak.toFixed(0)} MiB${context()}`,
        );
        assert(
          populations.every((p) => p.connects > 0),
          `the bad client never connected${context()}`,
        );
        // The per-address limit was what stopped it, and it shows.
        const perIp = await metricValue(
          stage,
          "svcgate_dns_limit_hits_total",
          'limit="tcp_clients_per_ip"',
        );
        assert(perIp > 0, `tcp_clients_per_ip hits: ${perIp}${context()}`);
        const lines = stage.daemon.log.filter((l) => l.includes("tcp_clients_per_ip"));
        assert(lines.length === 1, `${lines.length} log lines for the per-IP limit${context()}`);
      }

      // --- 64 KB messages streamed over TCP: pointer chains, then flat records.
      for (const kind of ["stream-pointer", "stream-flat"] as const) {
        const sampler = rssSampler(stage.pid);
        const bad = attack(stage, { [kind]: 2 }, (RAMP_MS + PROBE_SECONDS * 1000) / 1000 + 1);
        await new Promise((r) => setTimeout(r, RAMP_MS));
        const seen = await probe(stage, { seconds: PROBE_SECONDS, udpQps: 200 });
        const populations = await bad;
        const peak = await sampler.stop();
        const udp = probeSummary(seen.udp!);
        report[kind] = { udp, peakRssMiB: Math.round(peak), messages: populations[0].sent };
        assert(populations[0].sent >= 50, `the bad client sent ${populations[0].sent}${context()}`);
        assertEquals(udp.failures, {}, `good client's UDP queries under ${kind}${context()}`);
        assert(
          peak - idle <= RSS_LIMIT_MIB,
          `RSS ${idle.toFixed(0)} -> ${peak.toFixed(0)} MiB${context()}`,
        );
      }
      const pointers = await metricValue(
        stage,
        "svcgate_dns_limit_hits_total",
        'limit="compression_pointers"',
      );
      assert(pointers > 0, `compression_pointers hits: ${pointers}${context()}`);

      // --- SIGTERM in the middle of an attack.
      const bad = attack(stage, { "stream-pointer": 2, keepalive: 300, slowloris: 2000 }, 8)
        .catch(() => []);
      await new Promise((r) => setTimeout(r, RAMP_MS));
      const stop = await sigterm(stage, 5000);
      report.sigterm = stop;
      await bad;
      console.log(`dns attack: ${JSON.stringify(report)}`);
      assertEquals(
        stop.code,
        0,
        `exit code within 5 s of SIGTERM (null: still running)${context()}`,
      );
    } finally {
      await stage.destroy();
      await Deno.remove(dir, { recursive: true });
    }
  },
);

labTest(
  "dns under attack: --dns-rrl limits UDP responses per source; other clients are not limited",
  async () => {
    const RATE = 50;
    const stage = await startAttackStage(["--dns-rrl", String(RATE)]);
    const dir = await Deno.makeTempDir({ prefix: "svcgate-dns-rrl-test-" });
    try {
      await Deno.chmod(dir, 0o755);
      await Deno.writeTextFile(`${dir}/queries`, `${WEB_NAME} A\n`);
      // The bad client asks 1,000 a second for 2 s; the good one 20 a second meanwhile.
      const flood = stage.lab.exec(stage.bad.ns, [
        ...["dnsperf", "-s", ATTACK_DNS, "-d", `${dir}/queries`, "-l", "2", "-Q", "1000"],
        ...["-t", "1", "-q", "10000"],
      ]);
      const seen = await probe(stage, { seconds: 2, udpQps: 20 });
      const out = (await flood).stdout;
      const num = (re: RegExp) => Number(re.exec(out)?.[1] ?? NaN);
      const sent = num(/Queries sent:\s+(\d+)/);
      const completed = num(/Queries completed:\s+(\d+)/);
      const good = probeSummary(seen.udp!);
      const hits = await metricValue(stage, "svcgate_dns_limit_hits_total", 'limit="rrl"');
      const lines = stage.daemon.log.filter((l) => l.includes("limit rrl"));
      console.log(`dns rrl: ${JSON.stringify({ sent, completed, hits, good })}`);
      assertEquals(good.failures, {}, "the good client's queries");
      assert(sent >= 1500, `dnsperf sent ${sent}:\n${out}`);
      // A second's burst plus 50 a second answered, and every 2nd of the rest slipped (TC):
      // about half the flood, never all of it.
      assert(completed < sent * 0.75, `${completed} of ${sent} answered:\n${out}`);
      assert(completed > sent * 0.4, `${completed} of ${sent} answered (no slips?):\n${out}`);
      assert(hits >= sent - completed, `rrl hits ${hits}, ${sent - completed} lost`);
      assertEquals(lines.length, 1, `rrl log lines:\n${lines.join("\n")}`);
      assert(lines[0].includes(`"${stage.bad.ip}"`), lines[0]);
    } finally {
      await stage.destroy();
      await Deno.remove(dir, { recursive: true });
    }
  },
);
