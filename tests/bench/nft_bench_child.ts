/**
 * Child process of the nft benchmark, run inside the lab's node namespace (so nft runs directly,
 * as in production). It measures:
 * 1. a cold start: build a synthetic model of N services x E endpoints, adopt (no table yet),
 *    apply; prints `COLD {json}` and waits for a line on stdin (the parent checks the last VIP);
 * 2. one-service updates: K times, the last service's endpoint moves between two pods; for each,
 *    the time from the model change to the applied transaction, and to the first connection from
 *    this namespace that the new pod answers; prints `UPDATES {json}`, once per executor.
 *
 * EXECUTORS is a comma-separated list of `command` (spawn `nft -f -`) and `lib` (libnftables in
 * process, through FFI): the first does the cold start; the updates (UPDATES per executor) take
 * turns between them on the same dataplane (default `command`).
 *
 * Usage: deno run -A nft_bench_child.ts SERVICES ENDPOINTS COLD_POD_IP POD_A_IP POD_B_IP UPDATES
 *   [EXECUTORS]
 * @module
 */

import { NftDataplane } from "../../src/nft/dataplane.ts";
import { NftCommandExecutor, type NftExecutor } from "../../src/nft/executor.ts";
import { NftLibExecutor } from "../../src/nft/lib_executor.ts";
import type { Family } from "../../src/nft/ruleset.ts";
import { cidr, endpointSet, ep } from "../support/nft_fixtures.ts";
import { syntheticService, syntheticStore, vipOf } from "./nft_bench_lib.ts";

const [servicesText, endpointsText, coldPod, podA, podB, updatesText, executorsText] = Deno.args;
const started = performance.now();
const kinds = (executorsText ?? "command").split(",");
const executors = new Map<string, NftExecutor>();
for (const kind of kinds) {
  if (kind === "command") executors.set(kind, new NftCommandExecutor());
  else if (kind === "lib") {
    const lib = NftLibExecutor.tryOpen();
    if (!lib) throw new Error(`Cannot open libnftables: ${NftLibExecutor.unavailableReason}`);
    executors.set(kind, lib);
  } else throw new Error(`Unknown executor "${kind}": expected "command" or "lib"`);
}
const count = Number(servicesText), per = Number(endpointsText);
const store = syntheticStore(count, per, new Map([[count - 1, [coldPod]]]));
const modelMs = performance.now() - started;

let inner = executors.get(kinds[0])!;
let nftMs = 0;
const timed: NftExecutor = {
  async apply(script: string) {
    const t = performance.now();
    await inner.apply(script);
    nftMs += performance.now() - t;
  },
  listTable: (f: Family) => inner.listTable(f),
  listSet: (f: Family, k: "set" | "map", n: string) => inner.listSet(f, k, n),
  listOutline: (f: Family) => inner.listOutline(f),
};
const dataplane = new NftDataplane({
  executor: timed,
  renderOptions: {
    clusterCidrs: [cidr("198.18.0.0/16")],
    nodeName: "node-a",
    nodePortAddresses: [],
  },
});
const t0 = performance.now();
await dataplane.adopt();
const report = await dataplane.apply(store.snapshot);
const applyMs = performance.now() - t0;
console.log(`COLD ${
  JSON.stringify({
    executor: kinds[0],
    startMs: Math.round(started),
    modelMs: Math.round(modelMs),
    applyMs: Math.round(applyMs),
    nftMs: Math.round(nftMs),
    renderAndDiffMs: Math.round(applyMs - nftMs),
    scriptBytes: report.scriptBytes,
    elements: report.elementsAdded,
  })
}`);
// Wait for the parent to finish its own check of the cold start.
const reader = Deno.stdin.readable.getReader();
await reader.read();
reader.releaseLock();

/** One HTTP request to the VIP from this (node) namespace; the pod's name, or "" on failure. */
async function ask(vip: string): Promise<string> {
  try {
    const conn = await Deno.connect({ hostname: vip, port: 80 });
    try {
      await conn.write(new TextEncoder().encode("GET / HTTP/1.0\r\n\r\n"));
      let text = "";
      const buf = new Uint8Array(1024);
      for (let n = await conn.read(buf); n !== null; n = await conn.read(buf)) {
        text += new TextDecoder().decode(buf.subarray(0, n));
      }
      return text.split("\r\n\r\n")[1]?.trim() ?? "";
    } finally {
      try {
        conn.close();
      } catch { /* closed */ }
    }
  } catch {
    return "";
  }
}

const bench = syntheticService(count - 1);
const vip = vipOf(count - 1);
// The executors take turns, two updates each (one to each pod), so drift on this shared machine
// hits them alike.
const results = new Map(
  kinds.map((k) => [k, { applied: [] as number[], live: [] as number[], nft: [] as number[] }]),
);
const stale = new Map(kinds.map((k) => [k, 0]));
for (let k = 0; k < Number(updatesText) * kinds.length; k++) {
  const kind = kinds[Math.floor(k / 2) % kinds.length];
  inner = executors.get(kind)!;
  const r = results.get(kind)!;
  const [ip, name] = k % 2 === 0 ? [podA, "pod-1"] : [podB, "pod-2"];
  await new Promise((r) => setTimeout(r, 50));
  const t = performance.now();
  store.setEndpointSet(endpointSet(bench, [ep(ip)]));
  const snap = store.commit().snapshot;
  nftMs = 0;
  await dataplane.apply(snap);
  r.applied.push(performance.now() - t);
  r.nft.push(nftMs);
  // The first new connection after the apply must already reach the new pod.
  const answer = await ask(vip);
  r.live.push(performance.now() - t);
  if (answer !== name) stale.set(kind, stale.get(kind)! + 1);
}
for (const [kind, r] of results) {
  console.log(`UPDATES ${JSON.stringify({ executor: kind, ...r, stale: stale.get(kind) })}`);
}
for (const executor of executors.values()) {
  if (executor instanceof NftLibExecutor) await executor.close();
}
