import { deepStrictEqual as assertEquals, match, ok as assert, rejects } from "node:assert/strict";
import { conntrackArgs, NftError, nftErrorFrom } from "./executor.ts";
import { FakeNftExecutor } from "../../tests/support/nft_fake_executor.ts";

Deno.test("executor: nft's error output becomes a typed error quoting the reason and the line", () => {
  const script = "add table ip svcgate\nadd element ip svcgate m { 1.2.3.4 : goto y }\n";
  const stderr = "/dev/stdin:2:27-37: Error: Could not process rule: File exists\n" +
    "add element ip svcgate m { 1.2.3.4 : goto y }\n                          ^^^^^^^^^^^\n";
  const e = nftErrorFrom("Applying an nft transaction", stderr, 1, script);
  assert(e instanceof NftError, "an NftError");
  assertEquals(
    { line: e.line, lineText: e.lineText, reason: e.reason, exitCode: e.exitCode },
    {
      line: 2,
      lineText: "add element ip svcgate m { 1.2.3.4 : goto y }",
      reason: "Could not process rule: File exists",
      exitCode: 1,
    },
    "fields",
  );
  assertEquals(
    e.message,
    'Applying an nft transaction failed (exit 1) at line 2 ("add element ip svcgate m { 1.2.3.4 : goto y }"): Could not process rule: File exists',
    "message",
  );
  assert(!e.notFound, "not a not-found error");
});

Deno.test("executor: an error without a line still says what nft said", () => {
  const e = nftErrorFrom("Listing", "Error: Could not process rule: Operation not permitted\n", 1);
  assertEquals(e.line, undefined, "no line");
  assertEquals(
    e.message,
    "Listing failed (exit 1): Could not process rule: Operation not permitted",
    "message",
  );
});

Deno.test("executor: conntrack command lines for a service flow, a NodePort flow, a whole port", () => {
  assertEquals(
    conntrackArgs({
      family: "ip",
      origDst: "198.19.0.53",
      origPortDst: 53,
      replySrc: "198.18.0.11",
    }),
    [
      "-D",
      "-f",
      "ipv4",
      "-p",
      "udp",
      "--orig-dst",
      "198.19.0.53",
      "--orig-port-dst",
      "53",
      "--reply-src",
      "198.18.0.11",
    ],
    "service",
  );
  assertEquals(
    conntrackArgs({ family: "ip6", origPortDst: 30053, replySrc: "2001:db8::a" }),
    ["-D", "-f", "ipv6", "-p", "udp", "--orig-port-dst", "30053", "--reply-src", "2001:db8::a"],
    "NodePort",
  );
});

Deno.test("fake nft: all-or-nothing, with the kernel's refusals", async () => {
  const nft = new FakeNftExecutor();
  await nft.apply([
    "add table ip svcgate",
    'add map ip svcgate m { type ipv4_addr : verdict; comment "sg:1"; }',
    "add chain ip svcgate a",
    "add element ip svcgate m { 198.19.0.1 : goto a }",
    "",
  ].join("\n"));
  const rows: [string, RegExp][] = [
    ["add element ip svcgate m { 198.19.0.1 : drop }", /File exists/],
    ["delete element ip svcgate m { 198.19.0.2 }", /No such file/],
    ["delete chain ip svcgate a", /Device or resource busy/],
    ["add element ip svcgate m { 198.19.0.3 : goto missing }", /No such file/],
    ["add rule ip svcgate a ip daddr @nothere accept", /No such file/],
    ["frobnicate", /syntax error/],
  ];
  for (const [line, pattern] of rows) {
    const script = `add element ip svcgate m { 198.19.0.9 : drop }\n${line}\n`;
    await rejects(() => nft.apply(script), (e) => {
      match((e as Error).message, pattern, line);
      assertEquals((e as NftError).line, 2, `${line}: failing line`);
      return true;
    });
    assertEquals(nft.elements("ip", "m")?.has("198.19.0.9"), false, `${line}: nothing applied`);
  }
  nft.failNextApply("Could not process rule: Cannot allocate memory");
  await rejects(
    () => nft.apply("add table ip6 svcgate\n"),
    /Cannot allocate memory/,
    "injected",
  );
  assertEquals(nft.hasTable("ip6"), false, "injected failure applied nothing");
  await nft.apply("add table ip6 svcgate\n");
  assertEquals(nft.hasTable("ip6"), true, "next apply works");
  assertEquals(await nft.listTable("ip6").then((j) => j !== null), true, "listed");
  nft.dropTable("ip6");
  assertEquals(await nft.listTable("ip6"), null, "absent table lists as null");
});
