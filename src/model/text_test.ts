import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { compareText } from "./text.ts";

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
