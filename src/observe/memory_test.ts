import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { MallocTrimmer } from "./memory.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

Deno.test("MallocTrimmer: a burst of work trims once, after it went quiet", async () => {
  let trims = 0;
  const trimmer = new MallocTrimmer({ quietMs: 30, trim: () => Promise.resolve(trims++) });
  for (let i = 0; i < 5; i++) {
    trimmer.workDone();
    await sleep(5);
  }
  assertEquals(trims, 0);
  await sleep(80);
  assertEquals(trims, 1);
  trimmer.stop();
});

Deno.test("MallocTrimmer: constant churn still trims by the maximum delay", async () => {
  let trims = 0;
  const trimmer = new MallocTrimmer({
    quietMs: 40,
    maxDelayMs: 60,
    trim: () => Promise.resolve(trims++),
  });
  const end = performance.now() + 150;
  while (performance.now() < end) {
    trimmer.workDone();
    await sleep(10);
  }
  assert(trims >= 1, `expected a trim during 150 ms of churn, got ${trims}`);
  trimmer.stop();
});

Deno.test("MallocTrimmer: stop() cancels a pending trim and ignores later work", async () => {
  let trims = 0;
  const trimmer = new MallocTrimmer({ quietMs: 10, trim: () => Promise.resolve(trims++) });
  trimmer.workDone();
  trimmer.stop();
  trimmer.workDone();
  await sleep(40);
  assertEquals(trims, 0);
});
