/**
 * nft dataplane benchmark. Everything runs in network namespaces it creates and deletes (a lab
 * node with pods and a client host, plus scratch namespaces for the load comparison).
 *
 *   deno run -A tests/bench/nft_bench.ts [--services 10000] [--endpoints 10]
 *     [--kube-proxy-services 2000 | --skip-kube-proxy] [--seconds 1] [--skip-lib]
 *
 * Prints a table: cold start at N x E (process start to the last VIP answering), the same load in
 * the kube-proxy shape (once, at a smaller size, extrapolated), one-service updates on top of N
 * (spawning `nft -f -`, and through libnftables in process unless --skip-lib or the library cannot
 * be loaded; the cold start is then measured once more with libnftables), restart adoption and
 * drift-check costs, new connections per second through a VIP with N and with 10 services vs
 * direct to the pod, selection-slot fairness, and memory.
 * @module
 */

import { Lab, runCommand as run } from "../lab/lab.ts";
import { APPLY_BATCH, NftDataplane } from "../../src/nft/dataplane.ts";
import { NftCommandExecutor } from "../../src/nft/executor.ts";
import { libnftablesUnavailableReason } from "../../src/nft/lib_executor.ts";
import { formatOps, planCreate } from "../../src/nft/diff.ts";
import { type RenderOptions, renderRuleset } from "../../src/nft/render.ts";
import { cidr, endpointSet, ep } from "../support/nft_fixtures.ts";
import {
  kubeProxyShape,
  median,
  percentile,
  syntheticService,
  syntheticStore,
  tuneForConnectionRates,
  vipOf,
} from "./nft_bench_lib.ts";

/** How the dataplane splits a change of `services` services (see NftDataplane.apply). */
function transactions(services: number): string {
  const n = Math.ceil(services / APPLY_BATCH);
  return n === 1 ? "in one transaction" : `in ${n} transactions of up to ${APPLY_BATCH} services`;
}

function flag(name: string, fallback: number): number {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 ? Number(Deno.args[i + 1]) : fallback;
}
const SERVICES = flag("services", 10000);
const ENDPOINTS = flag("endpoints", 10);
const KP_SERVICES = Deno.args.includes("--skip-kube-proxy") ? 0 : flag("kube-proxy-services", 2000);
const SECONDS = flag("seconds", 1);
const CLIENT_CPU = 0, SERVER_CPU = 1;
// Loading the library here (root namespace) runs no nft command: only the child uses it.
const LIB_UNAVAILABLE = Deno.args.includes("--skip-lib")
  ? "--skip-lib given"
  : libnftablesUnavailableReason();
const OPTIONS: RenderOptions = {
  clusterCidrs: [cidr("198.18.0.0/16")],
  nodeName: "node-a",
  nodePortAddresses: [],
};
const HERE = new URL(".", import.meta.url).pathname;
const rows: [string, string, string][] = [];
function row(what: string, value: string, note = ""): void {
  rows.push([what, value, note]);
  console.error(`  ${what}: ${value}${note ? `  (${note})` : ""}`);
}
const ms = (x: number) => `${x < 10 ? x.toFixed(2) : Math.round(x)} ms`;

async function must(cmd: string[], stdin?: string): Promise<string> {
  const r = await run(cmd, stdin);
  if (r.code !== 0) throw new Error(`"${cmd.slice(0, 6).join(" ")}…" failed: ${r.stderr.trim()}`);
  return r.stdout;
}

async function probe(lab: Lab, ns: string, args: (string | number)[], cpu?: number) {
  const r = await lab.exec(ns, [
    ...(cpu === undefined ? [] : ["taskset", "-c", String(cpu)]),
    Deno.execPath(),
    "run",
    "--allow-net",
    `${HERE}../nft/probe.ts`,
    ...args.map(String),
  ]);
  try {
    return JSON.parse(r.stdout.trim().split("\n").at(-1)!);
  } catch {
    throw new Error(`probe ${args.join(" ")} failed: ${r.stderr}`);
  }
}

/** Times `nft -f` of a script in a fresh scratch namespace, which is deleted afterwards. */
async function timedLoad(
  label: string,
  script: string,
  after?: string,
): Promise<{ loadMs: number; afterMs?: number }> {
  const ns = `sgbench-${Deno.pid}-${label}`;
  await must(["ip", "netns", "add", ns]);
  try {
    const t0 = performance.now();
    await must(["ip", "netns", "exec", ns, "nft", "-f", "-"], script);
    const loadMs = performance.now() - t0;
    if (after === undefined) return { loadMs };
    const t1 = performance.now();
    await must(["ip", "netns", "exec", ns, "nft", "-f", "-"], after);
    return { loadMs, afterMs: performance.now() - t1 };
  } finally {
    await run(["ip", "netns", "del", ns]);
  }
}

/** New connections per second from the client host to target:port, over one slice. */
async function connRate(lab: Lab, target: string, port: number): Promise<number> {
  const r = await probe(
    lab,
    lab.client!.ns,
    ["load", target, port, Math.round(SECONDS * 1000), 4],
    CLIENT_CPU,
  );
  if (r.failed > 0) {
    console.error(
      `    (${r.failed} failed connections to ${target}:${port}: ${JSON.stringify(r.errors)})`,
    );
  }
  return r.ok / SECONDS;
}

console.error(`nft benchmark: ${SERVICES} services x ${ENDPOINTS} endpoints`);
const lab = await Lab.create({ pods: 3, clientHost: true });
try {
  await lab.startPodServers();
  // Connection-rate setup (conntrack TIME_WAIT, client and servers on separate CPUs).
  await tuneForConnectionRates(lab, [0, 1], SERVER_CPU);
  // Direct connections always go to pod 0 and VIP connections always land on pod 1. The pods
  // close first, so they hold the TIME_WAIT sockets: a VIP connection and a direct one from the
  // same client port would meet the same server-side tuple with unrelated sequence numbers and
  // timestamps, and the SYN would be refused or dropped until a 1 s retry.
  const directPod = lab.pods[0].ip, vipPod = lab.pods[1].ip;
  // The client (and with it the node's forwarding and NAT, which run in the sender's softirq) on
  // one CPU, the pod servers on the other (pinned above).
  const pod0 = lab.pods[0].ip;
  const lastVip = vipOf(SERVICES - 1);

  // 0. Control for the connection-rate figures below: the same VIP through one hand-written
  //    static DNAT rule (the least any NAT costs), before svcgate writes anything.
  const minimalDnat = [
    "add table ip control",
    "add chain ip control pre { type nat hook prerouting priority -100; policy accept; }",
    `add rule ip control pre ip daddr ${lastVip} tcp dport 80 dnat to ${vipPod}:8080`,
    "",
  ].join("\n");
  await must(["ip", "netns", "exec", lab.node.ns, "nft", "-f", "-"], minimalDnat);
  const control = { direct: [] as number[], vip: [] as number[] };
  for (let round = 0; round < 5; round++) {
    control.direct.push(await connRate(lab, directPod, 8080));
    control.vip.push(await connRate(lab, lastVip, 80));
  }
  await must(["ip", "netns", "exec", lab.node.ns, "nft", "delete", "table", "ip", "control"]);
  console.error(
    `    one static DNAT rule: direct ${control.direct.map(Math.round)} vip ${
      control.vip.map(Math.round)
    }`,
  );

  // 1. Cold start in a fresh process inside the node namespace (nft runs directly, as in
  //    production): build the model, render, load; then the last VIP answers the client host.
  //    Then one-service updates, the executors taking turns on the same dataplane.
  const coldStart = async (executors: string[], updates: number) => {
    const t0 = performance.now();
    const child = new Deno.Command("ip", {
      args: [
        ...["netns", "exec", lab.node.ns, Deno.execPath(), "run", "-A"],
        `${HERE}nft_bench_child.ts`,
        ...[String(SERVICES), String(ENDPOINTS), pod0, lab.pods[1].ip, lab.pods[2].ip],
        ...[String(updates), executors.join(",")],
      ],
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let buffered = "";
    const nextLine = async (prefix: string): Promise<string> => {
      while (true) {
        const i = buffered.indexOf("\n");
        if (i >= 0) {
          const line = buffered.slice(0, i);
          buffered = buffered.slice(i + 1);
          if (line.startsWith(prefix)) return line.slice(prefix.length);
          continue;
        }
        const { value, done } = await lines.read();
        if (done) throw new Error(`benchmark child ended before "${prefix}"`);
        buffered += value;
      }
    };
    const cold = JSON.parse(await nextLine("COLD "));
    let answered = false;
    for (let i = 0; i < 50 && !answered; i++) {
      const r = await lab.exec(lab.client!.ns, [
        "bash",
        "-c",
        `exec 3<>/dev/tcp/${lastVip}/80 && printf 'GET / HTTP/1.0\\r\\n\\r\\n' >&3 && tail -n 1 <&3`,
      ]);
      answered = r.stdout.trim() === "pod-0";
    }
    const coldMs = performance.now() - t0;
    if (!answered) throw new Error(`the last VIP ${lastVip} never answered after the cold start`);
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode("go\n"));
    await w.close();
    const ups = [];
    for (const _ of executors) ups.push(JSON.parse(await nextLine("UPDATES ")));
    await child.status;
    return { coldMs, cold, ups };
  };
  const coldRow = (label: string, coldMs: number, cold: Record<string, number>) =>
    row(
      `cold start ${SERVICES}x${ENDPOINTS}${label}: process start -> last VIP answers`,
      ms(coldMs),
      `runtime+imports ${cold.startMs} ms, model ${cold.modelMs} ms, render+diff ${cold.renderAndDiffMs} ms, ${
        label ? "libnftables" : "nft -f"
      } ${cold.nftMs} ms, ${cold.elements} elements, ${
        (cold.scriptBytes / 1e6).toFixed(1)
      } MB; target <= 5 s`,
    );
  const stat = (xs: number[]) =>
    `p50 ${ms(median(xs))}, p95 ${ms(percentile(xs, 95))}, max ${ms(Math.max(...xs))}`;
  const executors = LIB_UNAVAILABLE ? ["command"] : ["command", "lib"];
  const initial = await coldStart(executors, 40);
  const coldMs = initial.coldMs;
  coldRow("", initial.coldMs, initial.cold);
  for (const up of initial.ups) {
    const via = up.executor === "lib" ? " via libnftables" : "";
    row(
      `one-service update on top of ${SERVICES}${via}: change -> applied`,
      stat(up.applied),
      `${up.applied.length} updates, 50 ms apart; ${
        up.executor === "lib" ? "libnftables call" : "nft -f"
      } alone ${stat(up.nft)}`,
    );
    row(
      `one-service update on top of ${SERVICES}${via}: change -> first new connection on the new pod`,
      stat(up.live),
      `${up.stale} of ${up.live.length} first connections reached the old pod; target <= 20 ms`,
    );
  }
  if (LIB_UNAVAILABLE) {
    row("libnftables (FFI) rows", "skipped", LIB_UNAVAILABLE);
  } else {
    // The same cold start with libnftables, from no table at all; its table stays for the rest.
    for (const family of ["ip", "ip6"]) {
      await must(["ip", "netns", "exec", lab.node.ns, "nft", "delete", "table", family, "svcgate"]);
    }
    const again = await coldStart(["lib"], 0);
    coldRow(" via libnftables", again.coldMs, again.cold);
  }

  // 2. Memory of model + dataplane at N x E, in this process.
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  const rss0 = Deno.memoryUsage().rss;
  const store = syntheticStore(SERVICES, ENDPOINTS, new Map([[SERVICES - 1, [pod0]]]));
  gc?.();
  const rssModel = Deno.memoryUsage().rss;
  const executor = new NftCommandExecutor({ argvPrefix: ["ip", "netns", "exec", lab.node.ns] });
  const dataplane = new NftDataplane({ executor, renderOptions: OPTIONS });

  // 3. Restart: adopt the table the child wrote; the first apply must write nothing.
  let t = performance.now();
  await dataplane.adopt();
  const adoptMs = performance.now() - t;
  t = performance.now();
  const first = await dataplane.apply(store.snapshot);
  const firstMs = performance.now() - t;
  row("restart: adopt (read the table back as JSON)", ms(adoptMs), "once per start");
  row(
    "restart: first apply after adopt",
    ms(firstMs),
    `render + full diff, ${first.mode}, ${
      first.elementsAdded + first.elementsDeleted
    } element changes`,
  );
  gc?.();
  const rssAll = Deno.memoryUsage().rss;
  row(
    `memory at ${SERVICES}x${ENDPOINTS}`,
    `${Math.round(rssAll / 1e6)} MB RSS`,
    `model ${Math.round((rssModel - rss0) / 1e6)} MB + dataplane ${
      Math.round((rssAll - rssModel) / 1e6)
    } MB over a ${Math.round(rss0 / 1e6)} MB base${
      gc ? "" : "; run with --v8-flags=--expose-gc for steadier figures"
    }`,
  );

  t = performance.now();
  const drift = await dataplane.checkDrift();
  row(
    `drift check on ${SERVICES} services`,
    ms(performance.now() - t),
    `read back + full diff; drift found: ${drift}`,
  );

  // 5. New connections per second: direct to pod 0 and through the VIP of the last service
  //    (whose one endpoint is pod 1) with N services, then with 10, then with N again. Direct and
  //    VIP slices alternate, so drift on this shared machine hits both.
  const bench = syntheticService(SERVICES - 1);
  store.setEndpointSet(endpointSet(bench, [ep(vipPod)]));
  await dataplane.apply(store.commit().snapshot);
  const rate = async (label: string) => {
    const direct: number[] = [], vip: number[] = [];
    for (let round = 0; round < 5; round++) {
      direct.push(await connRate(lab, directPod, 8080));
      vip.push(await connRate(lab, lastVip, 80));
    }
    console.error(`    ${label}: direct ${direct.map(Math.round)} vip ${vip.map(Math.round)}`);
    return { direct: median(direct), vip: median(vip) };
  };
  const big = await rate(`${SERVICES} services`);
  const keep = new Set([...Array.from({ length: 9 }, (_, i) => `svc-${i}`), `svc-${SERVICES - 1}`]);
  for (const key of [...store.snapshot.services.keys()]) {
    const name = key.slice("default/".length);
    if (keep.has(name)) continue;
    store.deleteService("default", name);
    store.deleteEndpointSet("default", name, `${name}-1`);
  }
  t = performance.now();
  const shrink = await dataplane.apply(store.commit().snapshot);
  row(
    `delete ${SERVICES - 10} services at once`,
    ms(performance.now() - t),
    `${shrink.elementsDeleted} elements deleted, ${transactions(SERVICES - 10)}`,
  );
  const small = await rate("10 services");
  // And back to N, to tell a slower machine (other load, kernel work after the big delete) from a
  // slower ruleset.
  const again = syntheticStore(SERVICES, ENDPOINTS, new Map([[SERVICES - 1, [vipPod]]]));
  t = performance.now();
  const regrow = await dataplane.apply(again.snapshot);
  row(
    `add ${SERVICES - 10} services at once (on a live table)`,
    ms(performance.now() - t),
    `${regrow.elementsAdded} elements added, ${transactions(SERVICES - 10)}`,
  );
  store.replaceAll({
    services: [...again.snapshot.services.values()].map((e) => e.service),
    endpointSets: [...again.snapshot.services.values()].map((e) =>
      endpointSet(e.service, e.endpoints.map((x) => ep(x.address)))
    ),
  });
  store.commit();
  const big2 = await rate(`${SERVICES} services, again`);
  row(
    "new TCP connections/s, client host -> pod",
    `direct ${Math.round(big.direct)} | VIP@${SERVICES} ${Math.round(big.vip)} | direct ${
      Math.round(small.direct)
    } | VIP@10 ${Math.round(small.vip)}`,
    `median of 5 interleaved ${SECONDS} s slices, 4 parallel clients; VIP@${SERVICES}/VIP@10 = ${
      (big.vip / small.vip).toFixed(2)
    } (target >= 0.95), VIP@${SERVICES}/direct = ${
      (big.vip / big.direct).toFixed(2)
    } (target >= 0.9), VIP@10/direct = ${(small.vip / small.direct).toFixed(2)}`,
  );
  row(
    `new TCP connections/s, back at ${SERVICES} services`,
    `direct ${Math.round(big2.direct)} | VIP@${SERVICES} ${Math.round(big2.vip)}`,
    `VIP/direct = ${(big2.vip / big2.direct).toFixed(2)}`,
  );
  row(
    "new TCP connections/s, control: one static DNAT rule, no svcgate",
    `direct ${Math.round(median(control.direct))} | VIP ${Math.round(median(control.vip))}`,
    `VIP/direct = ${
      (median(control.vip) / median(control.direct)).toFixed(2)
    }: what NAT itself costs here`,
  );

  // 6. Selection-slot fairness by construction (rendered slots per endpoint).
  const fairness: string[] = [];
  for (const n of [1, 2, 3, 7, 10, 16, 33, 100, 1000]) {
    const st = syntheticStore(0, 0);
    const s = syntheticService(0);
    st.setService(s);
    st.setEndpointSet(
      endpointSet(s, Array.from({ length: n }, (_, j) => ep(`198.18.${1 + (j >> 8)}.${j & 255}`))),
    );
    const table = renderRuleset(st.commit().snapshot, OPTIONS).tables[0];
    const counts = new Map<string, number>();
    for (const [, v] of table.elements.get("vip-backends-tcp")!) {
      counts.set(v, (counts.get(v) ?? 0) + 1);
    }
    const slots = [...counts.values()].reduce((a, b) => a + b, 0);
    fairness.push(`N=${n}: ${(Math.max(...counts.values()) / (slots / n)).toFixed(3)}x`);
  }
  row(
    "max endpoint share of selection slots / fair share",
    fairness.join(", "),
    "target <= 1.1x; one slot per endpoint",
  );

  // 7. The kube-proxy shape, once, at a smaller size (it is quadratic in the kernel).
  if (KP_SERVICES > 0) {
    const kp = kubeProxyShape(KP_SERVICES, ENDPOINTS);
    const one =
      "add element ip kube-proxy service-ips { 198.19.250.1 . tcp . 80 : goto mark-for-masquerade }\n";
    console.error(
      `  loading the kube-proxy shape at ${KP_SERVICES}x${ENDPOINTS} once (may take a while)…`,
    );
    const k = await timedLoad("kp", kp, one);
    const oursStore = syntheticStore(KP_SERVICES, ENDPOINTS);
    const oursText = renderRuleset(oursStore.snapshot, OPTIONS).tables.map((tb) =>
      formatOps(planCreate(tb))
    ).join("");
    const ours = await timedLoad(
      "ours",
      oursText,
      "add element ip svcgate hairpin { 198.18.250.250 . 198.18.250.250 }\n",
    );
    const scale = SERVICES / KP_SERVICES;
    row(
      `nft -f at ${KP_SERVICES}x${ENDPOINTS}: kube-proxy shape vs svcgate shape`,
      `${ms(k.loadMs)} vs ${ms(ours.loadMs)} (${(k.loadMs / ours.loadMs).toFixed(0)}x)`,
      `measured once; ${KP_SERVICES * (ENDPOINTS + 1)} chains vs a handful`,
    );
    row(
      `one-element transaction on that table: kube-proxy shape vs svcgate shape`,
      `${ms(k.afterMs!)} vs ${ms(ours.afterMs!)}`,
      "nft reads its cache of the table before every batch",
    );
    row(
      `kube-proxy shape at ${SERVICES}x${ENDPOINTS} (extrapolated, not measured)`,
      `${Math.round((k.loadMs * scale) / 1000)} s if linear, ${
        Math.round((k.loadMs * scale * scale) / 1000)
      } s if quadratic`,
      `vs svcgate cold start ${ms(coldMs)} measured above`,
    );
  }
} finally {
  await lab.destroy();
}

const width = [0, 0];
for (const [a, b] of rows) {
  width[0] = Math.max(width[0], a.length);
  width[1] = Math.max(width[1], b.length);
}
console.log(
  `\nnft dataplane benchmark (${new Date().toISOString().slice(0, 10)}, nft ${
    (await run(["nft", "--version"])).stdout.trim()
  }, kernel ${Deno.osRelease()})\n`,
);
console.log(`| ${"measure".padEnd(width[0])} | ${"value".padEnd(width[1])} | note |`);
console.log(`| ${"-".repeat(width[0])} | ${"-".repeat(width[1])} | --- |`);
for (const [a, b, c] of rows) {
  console.log(`| ${a.padEnd(width[0])} | ${b.padEnd(width[1])} | ${c} |`);
}
