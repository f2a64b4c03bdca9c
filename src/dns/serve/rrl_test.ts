import { deepStrictEqual as assertEquals, throws } from "node:assert/strict";
import { ResponseRateLimiter, slipReply } from "./rrl.ts";
import { decodeMessage } from "../codec/decode.ts";
import { plainQuery } from "../../../tests/support/dns_attack.ts";

Deno.test("ResponseRateLimiter: a second's worth of tokens per address, refilled at the rate; every 2nd limited one slips", () => {
  const rrl = new ResponseRateLimiter({ responsesPerSecond: 4, remember: 2 });
  const steps: { at: number; source: string; want: string }[] = [
    ...[0, 0, 0, 0].map((at) => ({ at, source: "a", want: "send" })),
    { at: 0, source: "a", want: "drop" },
    { at: 0, source: "a", want: "slip" },
    { at: 0, source: "a", want: "drop" },
    // Another address has its own bucket.
    { at: 0, source: "b", want: "send" },
    // 250 ms refill one token at 4 a second.
    { at: 250, source: "a", want: "send" },
    { at: 250, source: "a", want: "slip" },
    // A third address pushes out "a" (remember 2), which starts again with a full bucket.
    { at: 250, source: "c", want: "send" },
    ...[250, 250, 250, 250].map((at) => ({ at, source: "a", want: "send" })),
    { at: 250, source: "a", want: "drop" },
  ];
  for (const [i, s] of steps.entries()) {
    assertEquals(rrl.check(s.source, s.at), s.want, `step ${i}: ${s.source} at ${s.at}`);
  }
});

Deno.test("ResponseRateLimiter: slip 0 drops every limited response; the rate must be positive", () => {
  const rrl = new ResponseRateLimiter({ responsesPerSecond: 1, slip: 0 });
  assertEquals([1, 2, 3, 4].map(() => rrl.check(7, 0)), ["send", "drop", "drop", "drop"]);
  throws(
    () => new ResponseRateLimiter({ responsesPerSecond: 0 }),
    /must be a positive number, got "0"/,
  );
});

Deno.test("slipReply: the question with QR and TC, no records, never longer than the query", () => {
  const q = plainQuery("web.default.svc.cluster.local", 0x1234);
  const withOpt = new Uint8Array([...q, 0, 0, 41, 4, 0xd0, 0, 0, 0, 0, 0, 0]);
  withOpt[11] = 1;
  for (const query of [q, withOpt]) {
    const r = slipReply(query, query.length)!;
    const d = decodeMessage(r);
    assertEquals(d.ok, true);
    if (!d.ok) return;
    assertEquals(
      [d.message.id, d.message.qr, d.message.tc, d.message.rd, d.message.questions.length],
      [0x1234, true, true, true, 1],
    );
    assertEquals(d.message.answers.length + d.message.additional.length, 0);
    assertEquals(r.length <= query.length, true);
  }
  const response = q.slice();
  response[2] |= 0x80;
  assertEquals(slipReply(response, response.length), null);
  assertEquals(slipReply(q, 15), null);
});
