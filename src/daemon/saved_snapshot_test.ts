import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import {
  loadSavedSnapshot,
  SAVED_SNAPSHOT_FILE,
  savedSnapshotPath,
  SnapshotSaver,
} from "./saved_snapshot.ts";
import { ModelStore } from "../model/store.ts";
import { createLogger } from "../observe/log.ts";
import { testService } from "../../tests/support/test_service.ts";
import { ip } from "../../tests/support/model_values.ts";
import { listDir, withTempDir } from "../../tests/support/temp_dir.ts";

const VERSION = "9.9.9";

Deno.test("saved snapshot: commits in a burst are written once, the newest; flush writes what waits", async () => {
  await withTempDir("svcgate-saved-", async (dir) => {
    const state = `${dir}/state`; // created on the first write
    const writes: number[] = [];
    const saver = new SnapshotSaver({
      stateDir: state,
      version: VERSION,
      log: createLogger({ format: "text", write: () => {} }),
      delayMs: 50,
      onWrite: (bytes) => writes.push(bytes),
    });
    const store = new ModelStore();
    for (let i = 0; i < 5; i++) {
      store.setService(testService(`default/s${i}`, { clusterIPs: [ip(`198.19.0.${i + 1}`)] }));
      saver.save(store.commit().snapshot);
    }
    await new Promise((r) => setTimeout(r, 300));
    assertEquals(writes.length, 1, "one write for the burst");
    let loaded = await loadSavedSnapshot(state, VERSION);
    assert(loaded.status === "loaded");
    assertEquals(loaded.snapshot.services.size, 5);
    // A commit just before a stop is written by flush(), not lost with the timer.
    store.setService(testService("default/late", { clusterIPs: [ip("198.19.0.99")] }));
    saver.save(store.commit().snapshot);
    await saver.flush();
    loaded = await loadSavedSnapshot(state, VERSION);
    assert(loaded.status === "loaded");
    assertEquals(loaded.snapshot.services.size, 6);
    // Only the file itself: the temporary file was renamed over it.
    assertEquals(await listDir(state), [SAVED_SNAPSHOT_FILE]);
  });
});

Deno.test("saved snapshot: missing, unreadable, corrupt and foreign files", async () => {
  await withTempDir("svcgate-saved-", async (dir) => {
    const path = savedSnapshotPath(dir);
    const cases: { what: string; write: string | null; status: string; says?: string }[] = [
      { what: "no file", write: null, status: "missing" },
      {
        what: "garbage",
        write: "garbage",
        status: "ignored",
        says: "does not start with a svcgate snapshot header",
      },
      {
        what: "another version",
        write: 'svcgate-snapshot 1 0.0.1 0 0 0\n{"namespaces":[],"services":[]}',
        status: "ignored",
        says: 'written by svcgate "0.0.1"',
      },
    ];
    for (const c of cases) {
      await Deno.remove(path).catch(() => {});
      if (c.write !== null) await Deno.writeTextFile(path, c.write);
      const r = await loadSavedSnapshot(dir, VERSION);
      assertEquals(r.status, c.status, c.what);
      if (r.status === "ignored") {
        assert(
          r.problem.startsWith(`Ignoring the saved snapshot ${JSON.stringify(path)}: `),
          r.problem,
        );
        assert(r.problem.includes(c.says!), `${c.what}: ${r.problem}`);
      }
    }
    await Deno.remove(path).catch(() => {});
    await Deno.mkdir(path);
    const r = await loadSavedSnapshot(dir, VERSION);
    assert(r.status === "ignored" && r.problem.includes("cannot read it"), JSON.stringify(r));
  });
});
