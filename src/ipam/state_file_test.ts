import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { parseCidr } from "../model/ip.ts";
import type { Cidr } from "../model/ip.ts";
import { allocateVips } from "./allocator.ts";
import { type IpamState, renderIpamState } from "./state.ts";
import {
  IPAM_STATE_FILE,
  loadIpamState,
  readVipLock,
  saveIpamState,
  writeFileAtomic,
} from "./state_file.ts";
import { testService } from "../../tests/support/test_service.ts";
import { listDir, withTempDir } from "../../tests/support/temp_dir.ts";
import { ip } from "../../tests/support/model_values.ts";

const V4 = parseCidr("198.19.0.0/16") as Cidr;
const T0 = 1_700_000_000_000;

const svc = (key: string) => testService(key);

Deno.test("state file: save then load gives the same state; a restart keeps every VIP", async () => {
  await withTempDir("svcgate-ipam-", async (dir) => {
    const stateDir = `${dir}/state/nested`; // created on save
    const services = ["default/web", "default/api", "prod/db"].map(svc);
    const first = allocateVips((await loadIpamState(stateDir, {})).state, services, {
      cidrs: [V4],
      now: T0,
    });
    await saveIpamState(stateDir, first.state);
    assertEquals(await listDir(stateDir), [IPAM_STATE_FILE]); // no temporary file left behind
    assertEquals(
      await Deno.readTextFile(`${stateDir}/${IPAM_STATE_FILE}`),
      renderIpamState(first.state),
    );

    // "Restart": a new process would do exactly this.
    const loaded = await loadIpamState(stateDir, {});
    assertEquals(loaded.status, "file");
    assertEquals(loaded.problem, undefined);
    assertEquals(loaded.needsSave, false);
    assertEquals(loaded.state, first.state);
    const second = allocateVips(loaded.state, [...services].reverse(), {
      cidrs: [V4],
      now: T0 + 1,
    });
    for (const s of first.services) {
      const again = second.services.find((x) => x.name === s.name && x.namespace === s.namespace);
      assertEquals(again?.clusterIPs, s.clusterIPs);
    }
  });
});

Deno.test("state file: a missing file is reported and recovered from the live VIPs", async () => {
  await withTempDir("svcgate-ipam-", async (dir) => {
    const loaded = await loadIpamState(dir, { "default/web": ["198.19.7.7"] });
    assertEquals(loaded.status, "missing");
    assertEquals(
      loaded.problem,
      `IPAM state file "${dir}/ipam.json" does not exist; recovering 1 service(s) from the live ruleset`,
    );
    assertEquals(loaded.state.allocations, { "default/web": { ips: ["198.19.7.7"] } });
    assertEquals(loaded.needsSave, true);
  });
});

Deno.test("state file: a corrupt file is reported, kept aside, and recovered without moving live VIPs", async () => {
  await withTempDir("svcgate-ipam-", async (dir) => {
    // A healthy run first: three services get VIPs and the state is saved.
    const services = ["default/web", "default/api", "default/db"].map(svc);
    const first = allocateVips((await loadIpamState(dir, {})).state, services, {
      cidrs: [V4],
      now: T0,
    });
    await saveIpamState(dir, first.state);
    const live: Record<string, string[]> = {};
    for (const s of first.services) live[`${s.namespace}/${s.name}`] = [...s.clusterIPs];

    // The file is torn.
    const path = `${dir}/${IPAM_STATE_FILE}`;
    const text = await Deno.readTextFile(path);
    await Deno.writeTextFile(path, text.slice(0, 40));

    const loaded = await loadIpamState(dir, live);
    assertEquals(loaded.status, "corrupt");
    assert(
      loaded.problem?.startsWith(`Cannot load IPAM state file "${path}": not valid JSON (`),
      loaded.problem,
    );
    assert(
      loaded.problem?.endsWith(
        `; moved it to "${path}.corrupt"; recovering 3 service(s) from the live ruleset`,
      ),
      loaded.problem,
    );
    assertEquals(await Deno.readTextFile(`${path}.corrupt`), text.slice(0, 40));

    // New services arrive with the recovery; the live ones keep their VIPs, and no newcomer
    // gets one of them.
    const next = allocateVips(loaded.state, [
      svc("default/new1"),
      ...services,
      svc("default/new2"),
    ], { cidrs: [V4], now: T0 + 1 });
    assertEquals(next.errors, []);
    for (const [key, ips] of Object.entries(live)) {
      assertEquals(next.state.allocations[key].ips, ips, key);
    }
    const liveIps = new Set(Object.values(live).flat());
    for (const key of ["default/new1", "default/new2"]) {
      assert(!liveIps.has(next.state.allocations[key].ips[0]), key);
    }
    await saveIpamState(dir, next.state);
    assertEquals((await loadIpamState(dir, live)).status, "file");
  });
});

Deno.test("state file: a structurally wrong file names the field", async () => {
  await withTempDir("svcgate-ipam-", async (dir) => {
    const path = `${dir}/${IPAM_STATE_FILE}`;
    await Deno.writeTextFile(
      path,
      '{"version":1,"allocations":{"default/web":{"ips":["198.19.0.999"]}},"released":[]}',
    );
    const loaded = await loadIpamState(dir, {});
    assertEquals(
      loaded.problem,
      `Cannot load IPAM state file "${path}": allocations["default/web"].ips[0]: "198.19.0.999" is not an IP address; moved it to "${path}.corrupt"; recovering 0 service(s) from the live ruleset`,
    );
    assertEquals(loaded.state.allocations, {});
  });
});

Deno.test("state file: a valid file that disagrees with the kernel takes the kernel's VIPs", async () => {
  await withTempDir("svcgate-ipam-", async (dir) => {
    const state: IpamState = {
      version: 1,
      allocations: { "default/web": { ips: [ip("198.19.0.20")] } },
      released: [],
    };
    await saveIpamState(dir, state);
    const loaded = await loadIpamState(dir, { "default/web": ["198.19.0.99"] });
    assertEquals(loaded.status, "file");
    assertEquals(loaded.adopted, ["default/web"]);
    assertEquals(loaded.needsSave, true);
    assertEquals(loaded.state.allocations, { "default/web": { ips: ["198.19.0.99"] } });
  });
});

Deno.test("writeFileAtomic: replaces content whole, leaves no temporary file, keeps the old file on failure", async () => {
  await withTempDir("svcgate-ipam-", async (dir) => {
    const path = `${dir}/x.json`;
    await writeFileAtomic(path, "one\n");
    await writeFileAtomic(path, "two\n");
    assertEquals(await Deno.readTextFile(path), "two\n");
    assertEquals(await listDir(dir), ["x.json"]);
    assertEquals((await Deno.stat(path)).mode! & 0o777, 0o644);

    // The target is a directory: rename fails; the temporary file is removed and the error says
    // what was attempted.
    await Deno.mkdir(`${dir}/sub`);
    await Deno.writeTextFile(`${dir}/sub/keep`, "");
    let message = "";
    try {
      await writeFileAtomic(`${dir}/sub`, "three\n");
    } catch (e) {
      message = (e as Error).message;
    }
    assert(message.startsWith(`Cannot write "${dir}/sub": `), message);
    assertEquals(await listDir(dir), ["sub", "x.json"]);
  });
});

Deno.test("writeFileAtomic: concurrent readers see the old or the new content, never a torn one", async () => {
  await withTempDir("svcgate-ipam-", async (dir) => {
    const path = `${dir}/big.json`;
    const a = "a".repeat(1 << 20) + "\n", b = "b".repeat(1 << 20) + "\n";
    await writeFileAtomic(path, a);
    let stop = false;
    let reads = 0;
    const reader = (async () => {
      while (!stop) {
        const t = await Deno.readTextFile(path);
        assert(t === a || t === b, `torn read of ${t.length} bytes`);
        reads++;
      }
    })();
    for (let i = 0; i < 20; i++) await writeFileAtomic(path, i % 2 ? a : b);
    stop = true;
    await reader;
    assert(reads > 0);
  });
});

Deno.test("loadIpamState readOnly: a corrupt file is reported but left in place", async () => {
  await withTempDir("svcgate-ipam-", async (dir) => {
    const path = `${dir}/${IPAM_STATE_FILE}`;
    await Deno.writeTextFile(path, "{");
    await Deno.writeTextFile(`${dir}/.ipam.json.tmp-999999999-ab`, "x");
    const loaded = await loadIpamState(dir, {}, { readOnly: true });
    assertEquals(loaded.status, "corrupt");
    assert(loaded.problem?.includes("; left it in place (read-only); "), loaded.problem);
    assertEquals(await listDir(dir), [".ipam.json.tmp-999999999-ab", IPAM_STATE_FILE]);
  });
});

Deno.test("readVipLock: missing is null, bad is a message naming the file, good is the lock", async () => {
  await withTempDir("svcgate-ipam-", async (dir) => {
    const path = `${dir}/svcgate-vips.lock`;
    assertEquals(await readVipLock(path), null);
    await Deno.writeTextFile(path, '{"version":1,"services":{"default/web":["198.19.0.20"]}}');
    assertEquals(await readVipLock(path), {
      version: 1,
      services: { "default/web": ["198.19.0.20"] },
    });
    await Deno.writeTextFile(path, '{"version":1,"services":{"default/web":["x"]}}');
    assertEquals(
      await readVipLock(path),
      `Cannot read VIP lock file "${path}": services["default/web"][0]: "x" is not an IP address`,
    );
  });
});
