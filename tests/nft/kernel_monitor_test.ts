/**
 * KernelMonitor against the real `nft monitor` in a lab namespace: foreign changes to svcgate's
 * table are reported with what they touched; svcgate's own transactions and other tables are not.
 */

import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { Lab, labTest, runCommand } from "../lab/lab.ts";
import { waitFor } from "../daemon/harness.ts";
import { KernelMonitor, OwnProcesses } from "../../src/nft/kernel_monitor.ts";
import type { DriftScope } from "../../src/nft/monitor_events.ts";

Deno.test("OwnProcesses: every thread of this process is its own, other processes are not", () => {
  // The kernel names the committing thread: libnftables commits on an FFI call's thread.
  const own = new OwnProcesses();
  const threads = [...Deno.readDirSync(`/proc/${Deno.pid}/task`)].map((e) => Number(e.name));
  assert(threads.length > 1, `threads of ${Deno.pid}: ${threads}`);
  for (const tid of threads) assert(own.has(tid), `thread ${tid} of ${Deno.pid}`);
  const other = new Deno.Command("sleep", { args: ["5"] }).spawn();
  try {
    assertEquals(own.has(other.pid), false, "a child not added");
    own.add(other.pid);
    assertEquals(own.has(other.pid), true, "a child added");
  } finally {
    other.kill();
  }
  assertEquals(new OwnProcesses().has(1), Deno.pid === 1, "pid 1");
});

labTest("KernelMonitor: reports foreign changes to svcgate's table, not its own", async () => {
  const lab = await Lab.create({ pods: 1 });
  const own = new OwnProcesses();
  const seen: string[] = [];
  const show = (scopes: Map<string, DriftScope>) =>
    [...scopes].map(([f, s]) =>
      `${f} structural=${s.structural} sets=${[...s.sets]} chains=${[...s.chains]}`
    ).join("; ");
  const monitor = new KernelMonitor({
    table: "svcgate",
    own,
    command: ["ip", "netns", "exec", lab.node.ns, "nft", "monitor"],
  });
  try {
    monitor.start((scopes) => seen.push(show(scopes)));
    const nft = (script: string, mine = false) => {
      const child = new Deno.Command("ip", {
        args: ["netns", "exec", lab.node.ns, "nft", "-f", "-"],
        stdin: "piped",
        stdout: "null",
        stderr: "piped",
      }).spawn();
      if (mine) own.add(child.pid);
      const w = child.stdin.getWriter();
      return w.write(new TextEncoder().encode(script)).then(() => w.close()).then(() =>
        child.output()
      );
    };
    // The monitor is up once it reports a probe change.
    await waitFor("the monitor to run", async () => {
      await nft(
        "add table ip svcgate\nadd chain ip svcgate probe\ndelete chain ip svcgate probe\n",
      );
      return seen.length > 0;
    });
    seen.length = 0;
    await nft(
      "add map ip svcgate vip-dispatch { type ipv4_addr . inet_service : verdict; }\n" +
        "add chain ip svcgate lb\nadd rule ip svcgate lb counter\n" +
        "add element ip svcgate vip-dispatch { 198.19.0.1 . 80 : goto lb }\n",
      true,
    );
    await nft("add table ip other\nadd chain ip other c\n");
    await nft("flush map ip svcgate vip-dispatch\n");
    await nft("flush chain ip svcgate lb\n");
    await nft("delete table ip svcgate\n");
    await waitFor("three foreign changes", () => seen.length >= 3);
    assertEquals(seen, [
      "ip structural=false sets=vip-dispatch chains=",
      "ip structural=false sets= chains=lb",
      "ip structural=true sets= chains=",
    ]);
  } finally {
    await monitor.stop();
    await runCommand(["ip", "netns", "exec", lab.node.ns, "nft", "flush", "ruleset"]);
    await lab.destroy();
  }
});
