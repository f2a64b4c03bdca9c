import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { TurnBudget } from "./turn_budget.ts";

Deno.test("TurnBudget: UDP pumped every pumpMs of TCP work; a rest after turnMs of work or turnMessages messages", async () => {
  let now = 0;
  let pumped = 0;
  const budget = new TurnBudget({
    pumpUdp: () => pumped++,
    pumpMs: 0.5,
    turnMs: 2,
    turnMessages: 64,
    now: () => now,
  });
  // Messages of 0.3 ms each, with pauses between them that do not count (a preempted process).
  const steps: { pumpsBefore: number; due: boolean }[] = [
    { pumpsBefore: 0, due: false }, // work 0
    { pumpsBefore: 0, due: false }, // 0.3
    { pumpsBefore: 1, due: false }, // 0.6: pumped
    { pumpsBefore: 1, due: false }, // 0.9
    { pumpsBefore: 2, due: false }, // 1.2
    { pumpsBefore: 2, due: false }, // 1.5
    { pumpsBefore: 3, due: false }, // 1.8
    { pumpsBefore: 3, due: true }, // 2.1: rest
  ];
  for (const [i, s] of steps.entries()) {
    assertEquals(budget.due(), s.due, `due before message ${i}`);
    assertEquals(pumped, s.pumpsBefore, `pumps before message ${i}`);
    now += 0.3;
    budget.done();
    now += 5;
  }
  // Connections asking at once share one rest; after it the counts start again.
  const [a, b] = [budget.rest(), budget.rest()];
  assertEquals(a, b);
  await a;
  assertEquals(budget.rests, 1);
  assertEquals(budget.due(), false);
  // Cheap messages: the 64th one rests too.
  for (let i = 0; i < 64; i++) {
    assertEquals(budget.due(), false, `cheap message ${i}`);
    budget.done();
  }
  assertEquals(budget.due(), true);
});
