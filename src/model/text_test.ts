import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { compareText, parseDuration } from "./text.ts";

Deno.test("compareText orders by code units, whatever the locale", () => {
  assertEquals(["web", "api", "Web", "äpi", "a"].sort(compareText), [
    "Web",
    "a",
    "api",
    "web",
    "äpi",
  ]);
  assertEquals(compareText("x", "x"), 0);
});

Deno.test("parseDuration: Go's durations, as kube-proxy's flags and annotations write them", () => {
  const cases: [string, number | null][] = [
    ["5ms", 5],
    ["1s", 1000],
    ["1.5s", 1500],
    ["2m", 120000],
    ["1h", 3600000],
    ["24h0m0s", 86400000],
    ["1m30s", 90000],
    ["500us", 0.5],
    ["0", 0],
    ["0s", 0],
    ["", null],
    ["s", null],
    ["5", null],
    ["5 s", null],
    ["5 sec", null],
    ["-1s", null],
    ["5S", null],
    ["00", null],
    ["1x", null],
  ];
  for (const [text, ms] of cases) assertEquals(parseDuration(text), ms, text);
});
