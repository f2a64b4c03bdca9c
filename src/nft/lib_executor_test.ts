/**
 * Tests of the libnftables executor. FFI talks to the network namespace of the process that makes
 * the call, and this test process lives in the root namespace, whose ruleset must never be
 * touched: so every call that reaches the kernel runs in a child process (this same file, run as
 * a script) started with `ip netns exec <fresh namespace>`. The child does the same things with
 * {@link NftLibExecutor} and with {@link NftCommandExecutor} and prints both results; the assertions
 * are here, in the parent. The namespace is deleted in `finally`.
 *
 * Under CI=true a test that cannot run (no root, no nft, no libnftables) fails; elsewhere it is
 * skipped with the reason.
 * @module
 */

import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { NftCommandExecutor, NftError, type NftExecutor } from "./executor.ts";
import { libnftablesUnavailableReason, NftLibExecutor } from "./lib_executor.ts";

const SELF = new URL(import.meta.url).pathname;

// ---------------------------------------------------------------------------------------------
// The child: runs inside the fresh namespace.

/** The fields of an executor error that callers see. */
interface ErrorView {
  name: string;
  message: string;
  exitCode: number;
  line: number | null;
  lineText: string | null;
  reason: string;
  notFound: boolean;
  /** stderr with the input's name (`/dev/stdin`, the temporary file) removed. */
  stderr: string;
}

function errorView(e: unknown): ErrorView | string {
  if (!(e instanceof NftError)) return `not an NftError: ${String(e)}`;
  return {
    name: e.name,
    message: e.message,
    exitCode: e.exitCode,
    line: e.line ?? null,
    lineText: e.lineText ?? null,
    reason: e.reason,
    notFound: e.notFound,
    stderr: e.stderr.replace(/^[^:\n]*:(\d+:\d+)/gm, "INPUT:$1"),
  };
}

async function outcome(f: () => Promise<unknown>): Promise<unknown> {
  try {
    return { ok: await f() };
  } catch (e) {
    return { error: errorView(e) };
  }
}

const SETUP = [
  "add table ip svcgate",
  'add set ip svcgate cluster-ips { type ipv4_addr; comment "sg:1"; }',
  "add map ip svcgate vip-dispatch { type ipv4_addr . inet_proto . inet_service : verdict; }",
  "add chain ip svcgate svc-a",
  "add rule ip svcgate svc-a counter accept",
  "add chain ip svcgate nat-output { type nat hook output priority -100; policy accept; }",
  "add rule ip svcgate nat-output ip daddr . meta l4proto . th dport vmap @vip-dispatch",
  'add element ip svcgate cluster-ips { 198.19.0.10 comment "default/web" }',
  "add element ip svcgate vip-dispatch { 198.19.0.10 . tcp . 80 : goto svc-a }",
  "",
].join("\n");

/** Failing transactions: each leaves the ruleset as it was. */
const BAD: [string, string][] = [
  [
    "syntax error on line 2",
    "add element ip svcgate cluster-ips { 198.19.0.11 }\nfrobnicate ip x\n",
  ],
  [
    "element exists with another value (kernel, line 2)",
    "add element ip svcgate cluster-ips { 198.19.0.12 }\n" +
    "add element ip svcgate vip-dispatch { 198.19.0.10 . tcp . 80 : drop }\n",
  ],
  [
    "missing element (kernel, line 3)",
    "add element ip svcgate cluster-ips { 198.19.0.13 }\nadd chain ip svcgate svc-b\n" +
    "delete element ip svcgate cluster-ips { 198.19.9.9 }\n",
  ],
  [
    "missing chain (line 1)",
    "add element ip svcgate vip-dispatch { 198.19.0.14 . udp . 53 : goto nowhere }\n",
  ],
  ["missing table", "add element ip6 svcgate cluster-ips { 2001:db8::1 }\n"],
];

async function both(
  lib: NftExecutor,
  cmd: NftExecutor,
  f: (e: NftExecutor) => Promise<unknown>,
): Promise<{ lib: unknown; cmd: unknown }> {
  return { lib: await outcome(() => f(lib)), cmd: await outcome(() => f(cmd)) };
}

/** What the child reports to the parent. */
interface ChildReport {
  reads: Record<string, { lib: unknown; cmd: unknown }>;
  errors: Record<string, { lib: unknown; cmd: unknown }>;
  afterErrors: { lib: unknown; cmd: unknown };
  concurrent: { elements: number; failed: number };
  bigLoad: {
    elements: number;
    ticksWhileBusy: number;
    contextsBefore: number;
    contextsAfter: number;
  };
  nul: unknown;
  closed: unknown;
}

async function child(): Promise<void> {
  const lib = NftLibExecutor.open();
  const cmd = new NftCommandExecutor();
  await lib.apply(SETUP);
  const reads: ChildReport["reads"] = {
    "list table ip": await both(lib, cmd, (e) => e.listTable("ip")),
    "list table ip6 (absent)": await both(lib, cmd, (e) => e.listTable("ip6")),
    "list set": await both(lib, cmd, (e) => e.listSet("ip", "set", "cluster-ips")),
    "list map": await both(lib, cmd, (e) => e.listSet("ip", "map", "vip-dispatch")),
    "list map (absent)": await both(lib, cmd, (e) => e.listSet("ip", "map", "nothere")),
    "outline ip": await both(lib, cmd, (e) => e.listOutline("ip")),
    "outline ip6 (absent)": await both(lib, cmd, (e) => e.listOutline("ip6")),
    "list set with a bad name": await both(lib, cmd, (e) => e.listSet("ip", "set", "bad name")),
  };
  const errors: ChildReport["errors"] = {};
  for (const [name, script] of BAD) errors[name] = await both(lib, cmd, (e) => e.apply(script));
  const afterErrors = await both(lib, cmd, (e) => e.listTable("ip"));

  // Serialized: many transactions at once through one context, every one applied.
  const results = await Promise.allSettled(
    Array.from(
      { length: 40 },
      (_, i) => lib.apply(`add element ip svcgate cluster-ips { 198.19.1.${i} }\n`),
    ),
  );
  const set = JSON.parse((await lib.listSet("ip", "set", "cluster-ips"))!);
  const elems = set.nftables.find((x: { set?: unknown }) => x.set).set.elem as unknown[];

  // Non-blocking: timers keep firing while a big transaction is inside the library.
  const lines = ["add set ip svcgate big { type ipv4_addr . inet_service; }"];
  for (let i = 0; i < 100_000; i += 1000) {
    const chunk = [];
    for (let j = i; j < i + 1000; j++) {
      chunk.push(`198.18.${j >> 8 & 255}.${j & 255} . ${j >> 16 ? 81 : 80}`);
    }
    lines.push(`add element ip svcgate big { ${chunk.join(", ")} }`);
  }
  const contextsBefore = lib.contextsCreated;
  let ticksWhileBusy = 0, done = false;
  const ticker = (async () => {
    while (!done) {
      await new Promise((r) => setTimeout(r, 1));
      if (lib.busy) ticksWhileBusy++;
    }
  })();
  await lib.apply(lines.join("\n") + "\n");
  done = true;
  await ticker;
  // The next call runs after the big call's context was replaced.
  await lib.listSet("ip", "set", "cluster-ips");
  const contextsAfter = lib.contextsCreated;
  const big = JSON.parse((await lib.listSet("ip", "set", "big"))!);
  const bigElems = big.nftables.find((x: { set?: unknown }) => x.set).set.elem as unknown[];

  const nul = await outcome(() => lib.apply("add table ip a\nadd table ip b\0\n"));
  await lib.close();
  const closed = await outcome(() => lib.listTable("ip"));
  const report: ChildReport = {
    reads,
    errors,
    afterErrors,
    concurrent: {
      elements: elems.length,
      failed: results.filter((r) => r.status === "rejected").length,
    },
    bigLoad: { elements: bigElems.length, ticksWhileBusy, contextsBefore, contextsAfter },
    nul,
    closed,
  };
  console.log(`REPORT ${JSON.stringify(report)}`);
}

/** Child mode for the permission test: only tries to open the library. */
function probeOpen(): void {
  const lib = NftLibExecutor.tryOpen();
  console.log(
    `OPEN ${JSON.stringify({ opened: lib !== null, reason: NftLibExecutor.unavailableReason })}`,
  );
}

if (import.meta.main) {
  if (Deno.args[0] === "probe-open") probeOpen();
  else await child();
}

// ---------------------------------------------------------------------------------------------
// The parent: the tests.

async function run(cmd: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(cmd[0], {
    args: cmd.slice(1),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const d = new TextDecoder();
  return { code: out.code, stdout: d.decode(out.stdout), stderr: d.decode(out.stderr) };
}

async function unavailableReason(): Promise<string | null> {
  if (Deno.build.os !== "linux") return "network namespaces need Linux";
  try {
    if (Deno.uid() !== 0) return "creating a network namespace needs root";
    for (const tool of ["ip", "nft"]) {
      if ((await run(["sh", "-c", `command -v ${tool}`])).code !== 0) {
        return `"${tool}" is not installed`;
      }
    }
  } catch (e) {
    return `cannot probe the system: ${(e as Error).message}`;
  }
  // Loads the library only: no context, no netlink.
  return libnftablesUnavailableReason();
}

const CI = Deno.env.get("CI") === "true";
const unavailable = import.meta.main ? null : await unavailableReason();

/** A test that needs a namespace and libnftables: skipped with the reason, but fails under CI. */
function nsTest(name: string, fn: () => Promise<void>): void {
  if (unavailable && !CI) {
    Deno.test({ name: `${name} (skipped: ${unavailable})`, ignore: true, fn() {} });
    return;
  }
  Deno.test(name, async () => {
    if (unavailable) throw new Error(`End-to-end test cannot run under CI: ${unavailable}`);
    await fn();
  });
}

function lastLine(text: string, prefix: string): string {
  const line = text.split("\n").reverse().find((l) => l.startsWith(prefix));
  if (line === undefined) throw new Error(`no "${prefix}" line in the child's output:\n${text}`);
  return line.slice(prefix.length);
}

Deno.test("lib executor: a library that is not there gives null and a reason quoting the path", () => {
  const lib = NftLibExecutor.tryOpen({ path: "/nonexistent/libnftables.so.1" });
  assertEquals(lib, null, "no executor");
  const reason = NftLibExecutor.unavailableReason ?? "";
  assert(
    reason.startsWith('Cannot load "/nonexistent/libnftables.so.1" through FFI: '),
    `reason: ${reason}`,
  );
});

Deno.test("lib executor: without --allow-ffi it gives null and says so, without prompting", async () => {
  const r = await run([
    Deno.execPath(),
    "run",
    "--no-prompt",
    `--allow-read=${SELF}`,
    SELF,
    "probe-open",
  ]);
  assertEquals(
    JSON.parse(lastLine(r.stdout, "OPEN ")),
    {
      opened: false,
      reason: "Cannot use libnftables: FFI permission is not granted (run with --allow-ffi)",
    },
    `child result (stderr: ${r.stderr})`,
  );
});

nsTest(
  "lib executor: in a fresh namespace, same results and errors as the nft command; serialized, non-blocking",
  async () => {
    const ns = `sglab-${Deno.pid}-nftlib-${crypto.randomUUID().slice(0, 8)}`;
    const add = await run(["ip", "netns", "add", ns]);
    if (add.code !== 0) throw new Error(`ip netns add ${ns} failed: ${add.stderr}`);
    try {
      const r = await run(["ip", "netns", "exec", ns, Deno.execPath(), "run", "-A", SELF]);
      const report: ChildReport = JSON.parse(lastLine(r.stdout, "REPORT "));

      for (const [name, pair] of Object.entries(report.reads)) {
        assertEquals(pair.lib, pair.cmd, `${name}: libnftables vs nft`);
      }
      const table = report.reads["list table ip"].lib as { ok: string };
      assert(table.ok.includes('"name": "vip-dispatch"'), "the table lists its map");
      assertEquals(report.reads["list table ip6 (absent)"].lib, { ok: null }, "absent table");
      assertEquals(report.reads["list map (absent)"].lib, { ok: null }, "absent map");

      const expected: Record<string, { line: number; reason: RegExp }> = {
        "syntax error on line 2": { line: 2, reason: /^syntax error/ },
        "element exists with another value (kernel, line 2)": {
          line: 2,
          reason: /^Could not process rule: File exists$/,
        },
        "missing element (kernel, line 3)": {
          line: 3,
          reason: /^Could not process rule: No such file or directory$/,
        },
        "missing chain (line 1)": {
          line: 1,
          reason: /^Could not process rule: No such file or directory$/,
        },
        "missing table": { line: 1, reason: /No such file or directory/ },
      };
      for (const [name, pair] of Object.entries(report.errors)) {
        assertEquals(pair.lib, pair.cmd, `${name}: libnftables vs nft`);
        const e = (pair.lib as { error: ErrorView }).error;
        assertEquals(e.name, "NftError", `${name}: type`);
        assertEquals(e.line, expected[name].line, `${name}: line`);
        assert(expected[name].reason.test(e.reason), `${name}: reason ${e.reason}`);
        assert(e.message.startsWith("Applying an nft transaction failed (exit 1) at line "), name);
      }
      assertEquals(report.afterErrors.lib, report.afterErrors.cmd, "after the errors");
      assertEquals(report.afterErrors.lib, report.reads["list table ip"].lib, "nothing applied");

      assertEquals(report.concurrent, { elements: 41, failed: 0 }, "40 concurrent applies");
      assertEquals(report.bigLoad.elements, 100_000, "the big transaction");
      assertEquals(
        report.bigLoad.contextsAfter,
        report.bigLoad.contextsBefore + 1,
        "a fresh context after the big transaction (its memory released)",
      );
      assert(
        report.bigLoad.ticksWhileBusy > 0,
        "timers fire while the library works (the call does not block the event loop)",
      );
      const nul = (report.nul as { error: ErrorView }).error;
      assertEquals(
        [nul.line, nul.lineText, nul.reason],
        [
          2,
          "add table ip b\0",
          "the text contains a NUL byte, where libnftables would stop reading",
        ],
        "NUL byte",
      );
      assertEquals(
        (report.closed as { error: ErrorView }).error.message,
        'Listing "nft list table ip svcgate" failed (exit -1): the libnftables executor is closed',
        "after close",
      );
    } finally {
      const del = await run(["ip", "netns", "del", ns]);
      if (del.code !== 0) console.error(`ip netns del ${ns} failed: ${del.stderr}`);
    }
  },
);
