import { deepStrictEqual as assertEquals, strictEqual } from "node:assert/strict";
import { type Cidr, parseCidr } from "../../model/ip.ts";
import { createLogger } from "../../observe/log.ts";
import { VIP_LOCK_FILE } from "../../ipam/lock.ts";
import { renderIpamState } from "../../ipam/state.ts";
import { loadStandaloneOnce } from "./load_once.ts";
import { listDir, withTempDir } from "../../../tests/support/temp_dir.ts";
import { ip } from "../../../tests/support/model_values.ts";

const CIDR = parseCidr("198.19.0.0/16") as Cidr;
const T0 = 1_700_000_000_000;

function service(name: string, spec = ""): string {
  return `apiVersion: v1
kind: Service
metadata: { name: ${name} }
spec:
${spec}  ports: [{ port: 80 }]
`;
}

Deno.test("loadStandaloneOnce: allocates from the state and the lock as run would, writing nothing", async () => {
  await withTempDir("svcgate-once-", async (dir) => {
    await Deno.mkdir(`${dir}/m`);
    await Deno.mkdir(`${dir}/state`);
    await Deno.writeTextFile(`${dir}/m/web.yaml`, service("web"));
    await Deno.writeTextFile(`${dir}/m/api.yaml`, service("api"));
    await Deno.writeTextFile(`${dir}/m/db.yaml`, service("db", "  clusterIP: 10.0.0.1\n"));
    await Deno.writeTextFile(
      `${dir}/m/${VIP_LOCK_FILE}`,
      '{"version":1,"services":{"default/api":["198.19.9.9"]}}',
    );
    const state = renderIpamState({
      version: 1,
      allocations: { "default/web": { ips: [ip("198.19.40.1")] } },
      released: [],
    });
    await Deno.writeTextFile(`${dir}/state/ipam.json`, state);
    const once = await loadStandaloneOnce({
      manifests: `${dir}/m`,
      serviceCidrs: [CIDR],
      stateDir: `${dir}/state`,
      log: createLogger({ format: "text", write: () => {} }),
      now: T0,
    });
    assertEquals(once.services.map((s) => `${s.name} ${s.clusterIPs}`).sort(), [
      "api 198.19.9.9",
      "web 198.19.40.1",
    ]);
    assertEquals(once.errors, [
      'default/db: clusterIP "10.0.0.1" is outside --service-cidr 198.19.0.0/16',
    ]);
    assertEquals(once.lock?.services, { "default/api": ["198.19.9.9"] });
    strictEqual(once.lockPath, `${dir}/m/${VIP_LOCK_FILE}`);
    strictEqual(once.load.services.length, 3);
    // Nothing written: the state file is as it was, and no temporary files appeared.
    strictEqual(await Deno.readTextFile(`${dir}/state/ipam.json`), state);
    assertEquals(await listDir(`${dir}/state`), ["ipam.json"]);
  });
});

Deno.test("loadStandaloneOnce: manifest errors, then a bad lock file, are error lines; warnings are logged", async () => {
  await withTempDir("svcgate-once-", async (dir) => {
    await Deno.writeTextFile(`${dir}/web.yaml`, service("web") + "---\nkind: Deployment\n");
    await Deno.writeTextFile(`${dir}/bad.yaml`, service("Bad"));
    await Deno.writeTextFile(`${dir}/${VIP_LOCK_FILE}`, "{");
    const logs: string[] = [];
    const once = await loadStandaloneOnce({
      manifests: dir,
      serviceCidrs: [CIDR],
      stateDir: `${dir}/missing`,
      log: createLogger({ format: "text", write: (l) => logs.push(l), now: () => "T" }),
      now: T0,
    });
    strictEqual(once.errors.length, 2);
    strictEqual(once.errors[0].startsWith(`${dir}/bad.yaml#1 metadata.name: "Bad"`), true);
    strictEqual(once.errors[1].startsWith(`Cannot read VIP lock file`), true);
    strictEqual(once.lock, null);
    strictEqual(logs.length, 1);
    strictEqual(logs[0].includes('"Deployment" is not a kind svcgate reads'), true);
    strictEqual(once.services.length, 1);
  });
});
