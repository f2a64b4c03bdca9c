// IPAM across real process restarts: separate processes load, allocate and save the state file
// as the daemon does at start-up; one is killed while writing.
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { parseIpamState } from "../../src/ipam/state.ts";

const MAIN = new URL("./ipam_main.ts", import.meta.url).pathname;
const CIDRS = ["198.19.0.0/16", "2001:db8:1::/112"];

interface Output {
  problem: string | null;
  vips: Record<string, string[]>;
  errors: string[];
}

async function allocate(
  stateDir: string,
  services: { key: string; families: (4 | 6)[] }[],
  live: Record<string, string[]> = {},
): Promise<Output> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      MAIN,
      "allocate",
      stateDir,
      JSON.stringify({ cidrs: CIDRS, services, live }),
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  if (out.code !== 0) throw new Error(`ipam_main failed (${out.code}): ${stderr}`);
  return JSON.parse(new TextDecoder().decode(out.stdout));
}

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "svcgate-ipam-restart-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const SERVICES = [
  { key: "default/web", families: [4, 6] as (4 | 6)[] },
  { key: "default/api", families: [4] as (4 | 6)[] },
  { key: "prod/db", families: [6] as (4 | 6)[] },
];

Deno.test("ipam restart: a second process gives every service the same VIPs", async () => {
  await withTempDir(async (dir) => {
    const first = await allocate(dir, SERVICES);
    assertEquals(first.errors, []);
    assert(first.problem?.includes("does not exist"), String(first.problem));
    // Restart with a changed order and a new service: old VIPs identical, the new one distinct.
    const second = await allocate(
      dir,
      [...SERVICES].reverse().concat([{ key: "default/new", families: [4] }]),
    );
    assertEquals(second.problem, null);
    for (const s of SERVICES) assertEquals(second.vips[s.key], first.vips[s.key], s.key);
    const old = new Set(Object.values(first.vips).flat());
    assert(!old.has(second.vips["default/new"][0]));
    // And once more, with nothing changed.
    const third = await allocate(dir, SERVICES.concat([{ key: "default/new", families: [4] }]));
    assertEquals(third.vips, second.vips);
  });
});

Deno.test("ipam restart: a corrupt state file is recovered from the live VIPs without moving them", async () => {
  await withTempDir(async (dir) => {
    const first = await allocate(dir, SERVICES);
    await Deno.writeTextFile(`${dir}/ipam.json`, '{"version":1,"allocations":{"default/web"');
    // The kernel's table still serves every VIP: the caller passes them as live.
    const second = await allocate(
      dir,
      SERVICES.concat([{ key: "default/new", families: [4, 6] }]),
      first.vips,
    );
    assert(
      second.problem?.startsWith(`Cannot load IPAM state file "${dir}/ipam.json": not valid JSON`),
      String(second.problem),
    );
    for (const s of SERVICES) assertEquals(second.vips[s.key], first.vips[s.key], s.key);
    const old = new Set(Object.values(first.vips).flat());
    for (const ip of second.vips["default/new"]) assert(!old.has(ip), ip);
    // The recovered state was saved: a third start reads it cleanly.
    const third = await allocate(dir, SERVICES.concat([{ key: "default/new", families: [4, 6] }]));
    assertEquals(third.problem, null);
    assertEquals(third.vips, second.vips);
  });
});

Deno.test("ipam restart: a process killed while saving leaves a whole state file", async () => {
  await withTempDir(async (dir) => {
    for (let round = 0; round < 5; round++) {
      const child = new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", MAIN, "churn", dir],
        stdout: "piped",
        stderr: "inherit",
      }).spawn();
      const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
      let seen = "";
      while (!seen.includes("saving")) {
        const { value, done } = await reader.read();
        if (done) throw new Error("churn process exited early");
        seen += value;
      }
      reader.releaseLock();
      child.stdout.cancel().catch(() => {});
      // Let it save many times, then kill it at an arbitrary point.
      await new Promise((r) => setTimeout(r, 150 + round * 37));
      child.kill("SIGKILL");
      await child.status;
      const text = await Deno.readTextFile(`${dir}/ipam.json`);
      const parsed = parseIpamState(text);
      if (typeof parsed === "string") throw new Error(`round ${round}: ${parsed}`);
      assertEquals(Object.keys(parsed.allocations).length, 5000);
      // Temporary files of a killed writer never shadow the state file; the next load removes them.
      for await (const e of Deno.readDir(dir)) {
        assert(e.name === "ipam.json" || e.name.startsWith(".ipam.json.tmp-"), e.name);
      }
      await allocate(dir, []);
      const names: string[] = [];
      for await (const e of Deno.readDir(dir)) names.push(e.name);
      assertEquals(names, ["ipam.json"]);
    }
  });
});
