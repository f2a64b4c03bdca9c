/**
 * svcgate as the node's resolver (issue 15), end to end through `svcgate run` in a lab: the node's
 * own resolv.conf (/etc/netns/<node>/resolv.conf) points at 169.254.20.10 on the node's lo, as the
 * README tells operators, and glibc's `getent` on the node resolves a cluster name, an external
 * name, a name in a forwarded zone and a reverse name in a forwarded reverse zone, with default
 * flags plus `--upstream`/`--forward-zone` for the fake upstreams (knotd in the client host, one
 * for the world, one for corp.example). Also: who may recurse (the node's addresses, one added
 * while running; the client host is REFUSED), upstreams from a resolv.conf that names svcgate
 * itself and its re-read, an upstream outage (stale answers with TTL 30, new names SERVFAIL
 * within 2 s, fresh answers when it is back), /metrics under CoreDNS's names after a known set of
 * queries, and bad input (resolv.conf, --forward-zone) as clear errors.
 */

import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { Lab, labTest } from "../lab/lab.ts";
import { type DaemonProcess, startDaemon, waitFor } from "../daemon/harness.ts";
import { serviceManifest, startLabKnot } from "../support/lab_resolvers.ts";

const DNS = "169.254.20.10";
const METRICS = "http://127.0.0.1:10256/metrics";
/** The world's resolver (knotd in the client host). */
const WORLD = "198.18.100.2";
/** corp.example's servers (a second knotd in the client host). */
const CORP = "198.18.100.3";

const WORLD_RECORDS = [
  "www.example.org. 60 IN A 198.18.100.80",
  "www.example.org. 60 IN AAAA 2001:db8:100::80",
  "short.example.org. 2 IN A 198.18.100.82",
  "later.example.org. 60 IN A 198.18.100.83",
  "again.example.org. 60 IN A 198.18.100.84",
];
const CORP_RECORDS = [
  "host.corp.example. 60 IN A 198.18.100.53",
  "53.100.18.198.in-addr.arpa. 60 IN PTR host.corp.example.",
  // Only here: answered once the node's resolv.conf names this server instead of WORLD.
  "moved.example.org. 60 IN A 198.18.100.85",
];

/** The lab: node with 169.254.20.10 on lo, the node's resolv.conf at it, both knotds, manifests. */
async function nodeLab(dir: string): Promise<{ lab: Lab; world: Deno.ChildProcess }> {
  const lab = await Lab.create({ pods: 1, clientHost: true });
  await lab.addNodeAddress(`${DNS}/32`);
  const client = lab.client!.ns;
  const add = await lab.exec(client, ["ip", "addr", "add", `${CORP}/24`, "dev", "eth0"]);
  assertEquals(add.code, 0, add.stderr);
  await Deno.mkdir(`${dir}/world`);
  await Deno.mkdir(`${dir}/corp`);
  const world = await startLabKnot(lab, client, WORLD, WORLD_RECORDS, `${dir}/world`);
  await startLabKnot(lab, client, CORP, CORP_RECORDS, `${dir}/corp`);
  await lab.setResolvConf(lab.node.ns, `nameserver ${DNS}\noptions timeout:3 attempts:1\n`);
  await Deno.mkdir(`${dir}/manifests`);
  await Deno.writeTextFile(
    `${dir}/manifests/services.yaml`,
    serviceManifest("default", "web", "198.19.0.10", "198.18.0.10"),
  );
  return { lab, world };
}

/** `svcgate run` on the lab's manifests with these flags added. */
function run(lab: Lab, dir: string, flags: string[]): DaemonProcess {
  return startDaemon(lab, {
    args: [
      ...["--manifests", `${dir}/manifests`, "--state-dir", `${dir}/state`],
      ...["--service-cidr", "198.19.0.0/16", "--cluster-cidr", "198.18.0.0/24"],
      ...["--dns-bind-address", `${DNS}:53`],
      ...flags,
    ],
  });
}

/** `getent ahosts NAME` (or `getent hosts ADDRESS`) on the node: sorted addresses or names. */
async function getent(lab: Lab, what: "ahosts" | "hosts", key: string): Promise<string> {
  const r = await lab.exec(lab.node.ns, ["getent", what, key]);
  if (r.code !== 0) return `exit ${r.code}`;
  const col = what === "ahosts" ? 0 : 1;
  return [...new Set(r.stdout.trim().split("\n").map((l) => l.split(/\s+/)[col]))].sort().join(" ");
}

/** One dig on the node (or in `ns`): status, answers as `TTL DATA`, milliseconds taken. */
async function ask(
  lab: Lab,
  name: string,
  type = "A",
  extra: string[] = [],
  ns = lab.node.ns,
): Promise<{ status: string; answers: string[]; ms: number }> {
  const t0 = performance.now();
  const r = await lab.exec(ns, [
    ...["dig", `@${DNS}`, name, type, "+tries=1", "+time=3", "+nocookie", "+noall"],
    ...["+answer", "+comments"],
    ...extra,
  ]);
  const ms = performance.now() - t0;
  const status = r.stdout.match(/status: (\w+)/)?.[1] ?? `no answer (${r.stdout.trim()})`;
  const answers = r.stdout.split("\n").filter((l) => l && !l.startsWith(";")).map((l) => {
    const f = l.split(/\s+/);
    return `${f[1]} ${f.slice(4).join(" ")}`;
  });
  return { status, answers, ms };
}

// With the engine on the main thread (the default) and in a worker (changes cross as messages).
for (const workers of [0, 1]) {
  labTest(
    `node resolver e2e: the node resolves cluster, external and forwarded names (--dns-workers ${workers})`,
    async (t) => {
      const dir = await Deno.makeTempDir({ prefix: "svcgate-node-dns-" });
      const { lab } = await nodeLab(dir);
      const daemon = run(lab, dir, [
        ...["--upstream", WORLD, "--dns-workers", String(workers)],
        ...["--forward-zone", `corp.example=${CORP}`],
        ...["--forward-zone", `100.18.198.in-addr.arpa=${CORP}`],
      ]);
      try {
        await daemon.waitReady();
        await t.step("getent on the node: every kind of name answers", async () => {
          const cases: ["ahosts" | "hosts", string, string][] = [
            ["ahosts", "web.default.svc.cluster.local", "198.19.0.10"],
            ["ahosts", "www.example.org", "198.18.100.80 2001:db8:100::80"],
            ["ahosts", "host.corp.example", "198.18.100.53"],
            ["hosts", "198.18.100.53", "host.corp.example"],
            ["hosts", "198.19.0.10", "web.default.svc.cluster.local"],
          ];
          for (const [what, key, want] of cases) {
            assertEquals(await getent(lab, what, key), want, `getent ${what} ${key}`);
          }
        });
        await t.step("who may recurse: the node's addresses yes, the client host no", async () => {
          // From the node's own uplink address (neither loopback nor --cluster-cidr).
          assertEquals(
            (await ask(lab, "www.example.org", "A", ["-b", "198.18.100.1"])).status,
            "NOERROR",
          );
          const outside = await ask(lab, "www.example.org", "A", [], lab.client!.ns);
          assertEquals(outside.status, "REFUSED");
          // The allow-list applies to forwarded zones too.
          assertEquals(
            (await ask(lab, "host.corp.example", "A", [], lab.client!.ns)).status,
            "REFUSED",
          );
          // Cluster names answer everyone.
          assertEquals(
            (await ask(lab, "web.default.svc.cluster.local", "A", [], lab.client!.ns)).status,
            "NOERROR",
          );
        });
        await t.step(
          "an address the node gains while running may recurse within seconds",
          async () => {
            await lab.addNodeAddress("198.18.77.1/32");
            await waitFor(
              "the new node address to be allowed",
              async () =>
                (await ask(lab, "later.example.org", "A", ["-b", "198.18.77.1"])).status ===
                  "NOERROR",
              10_000,
              daemon.log,
            );
          },
        );
      } finally {
        await daemon.stop();
        await lab.destroy();
        await Deno.remove(dir, { recursive: true });
      }
    },
  );
}

labTest(
  "node resolver e2e: upstreams from a resolv.conf naming svcgate itself, re-read on change",
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "svcgate-node-dns-" });
    const { lab } = await nodeLab(dir);
    const conf = `${dir}/resolv-upstream.conf`;
    await Deno.writeTextFile(
      conf,
      `# the node's file\nnameserver ${DNS}\nnameserver ${WORLD}\nbogus line\n`,
    );
    const daemon = run(lab, dir, ["--resolv-conf", conf]);
    try {
      await daemon.waitReady();
      assertEquals(
        await getent(lab, "ahosts", "www.example.org"),
        "198.18.100.80 2001:db8:100::80",
      );
      assert(
        daemon.log.some((l) => l.includes(`${conf} line 4`) && l.includes('"bogus line"')),
        `a warning names the file and the line:\n${daemon.log.join("\n")}`,
      );
      assert(daemon.log.some((l) => l.includes(`upstreams=${WORLD}:53`)), daemon.log.join("\n"));
      // The node's resolv.conf changes (written beside and renamed over, as resolvconf does).
      await Deno.writeTextFile(`${conf}.new`, `nameserver ${DNS}\nnameserver ${CORP}\n`);
      await Deno.rename(`${conf}.new`, conf);
      await waitFor(
        "the change to be logged",
        () => daemon.log.some((l) => l.includes("DNS upstreams changed")),
        10_000,
        daemon.log,
      );
      assertEquals(await getent(lab, "ahosts", "moved.example.org"), "198.18.100.85");
      // A file that leaves nothing keeps the previous upstreams, with a warning.
      await Deno.writeTextFile(conf, `nameserver ${DNS}\n`);
      await waitFor(
        "the empty file to be refused",
        () => daemon.log.some((l) => l.includes("keeping the previous upstreams")),
        10_000,
        daemon.log,
      );
      assertEquals(
        await getent(lab, "ahosts", "again.example.org"),
        "exit 2",
        "CORP has no such name",
      );
      assertEquals((await ask(lab, "moved.example.org")).status, "NOERROR");
    } finally {
      await daemon.stop();
      await lab.destroy();
      await Deno.remove(dir, { recursive: true });
    }
  },
);

labTest(
  "node resolver e2e: an upstream outage serves stale answers, new names SERVFAIL fast",
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "svcgate-node-dns-" });
    const { lab, world } = await nodeLab(dir);
    const daemon = run(lab, dir, ["--upstream", WORLD]);
    try {
      await daemon.waitReady();
      const fresh = await ask(lab, "short.example.org");
      assertEquals([fresh.status, fresh.answers], ["NOERROR", ["2 198.18.100.82"]]);
      await ask(lab, "www.example.org");
      world.kill("SIGKILL");
      await world.status;
      await new Promise((r) => setTimeout(r, 2500)); // short.example.org's TTL is over
      for (let i = 0; i < 3; i++) {
        const stale = await ask(lab, "short.example.org");
        assertEquals(
          [stale.status, stale.answers],
          ["NOERROR", ["30 198.18.100.82"]],
          `stale ${i}`,
        );
      }
      const cached = await ask(lab, "www.example.org");
      assertEquals(cached.status, "NOERROR", "an unexpired answer still comes from the cache");
      const unknown = await ask(lab, "never.example.org");
      assertEquals(unknown.status, "SERVFAIL");
      assert(unknown.ms < 2000, `SERVFAIL took ${Math.round(unknown.ms)} ms`);
      // The upstream comes back: new names at once, the stale one fresh after the 30 s recheck.
      await startLabKnot(lab, lab.client!.ns, WORLD, WORLD_RECORDS, `${dir}/world`);
      assertEquals((await ask(lab, "later.example.org")).answers, ["60 198.18.100.83"]);
      await waitFor(
        "a fresh answer for the stale name",
        async () => {
          await new Promise((r) => setTimeout(r, 500));
          return (await ask(lab, "short.example.org")).answers[0]?.startsWith("2 ") ?? false;
        },
        40_000,
        daemon.log,
      );
    } finally {
      await daemon.stop();
      await lab.destroy();
      await Deno.remove(dir, { recursive: true });
    }
  },
);

/** The series of a metric family as `labels value`, sorted, from /metrics on the node. */
async function series(lab: Lab, name: string): Promise<string[]> {
  const r = await lab.exec(lab.node.ns, ["curl", "-s", "-m", "2", METRICS]);
  return r.stdout.split("\n").filter((l) => l.startsWith(`${name}{`)).map((l) =>
    l.slice(name.length)
  ).sort();
}

labTest(
  "node resolver e2e: /metrics counts a known set of queries under CoreDNS's names",
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "svcgate-node-dns-" });
    const { lab } = await nodeLab(dir);
    const daemon = run(lab, dir, ["--upstream", WORLD]);
    try {
      await daemon.waitReady();
      for (let i = 0; i < 5; i++) await ask(lab, "web.default.svc.cluster.local");
      for (let i = 0; i < 3; i++) await ask(lab, "nosuch.default.svc.cluster.local", "AAAA");
      for (let i = 0; i < 2; i++) await ask(lab, "www.example.org");
      await ask(lab, "web.default.svc.cluster.local", "TXT", ["+tcp"]);
      for (let i = 0; i < 2; i++) await ask(lab, "www.example.org", "A", [], lab.client!.ns);
      const s = `server="dns://${DNS}:53"`;
      const want = {
        coredns_dns_requests_total: [
          `{proto="tcp",${s},type="TXT",view="",zone="."} 1`,
          `{proto="udp",${s},type="A",view="",zone="."} 9`,
          `{proto="udp",${s},type="AAAA",view="",zone="."} 3`,
        ],
        coredns_dns_responses_total: [
          `{rcode="NOERROR",${s},view="",zone="."} 8`,
          `{rcode="NXDOMAIN",${s},view="",zone="."} 3`,
          `{rcode="REFUSED",${s},view="",zone="."} 2`,
        ],
        coredns_dns_request_duration_seconds_count: [`{${s},view="",zone="."} 13`],
        coredns_cache_hits_total: [
          `{${s},type="denial",view="",zones="."} 0`,
          `{${s},type="success",view="",zones="."} 1`,
        ],
        coredns_cache_misses_total: [`{${s},view="",zones="."} 1`],
        coredns_cache_entries: [
          `{${s},type="denial",view="",zones="."} 0`,
          `{${s},type="success",view="",zones="."} 1`,
        ],
        coredns_forward_requests_total: [`{to="${WORLD}:53"} 1`],
        coredns_forward_responses_total: [`{rcode="NOERROR",to="${WORLD}:53"} 1`],
        svcgate_dns_requests_total: [
          `{rcode="NOERROR",type="A"} 7`,
          `{rcode="NOERROR",type="TXT"} 1`,
          `{rcode="NXDOMAIN",type="AAAA"} 3`,
          `{rcode="REFUSED",type="A"} 2`,
        ],
      };
      let got: Record<string, string[]> = {};
      await waitFor("the counts on /metrics", async () => {
        got = {};
        for (const name of Object.keys(want)) got[name] = await series(lab, name);
        return JSON.stringify(got) === JSON.stringify(want);
      }, 10_000).catch(() => {});
      assertEquals(got, want);
    } finally {
      await daemon.stop();
      await lab.destroy();
      await Deno.remove(dir, { recursive: true });
    }
  },
);

labTest(
  "node resolver e2e: bad resolv.conf and --forward-zone are clear errors, never a crash",
  async (t) => {
    const dir = await Deno.makeTempDir({ prefix: "svcgate-node-dns-" });
    const { lab } = await nodeLab(dir);
    try {
      const cases: { name: string; file?: string; flags: string[]; code: number; line: string }[] =
        [
          {
            name: "no nameserver",
            file: "search corp.example\noptions ndots:5\n",
            flags: [],
            code: 1,
            line:
              `svcgate: Cannot forward DNS: ${dir}/resolv.conf names no nameserver; give the node's real resolvers with --upstream IP[:PORT] or --resolv-conf PATH`,
          },
          {
            // Default flags on a node whose /etc/resolv.conf already points at svcgate.
            name: "only svcgate's own address, in the node's /etc/resolv.conf",
            flags: [],
            code: 1,
            line:
              `svcgate: Cannot forward DNS: /etc/resolv.conf names only svcgate itself (${DNS}); give`,
          },
          {
            name: "garbage only",
            file: "\u0000\u0007binary garbage\n{json: true}\n",
            flags: [],
            code: 1,
            line: `svcgate: Cannot forward DNS: ${dir}/resolv.conf names no nameserver`,
          },
          {
            name: "a file that is not there",
            flags: ["--resolv-conf", `${dir}/nope.conf`],
            code: 1,
            line: `svcgate: Cannot forward DNS: cannot read ${dir}/nope.conf (`,
          },
          {
            name: "a bad zone",
            flags: ["--upstream", WORLD, "--forward-zone", "bad..zone=198.18.100.3"],
            code: 2,
            line:
              'svcgate: invalid --forward-zone "bad..zone=198.18.100.3": "bad..zone" is not a DNS zone name',
          },
          {
            name: "a bad address",
            flags: ["--upstream", WORLD, "--forward-zone", "corp.example=198.18.100.300"],
            code: 2,
            line:
              'svcgate: invalid --forward-zone "corp.example=198.18.100.300": "198.18.100.300" is not IP[:PORT]',
          },
        ];
      for (const c of cases) {
        await t.step(c.name, async () => {
          if (c.file !== undefined) await Deno.writeTextFile(`${dir}/resolv.conf`, c.file);
          const daemon = run(
            lab,
            dir,
            c.file !== undefined ? ["--resolv-conf", `${dir}/resolv.conf`, ...c.flags] : c.flags,
          );
          // It must exit at start: one that keeps running is a failure, not a hang of the test.
          let timer: ReturnType<typeof setTimeout> | undefined;
          const code = await Promise.race([
            daemon.child.status.then((s) => s.code),
            new Promise<null>((r) => timer = setTimeout(() => r(null), 20_000)),
          ]);
          clearTimeout(timer);
          if (code === null) await daemon.stop();
          await new Promise((r) => setTimeout(r, 50));
          assertEquals(code, c.code, `exit code (null: still running)\n${daemon.log.join("\n")}`);
          const last = daemon.log.filter((l) => l.startsWith("svcgate: "));
          assertEquals(last.length, 1, daemon.log.join("\n"));
          assert(last[0].startsWith(c.line), `${last[0]}\n  wanted ${c.line}`);
        });
      }
    } finally {
      await lab.destroy();
      await Deno.remove(dir, { recursive: true });
    }
  },
);
