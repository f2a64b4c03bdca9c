/**
 * The search path walked on the server, end to end: the real daemon (`svcgate run` on
 * manifests) in a lab node on 169.254.20.10:53, pods whose resolv.conf is what kubelet writes
 * (`search <ns>.svc.cluster.local svc.cluster.local cluster.local`, `options ndots:5`), real
 * client resolvers (glibc's getaddrinfo, musl's, Go's pure resolver) and a real upstream (knotd
 * serving a root zone in the lab, so other names get a real NXDOMAIN). For short names, `name.ns`,
 * external names and names that exist nowhere, each resolver gets the same answer with and
 * without --autopath, and svcgate's own counters say how many queries each lookup cost it.
 *
 * Standalone mode: a pod's namespace is the namespace of the services it is an endpoint of;
 * pod 2 is nobody's endpoint (an unknown client: today's behaviour).
 */

import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { Lab, labTest } from "../lab/lab.ts";
import { startDaemon } from "../daemon/harness.ts";
import {
  buildResolvers,
  kubeletResolvConf,
  lookups,
  metricValue,
  serviceManifest,
  settledRequests,
  startLabKnot,
} from "../support/lab_resolvers.ts";

const DNS = "169.254.20.10";
const METRICS = "http://127.0.0.1:10256/metrics";
const UPSTREAM = "198.18.100.2";

const MANIFESTS = [
  serviceManifest("default", "web", "198.19.0.10", "198.18.0.10"),
  serviceManifest("prod", "api", "198.19.0.20", "198.18.0.11", 9000),
].join("---\n");

/** One lookup of the table: from which pod, what name, and its cost with and without autopath. */
interface Case {
  readonly pod: number;
  readonly name: string;
  /** What every resolver finds (sorted addresses), or NONAME. */
  readonly result: string;
  /** Queries svcgate receives with --autopath (the default) and with --autopath=false. */
  readonly queries: { readonly on: number; readonly off: number };
}

const CASES: readonly Case[] = [
  // Pod 0 is web.default's endpoint: namespace default.
  {
    pod: 0,
    name: "web",
    result: "198.19.0.10",
    queries: { on: 2, off: 2 },
  },
  {
    pod: 0,
    name: "api.prod",
    result: "198.19.0.20",
    queries: { on: 2, off: 4 },
  },
  {
    pod: 0,
    name: "www.example.org",
    result: "198.18.100.80 2001:db8:100::80",
    queries: { on: 2, off: 8 },
  },
  {
    pod: 0,
    name: "v4only.example.org",
    result: "198.18.100.81",
    queries: { on: 2, off: 8 },
  },
  { pod: 0, name: "nosuch", result: "NONAME", queries: { on: 8, off: 8 } },
  { pod: 0, name: "nosuch.example.org", result: "NONAME", queries: { on: 8, off: 8 } },
  // Pod 1 is api.prod's endpoint: namespace prod.
  {
    pod: 1,
    name: "web.default",
    result: "198.19.0.10",
    queries: { on: 2, off: 4 },
  },
  // Pod 2 is nobody's endpoint: its namespace is unknown, it searches itself.
  {
    pod: 2,
    name: "www.example.org",
    result: "198.18.100.80 2001:db8:100::80",
    queries: { on: 8, off: 8 },
  },
];

labTest(
  "autopath e2e: glibc, musl and Go resolvers get the same answers in fewer queries",
  async (t) => {
    const lab = await Lab.create({ pods: 3, clientHost: true });
    const dir = await Deno.makeTempDir({ prefix: "svcgate-autopath-" });
    try {
      await Deno.chmod(dir, 0o755);
      const resolvers = await buildResolvers(dir);
      const present = Object.entries(resolvers).filter(([, p]) => p !== null) as [
        string,
        string,
      ][];
      assert(resolvers.glibc, "gcc builds the glibc lookup program");
      if (Deno.env.get("CI") === "true") {
        assert(resolvers.musl && resolvers.go, "musl-gcc and go are installed under CI");
      }
      await lab.addNodeAddress(`${DNS}/32`);
      await startLabKnot(lab, lab.client!.ns, UPSTREAM, [
        "www.example.org. 60 IN A 198.18.100.80",
        "www.example.org. 60 IN AAAA 2001:db8:100::80",
        "v4only.example.org. 60 IN A 198.18.100.81",
      ], dir);
      // svcgate's upstream from the node's resolv.conf, as on a node.
      await lab.setResolvConf(lab.node.ns, `nameserver ${UPSTREAM}\n`);
      await lab.setResolvConf(lab.pods[0].ns, kubeletResolvConf("default", DNS));
      await lab.setResolvConf(lab.pods[1].ns, kubeletResolvConf("prod", DNS));
      await lab.setResolvConf(lab.pods[2].ns, kubeletResolvConf("default", DNS));
      await Deno.mkdir(`${dir}/manifests`);
      await Deno.writeTextFile(`${dir}/manifests/services.yaml`, MANIFESTS);

      const results = new Map<string, string>();
      for (const autopath of [true, false]) {
        const daemon = startDaemon(lab, {
          args: [
            "--manifests",
            `${dir}/manifests`,
            "--state-dir",
            `${dir}/state-${autopath}`,
            "--service-cidr",
            "198.19.0.0/16",
            "--cluster-cidr",
            "198.18.0.0/24",
            "--dns-bind-address",
            `${DNS}:53`,
            `--autopath=${autopath}`,
          ],
        });
        try {
          await daemon.waitReady();
          let last = await settledRequests(lab, METRICS);
          for (const c of CASES) {
            for (const [resolver, program] of present) {
              const what = `${resolver} in pod ${c.pod}: ${c.name} (autopath ${autopath})`;
              await t.step(what, async () => {
                const [found] = await lookups(lab, lab.pods[c.pod].ns, program, c.name);
                const now = await settledRequests(lab, METRICS);
                const queries = now - last;
                last = now;
                assertEquals(found.result, c.result, `${what}: the answer`);
                assertEquals(queries, autopath ? c.queries.on : c.queries.off, `${what}: queries`);
                // The same answer (and canonical name) with and without the server-side search.
                const key = `${resolver} ${c.pod} ${c.name}`;
                const seen = `${found.result} ${found.canon}`;
                if (results.has(key)) assertEquals(seen, results.get(key), `${what}: as before`);
                else results.set(key, seen);
              });
            }
          }
          const success = await metricValue(lab, METRICS, "svcgate_dns_autopath_success_total");
          if (autopath) assert(success > 0, "svcgate_dns_autopath_success_total counts the hits");
          else assertEquals(success, 0);
        } finally {
          await daemon.stop();
        }
      }
    } finally {
      await lab.destroy();
      await Deno.remove(dir, { recursive: true });
    }
  },
);
