import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { silentLogger } from "../observe/log.ts";
import { MetricsRegistry } from "../observe/metrics.ts";
import { type IpamState, parseIpamState } from "./state.ts";
import { IPAM_STATE_FILE } from "./state_file.ts";
import { StateWriter } from "./state_writer.ts";
import { withTempDir } from "../../tests/support/temp_dir.ts";
import { ip as parsed } from "../../tests/support/model_values.ts";

function stateWith(key: string, ip: string): IpamState {
  return { version: 1, allocations: { [key]: { ips: [parsed(ip)] } }, released: [] };
}

Deno.test("StateWriter: the newest queued state is on disk after flush", async () => {
  await withTempDir("svcgate-writer-", async (dir) => {
    const writer = new StateWriter(`${dir}/state`, silentLogger, new MetricsRegistry());
    writer.save(stateWith("default/a", "198.19.0.1"));
    writer.save(stateWith("default/b", "198.19.0.2"));
    writer.save(stateWith("default/c", "198.19.0.3"));
    await writer.flush();
    const text = await Deno.readTextFile(`${dir}/state/${IPAM_STATE_FILE}`);
    assertEquals(parseIpamState(text), stateWith("default/c", "198.19.0.3"));
  });
});

Deno.test("StateWriter: a failed write is counted and retried until it succeeds", async () => {
  await withTempDir("svcgate-writer-", async (dir) => {
    const metrics = new MetricsRegistry();
    // A file where the state directory should be: mkdir fails until it is removed.
    await Deno.writeTextFile(`${dir}/state`, "");
    const writer = new StateWriter(`${dir}/state`, silentLogger, metrics);
    writer.save(stateWith("default/a", "198.19.0.1"));
    const failed = () => /^svcgate_ipam_save_failures_total [1-9]/m.test(metrics.render());
    while (!failed()) await new Promise((r) => setTimeout(r, 5));
    await Deno.remove(`${dir}/state`);
    await writer.flush();
    const text = await Deno.readTextFile(`${dir}/state/${IPAM_STATE_FILE}`);
    assertEquals(parseIpamState(text), stateWith("default/a", "198.19.0.1"));
  });
});
