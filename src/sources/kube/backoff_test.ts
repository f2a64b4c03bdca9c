import { Backoff } from "./backoff.ts";

Deno.test("backoff grows exponentially to its cap, jittered into [d/2, d]", () => {
  const table: { random: number; want: number[] }[] = [
    { random: 0, want: [250, 500, 1000, 2000, 2500, 2500] },
    { random: 0.999999, want: [500, 1000, 2000, 4000, 5000, 5000] },
  ];
  for (const { random, want } of table) {
    const b = new Backoff({ initialMs: 500, maxMs: 5000, random: () => random });
    const got = want.map(() => b.next());
    if (JSON.stringify(got) !== JSON.stringify(want)) {
      throw new Error(`random=${random}: expected ${want}, got ${got}`);
    }
  }
});

Deno.test("reset returns to the initial delay", () => {
  const b = new Backoff({ initialMs: 100, maxMs: 1000, random: () => 0 });
  b.next();
  b.next();
  b.next();
  b.reset();
  const got = b.next();
  if (got !== 50) throw new Error(`expected 50 after reset, got ${got}`);
});

Deno.test("nonsensical settings are refused with the values quoted", () => {
  let message = "";
  try {
    new Backoff({ initialMs: 1000, maxMs: 10 });
  } catch (e) {
    message = (e as Error).message;
  }
  if (!message.includes("initialMs=1000 maxMs=10")) throw new Error(`message: ${message}`);
});
