import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { TurnBudget } from "./turn_budget.ts";

Deno.test("TurnBudget: UDP is pumped every pumpMs of TCP work, the loop yielded after turnMs", async () => {
  let now = 0;
  let pumped = 0;
  let turns = 0;
  const budget = new TurnBudget({
    pumpUdp: () => pumped++,
    yieldTurn: () => {
      turns++;
      return new Promise((r) => setTimeout(r, 0));
    },
    pumpMs: 0.5,
    turnMs: 4,
    now: () => now,
  });
  // Messages of 0.3 ms each, back to back in one synchronous stretch.
  const steps: { at: number; pumps: number; due: boolean }[] = [
    { at: 0, pumps: 0, due: false },
    { at: 0.3, pumps: 0, due: false },
    { at: 0.6, pumps: 1, due: false },
    { at: 0.9, pumps: 1, due: false },
    { at: 1.2, pumps: 2, due: false },
    { at: 3.9, pumps: 3, due: false },
    { at: 4.2, pumps: 3, due: true },
  ];
  for (const s of steps) {
    now = s.at;
    assertEquals(budget.due(), s.due, `due at ${s.at}`);
    assertEquals(pumped, s.pumps, `pumps at ${s.at}`);
  }
  // Connections asking at once share one turn; after it a fresh stretch starts.
  const [a, b] = [budget.yieldTurn(), budget.yieldTurn()];
  assertEquals(a, b);
  await a;
  assertEquals([turns, budget.yields], [1, 1]);
  now = 4.3;
  assertEquals(budget.due(), false);
  now = 8.4;
  assertEquals(budget.due(), true);
});

Deno.test("TurnBudget: once the event loop turns on its own, the next message starts a fresh stretch", async () => {
  let now = 0;
  const budget = new TurnBudget({ now: () => now, turnMs: 4 });
  assertEquals(budget.due(), false);
  now = 3.9;
  assertEquals(budget.due(), false);
  // A timer turn passes (other I/O ran): the stretch ends without a yield.
  await new Promise((r) => setTimeout(r, 5));
  now = 5;
  assertEquals(budget.due(), false);
  now = 8.9;
  assertEquals(budget.due(), false);
  now = 9.1;
  assertEquals(budget.due(), true);
  assertEquals(budget.yields, 0);
});
