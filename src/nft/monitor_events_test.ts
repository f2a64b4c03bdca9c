import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { driftScopes, MonitorLineSplitter, MonitorReader } from "./monitor_events.ts";

// As nft 1.0.6 prints them (captured in a namespace: flush map, flush chain, delete chain,
// flush ruleset).
const CAPTURED = `delete element ip svcgate vip-dispatch { 198.19.0.2 . tcp . 80 : goto lb-1 }
delete element ip svcgate vip-dispatch { 198.19.0.1 . tcp . 80 : goto lb-1 }
# new generation 3 by process 6244 (nft)
delete rule ip svcgate nat-output handle 4
delete rule ip svcgate nat-output handle 5
# new generation 4 by process 6245 (nft)
add element ip6 svcgate cluster-ips { 2001:db8::10 comment "default/web" }
add table ip other
delete chain ip other d
# new generation 5 by process 42 (deno)
delete set ip svcgate vip-dispatch
delete chain ip svcgate lb-1
delete table ip svcgate
# new generation 6 by process 6256 (nft)
`;

Deno.test("MonitorReader: distinct changes are grouped by the transaction that committed them", () => {
  const reader = new MonitorReader();
  const txs = CAPTURED.split("\n").flatMap((l) => reader.push(l));
  assertEquals(
    txs.map((
      t,
    ) => [
      t.generation,
      t.pid,
      t.changes.map((c) => `${c.op} ${c.object} ${c.family} ${c.table} ${c.name}`),
    ]),
    [
      [3, 6244, ["delete element ip svcgate vip-dispatch"]],
      [4, 6245, ["delete rule ip svcgate nat-output"]],
      [5, 42, [
        "add element ip6 svcgate cluster-ips",
        "add table ip other ",
        "delete chain ip other d",
      ]],
      [6, 6256, [
        "delete set ip svcgate vip-dispatch",
        "delete chain ip svcgate lb-1",
        "delete table ip svcgate ",
      ]],
    ],
  );
});

Deno.test("driftScopes: elements name their set, rules their chain; tables, sets and chains are structural", () => {
  const reader = new MonitorReader();
  const txs = CAPTURED.split("\n").flatMap((l) => reader.push(l));
  const scope = (i: number) =>
    [...driftScopes(txs[i].changes, "svcgate")].map(([f, s]) => [
      f,
      s.structural,
      [...s.sets],
      [...s.chains],
    ]);
  assertEquals(scope(0), [["ip", false, ["vip-dispatch"], []]]);
  assertEquals(scope(1), [["ip", false, [], ["nat-output"]]]);
  assertEquals(scope(2), [["ip6", false, ["cluster-ips"], []]], "other tables are not ours");
  assertEquals(scope(3), [["ip", true, [], []]]);
});

Deno.test("MonitorLineSplitter: whole lines across any chunking; element additions are never decoded", () => {
  const text = "add element ip svcgate cluster-ips { 198.19.0.1 }\n" +
    "delete element ip svcgate vip-dispatch { 198.19.0.1 . tcp . 80 : goto lb-1 }\n" +
    "add elemenX ip other\n" +
    "add element ip svcgate hairpin { 198.18.0.1 . 198.18.0.1 }\n" +
    "# new generation 3 by process 42 (deno)\n";
  const want = [
    "delete element ip svcgate vip-dispatch { 198.19.0.1 . tcp . 80 : goto lb-1 }",
    "add elemenX ip other",
    "# new generation 3 by process 42 (deno)",
  ];
  const bytes = new TextEncoder().encode(text);
  for (const size of [1, 2, 5, 11, 12, 13, 64, bytes.length]) {
    const splitter = new MonitorLineSplitter();
    const got: string[] = [];
    for (let i = 0; i < bytes.length; i += size) {
      got.push(...splitter.push(bytes.slice(i, i + size)));
    }
    assertEquals(got, want, `chunks of ${size}`);
  }
});
