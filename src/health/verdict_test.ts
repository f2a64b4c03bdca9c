import { deepStrictEqual as assertEquals } from "node:assert/strict";
import {
  type EndpointHealth,
  INITIAL_HEALTH,
  isOut,
  recordProbe,
  type Verdict,
} from "./verdict.ts";

/** Runs a sequence of results ("+" success, "-" failure) and returns the verdict after each. */
function run(results: string, healthyThreshold: number, unhealthyThreshold: number): string {
  let h: EndpointHealth = INITIAL_HEALTH;
  const short: Record<Verdict, string> = { unknown: "?", healthy: "H", unhealthy: "U" };
  let out = "";
  for (const r of results) {
    h = recordProbe(h, r === "+", { healthyThreshold, unhealthyThreshold });
    out += short[h.verdict];
  }
  return out;
}

Deno.test("recordProbe: thresholds of consecutive results decide the verdict", () => {
  const cases: [string, number, number, string][] = [
    // results, healthy threshold, unhealthy threshold, verdict after each result
    ["++", 2, 3, "?H"],
    ["---", 2, 3, "??U"],
    ["+-+-+-", 2, 3, "??????"], // flapping never reaches a verdict
    ["++--+--", 2, 3, "?HHHHHH"], // failures interrupted by a success start over
    ["++---", 2, 3, "?HHHU"],
    ["---+", 2, 3, "??UU"], // one success is not enough to come back
    ["---++", 2, 3, "??UUH"],
    ["-+", 1, 1, "UH"],
    ["++++-----+++", 2, 3, "?HHHHHUUUUHH"],
  ];
  for (const [results, ht, ut, expected] of cases) {
    assertEquals(run(results, ht, ut), expected, `${results} ${ht}/${ut}`);
  }
});

Deno.test("recordProbe: counters are capped, so a long streak flips back after one threshold", () => {
  let h: EndpointHealth = INITIAL_HEALTH;
  const t = { healthyThreshold: 2, unhealthyThreshold: 3 };
  for (let i = 0; i < 1000; i++) h = recordProbe(h, false, t);
  assertEquals(h, { verdict: "unhealthy", successes: 0, failures: 3 });
  h = recordProbe(recordProbe(h, true, t), true, t);
  assertEquals(h, { verdict: "healthy", successes: 2, failures: 0 });
});

Deno.test("isOut: only unhealthy takes an endpoint out", () => {
  assertEquals([isOut("unknown"), isOut("healthy"), isOut("unhealthy")], [false, false, true]);
});
