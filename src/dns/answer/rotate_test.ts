import { deepStrictEqual as assertEquals, strictEqual } from "node:assert/strict";
import { rotateAnswers } from "./rotate.ts";
import { formatRecord, RRType } from "../codec/records.ts";
import { record } from "../../../tests/support/dns_fixture.ts";

const a = (n: number) => record("web.example", RRType.A, { address: `198.18.0.${n}` });
const aaaa = (n: number) => record("web.example", RRType.AAAA, { address: `2001:db8::${n}` });
const cname = record("www.example", RRType.CNAME, { target: "web.example" });
const show = (rs: readonly ReturnType<typeof a>[]) =>
  rs.map((r) => formatRecord(r).split(" ").pop()).join(" ");

Deno.test("rotateAnswers: each address type turns among its own positions, CNAMEs stay first", () => {
  const cases: [ReturnType<typeof a>[], number, string][] = [
    [[a(1), a(2), a(3)], 0, "198.18.0.1 198.18.0.2 198.18.0.3"],
    [[a(1), a(2), a(3)], 1, "198.18.0.2 198.18.0.3 198.18.0.1"],
    [[a(1), a(2), a(3)], 2, "198.18.0.3 198.18.0.1 198.18.0.2"],
    [[a(1), a(2), a(3)], 3, "198.18.0.1 198.18.0.2 198.18.0.3"],
    [[cname, a(1), a(2)], 1, "web.example. 198.18.0.2 198.18.0.1"],
    [[a(1), aaaa(1), a(2), aaaa(2)], 1, "198.18.0.2 2001:db8::2 198.18.0.1 2001:db8::1"],
    [[a(1)], 5, "198.18.0.1"],
  ];
  for (const [answers, turn, want] of cases) assertEquals(show(rotateAnswers(answers, turn)), want);
});

Deno.test("rotateAnswers: over N turns each of N addresses comes first once; no copy when nothing moves", () => {
  const answers = [a(1), a(2), a(3), a(4)];
  const first = new Set<string>();
  for (let turn = 0; turn < 4; turn++) first.add(show(rotateAnswers(answers, turn)).split(" ")[0]);
  assertEquals(first.size, 4);
  strictEqual(rotateAnswers(answers, 4), answers);
  strictEqual(rotateAnswers([cname], 1).length, 1);
});
