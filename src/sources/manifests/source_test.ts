import { deepStrictEqual as assertEquals, rejects, strictEqual } from "node:assert/strict";
import { ModelStore } from "../../model/store.ts";
import type { Service } from "../../model/types.ts";
import { createLogger } from "../../observe/log.ts";
import { MetricsRegistry } from "../../observe/metrics.ts";
import type { ManifestState } from "./load.ts";
import { groupRepeated, ManifestSource, type ManifestSourceOptions } from "./source.ts";
import type { ValidationError } from "../objects/validate.ts";
import { wrongKindDocuments } from "../../../tests/support/hostile_manifests.ts";
import { METRICS } from "../../observe/metrics_catalogue.ts";
import { ip } from "../../../tests/support/model_values.ts";

function service(name: string, port: number, namespace = "default"): string {
  return `apiVersion: v1
kind: Service
metadata:
  name: ${name}
  namespace: ${namespace}
spec:
  ports:
    - port: ${port}
`;
}

/** Polls until `cond` holds; fails with `what` after a generous deadline (never a speed test). */
async function waitFor(what: string, cond: () => boolean, timeoutMs = 15000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Writes a file as careful tools do (temporary file, then rename): no half-written state. */
async function writeAtomic(path: string, text: string): Promise<void> {
  const slash = path.lastIndexOf("/");
  const tmp = `${path.slice(0, slash)}/.${path.slice(slash + 1)}.tmp`;
  await Deno.writeTextFile(tmp, text);
  await Deno.rename(tmp, path);
}

interface Harness {
  dir: string;
  store: ModelStore;
  source: ManifestSource;
  metrics: MetricsRegistry;
  logs: string[];
  syncs: () => number;
  /** `name:port` of every service in the store, committed now. */
  ports: () => string[];
}

async function withSource(
  files: Record<string, string>,
  options: Partial<ManifestSourceOptions>,
  fn: (h: Harness) => Promise<void> | void,
  root = "",
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "svcgate-reload-" });
  const store = new ModelStore();
  const metrics = new MetricsRegistry();
  const logs: string[] = [];
  const logger = createLogger({
    format: "text",
    level: "debug",
    write: (l) => logs.push(l),
    now: () => "T",
  });
  let syncs = 0;
  for (const [name, text] of Object.entries(files)) {
    const slash = name.lastIndexOf("/");
    if (slash > 0) await Deno.mkdir(`${dir}/${name.slice(0, slash)}`, { recursive: true });
    await Deno.writeTextFile(`${dir}/${name}`, text);
  }
  const source = new ManifestSource({
    path: `${dir}${root}`,
    logger,
    metrics,
    checkIntervalMs: 0,
    debounceMs: 50,
    ...options,
  });
  try {
    await source.start({ store, requestSync: () => syncs++ });
    const ports = () => {
      store.commit();
      return [...store.snapshot.services.values()].map((e) =>
        `${e.service.name}:${e.service.ports.map((p) => p.port).join(",")}`
      ).sort();
    };
    await fn({ dir, store, source, metrics, logs, syncs: () => syncs, ports });
  } finally {
    await source.stop();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("ManifestSource: start loads the files into the store", async () => {
  await withSource({ "a.yaml": service("a", 80), "b.yaml": service("b", 81) }, {}, (h) => {
    assertEquals(h.ports(), ["a:80", "b:81"]);
    assertEquals(h.source.status(), { synced: true, degraded: false });
    strictEqual(h.syncs(), 1);
    assertEquals(h.source.lastLoad?.services.map((s) => s.name), ["a", "b"]);
  });
});

Deno.test("ManifestSource: start rejects when the path does not exist", async () => {
  const dir = await Deno.makeTempDir({ prefix: "svcgate-reload-" });
  const source = new ManifestSource({ path: `${dir}/missing`, watch: false, checkIntervalMs: 0 });
  try {
    await rejects(
      source.start({ store: new ModelStore(), requestSync() {} }),
      new Error(`Cannot read manifests "${dir}/missing": no such file or directory`),
    );
  } finally {
    await source.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("ManifestSource: invalid objects at start are reported; the others serve", async () => {
  await withSource(
    { "a.yaml": `${service("a", 80)}---\n${service("b", 70000)}` },
    {},
    (h) => {
      assertEquals(h.ports(), ["a:80"]);
      const dir = h.dir;
      assertEquals(h.source.status(), {
        synced: true,
        degraded: true,
        lastError: `${dir}/a.yaml#2 spec.ports[0].port: 70000 is not a port (1-65535)`,
      });
      strictEqual(h.metrics.of(METRICS.manifestReloadErrors).get(), 1);
      assertEquals(h.logs.filter((l) => l.includes("ERROR")), [
        `T ERROR [manifests] ${dir}/a.yaml#2 spec.ports[0].port: 70000 is not a port (1-65535)`,
      ]);
    },
  );
});

Deno.test("ManifestSource: reload() (SIGHUP) applies a valid edit as a minimal diff", async () => {
  await withSource(
    { "a.yaml": `${service("a", 80)}---\n${service("b", 81)}` },
    { watch: false },
    async (h) => {
      h.store.commit();
      await Deno.writeTextFile(`${h.dir}/a.yaml`, `${service("a", 80)}---\n${service("b", 82)}`);
      const result = await h.source.reload();
      strictEqual(result.changed, true);
      const { changes } = h.store.commit();
      assertEquals(changes, { added: [], removed: [], changed: ["default/b"] });
      assertEquals(h.ports(), ["a:80", "b:82"]);
      // Nothing changed on disk: nothing reaches the store.
      const syncs = h.syncs();
      assertEquals((await h.source.reload()).changed, false);
      strictEqual(h.syncs(), syncs);
      strictEqual(h.store.hasChanges, false);
    },
  );
});

Deno.test("ManifestSource: file watching picks up edits, new and removed files", async () => {
  await withSource({ "a.yaml": service("a", 80) }, { watch: true }, async (h) => {
    await Deno.writeTextFile(`${h.dir}/a.yaml`, service("a", 8080));
    await waitFor("the edit", () => h.ports().join() === "a:8080");
    await Deno.mkdir(`${h.dir}/sub`);
    await Deno.writeTextFile(`${h.dir}/sub/b.yml`, service("b", 81));
    await waitFor("the new file", () => h.ports().join() === "a:8080,b:81");
    await Deno.remove(`${h.dir}/a.yaml`);
    await waitFor("the removal", () => h.ports().join() === "b:81");
    assertEquals(h.source.status(), { synced: true, degraded: false });
  });
});

Deno.test("ManifestSource: a parse error keeps the last good state of that file serving", async () => {
  await withSource(
    { "a.yaml": `${service("a", 80)}---\n${service("b", 81)}`, "c.yaml": service("c", 82) },
    { watch: true },
    async (h) => {
      assertEquals(h.ports(), ["a:80", "b:81", "c:82"]);
      // A broken edit of a.yaml (which also drops b) together with a valid edit of c.yaml.
      await writeAtomic(`${h.dir}/a.yaml`, `${service("a", 90)}---\nkind: [\n`);
      await writeAtomic(`${h.dir}/c.yaml`, service("c", 92));
      await waitFor("the valid edit", () => h.ports().includes("c:92"));
      await waitFor("the error", () => h.source.status().degraded);
      assertEquals(h.ports(), ["a:80", "b:81", "c:92"]);
      assertEquals(h.source.status(), {
        synced: true,
        degraded: true,
        lastError: `${h.dir}/a.yaml#2: cannot parse YAML at line 11, column 1: ` +
          "Flow sequence in block collection must be sufficiently indented and end with a ]; " +
          "serving the last good version of 2 objects",
      });
      strictEqual(h.metrics.of(METRICS.manifestReloadErrors).get(), 1);
      strictEqual(
        h.logs.some((l) => l.includes("ERROR") && l.includes("a.yaml#2: cannot parse")),
        true,
      );
      strictEqual(
        h.metrics.render().includes('svcgate_manifest_errors{severity="error"} 1'),
        true,
      );

      // Fixing the file applies it and clears the error.
      await writeAtomic(`${h.dir}/a.yaml`, service("a", 90));
      await waitFor("the fix", () => h.ports().join() === "a:90,c:92");
      assertEquals(h.source.status(), { synced: true, degraded: false });
    },
  );
});

Deno.test("ManifestSource: an object that becomes invalid keeps its last good version", async () => {
  await withSource(
    { "a.yaml": `${service("a", 80)}---\n${service("b", 81)}` },
    { watch: false },
    async (h) => {
      await Deno.writeTextFile(`${h.dir}/a.yaml`, `${service("a", 88)}---\n${service("b", 0)}`);
      await h.source.reload();
      assertEquals(h.ports(), ["a:88", "b:81"]);
      assertEquals(
        h.source.status().lastError,
        `${h.dir}/a.yaml#2 spec.ports[0].port: 0 is not a port (1-65535); serving the last good version of 1 object`,
      );
    },
  );
});

Deno.test("ManifestSource: rapid successive edits converge to the final file", async () => {
  await withSource(
    { "a.yaml": service("a", 1) },
    { watch: true, debounceMs: 30, maxDelayMs: 200 },
    async (h) => {
      for (let port = 2; port <= 40; port++) {
        // Some versions are broken mid-way; the last one is valid.
        const text = port % 7 === 0
          ? "kind: [\n"
          : `${service("a", port)}---\n${service("b", port + 1000)}`;
        await Deno.writeTextFile(`${h.dir}/a.yaml`, text);
      }
      await waitFor("the final version", () => h.ports().join() === "a:40,b:1040");
      // The watcher may still deliver the last events: let them run and check nothing moves.
      await h.source.reload();
      assertEquals(h.ports(), ["a:40", "b:1040"]);
      assertEquals(h.source.status(), { synced: true, degraded: false });
    },
  );
});

Deno.test("ManifestSource: the periodic check finds edits without file watching", async () => {
  await withSource(
    { "a.yaml": service("a", 80) },
    { watch: false, checkIntervalMs: 30 },
    async (h) => {
      await Deno.writeTextFile(`${h.dir}/a.yaml`, service("a", 81));
      await waitFor("the periodic check", () => h.ports().join() === "a:81");
      // Same size and an mtime set back to the old value: the content hash still sees it.
      const before = (await Deno.stat(`${h.dir}/a.yaml`)).mtime!;
      await Deno.writeTextFile(`${h.dir}/a.yaml`, service("a", 82));
      await Deno.utime(`${h.dir}/a.yaml`, before, before);
      await waitFor("the same-size edit", () => h.ports().join() === "a:82");
    },
  );
});

Deno.test("ManifestSource: a folder that disappears keeps the last state until it returns", async () => {
  await withSource(
    { "m/a.yaml": service("a", 80) },
    { watch: true, checkIntervalMs: 30 },
    async (h) => {
      const dir = `${h.dir}/m`;
      assertEquals(h.ports(), ["a:80"]);
      // A rename makes the folder vanish at once; `rm -r` would first empty it, and an empty
      // folder is a valid state (every service deleted) that a reload may catch in between.
      await Deno.rename(dir, `${h.dir}/gone`);
      await waitFor("the error", () => h.source.status().degraded);
      assertEquals(
        h.source.status().lastError,
        `Cannot read manifests "${dir}": no such file or directory; keeping the last good state`,
      );
      assertEquals(h.ports(), ["a:80"]);
      await Deno.mkdir(dir);
      await Deno.writeTextFile(`${dir}/a.yaml`, service("a", 81));
      await waitFor("the recovery", () => h.ports().join() === "a:81");
      assertEquals(h.source.status(), { synced: true, degraded: false });
      // Watching resumed on the new folder.
      await Deno.writeTextFile(`${dir}/a.yaml`, service("a", 82));
      await waitFor("an edit in the new folder", () => h.ports().join() === "a:82");
    },
    "/m",
  );
});

Deno.test("ManifestSource: a single file is watched through its folder", async () => {
  await withSource({ "one.yaml": service("a", 80) }, { watch: true }, async (h) => {
    // Editors often save by writing a new file and renaming it over the old one.
    await Deno.writeTextFile(`${h.dir}/.one.yaml.tmp`, service("a", 81));
    await Deno.rename(`${h.dir}/.one.yaml.tmp`, `${h.dir}/one.yaml`);
    await waitFor("the renamed file", () => h.ports().join() === "a:81");
  }, "/one.yaml");
});

Deno.test("ManifestSource: the transform hook sees the raw state; failures keep the last state", async () => {
  let fail = false;
  let vip = 10;
  const transform = (state: ManifestState): ManifestState => {
    if (fail) throw new Error("no free address in 198.19.0.0/30");
    return {
      ...state,
      services: state.services.map((s): Service => ({ ...s, clusterIPs: [ip(`198.19.0.${vip}`)] })),
    };
  };
  await withSource({ "a.yaml": service("a", 80) }, { watch: false, transform }, async (h) => {
    const vips = () => {
      h.store.commit();
      return [...h.store.snapshot.services.values()].map((e) => e.service.clusterIPs.join());
    };
    assertEquals(vips(), ["198.19.0.10"]);
    assertEquals(h.source.lastLoad?.services[0].clusterIPs, []);

    fail = true;
    await Deno.writeTextFile(`${h.dir}/a.yaml`, service("a", 81));
    await h.source.reload();
    assertEquals(h.ports(), ["a:80"]);
    assertEquals(h.source.status(), {
      synced: true,
      degraded: true,
      lastError:
        "Cannot prepare the manifest state: no free address in 198.19.0.0/30; keeping the last good state",
    });
    strictEqual(h.metrics.of(METRICS.manifestReloadErrors).get(), 1);

    // What the transform depends on changed: reapply() without touching the files.
    fail = false;
    vip = 11;
    h.source.reapply();
    assertEquals(h.ports(), ["a:81"]);
    assertEquals(vips(), ["198.19.0.11"]);
    assertEquals(h.source.status(), { synced: true, degraded: false });
  });
});

Deno.test("ManifestSource: a file that never parsed makes the state partial until it does", async () => {
  const deep = "[".repeat(100_000) + "]".repeat(100_000);
  await withSource(
    { "a.yaml": service("a", 80), "deep.yaml": deep, "deep.json": deep },
    { watch: true },
    async (h) => {
      // The other files serve; the broken ones are named, and their objects are unknown.
      assertEquals(h.ports(), ["a:80"]);
      strictEqual(h.store.snapshot.partial, true);
      const status = h.source.status();
      strictEqual(status.degraded, true);
      strictEqual(
        status.lastError,
        `${h.dir}/deep.json#1: cannot parse JSON at line 1, column 101: nested deeper than 100 ` +
          "levels (the limit, --manifest-max-depth); the file is not loaded (and 1 more)",
      );
      strictEqual(h.source.problems.some((e) => e.where === `${h.dir}/deep.yaml#1`), true);
      // An edit of another file still applies, and the unchanged broken files are not re-logged.
      const errorsBefore = h.logs.filter((l) => l.includes("ERROR")).length;
      await writeAtomic(`${h.dir}/a.yaml`, service("a", 81));
      await waitFor("the edit beside the broken files", () => h.ports().join() === "a:81");
      strictEqual(h.logs.filter((l) => l.includes("ERROR")).length, errorsBefore);
      strictEqual(h.store.snapshot.partial, true);
      // Once both parse, the state is complete.
      await writeAtomic(`${h.dir}/deep.yaml`, service("d", 82));
      await Deno.remove(`${h.dir}/deep.json`);
      await waitFor("the fixed file", () => h.ports().join() === "a:81,d:82");
      strictEqual(h.store.snapshot.partial, undefined);
      assertEquals(h.source.status(), { synced: true, degraded: false });
    },
  );
});

Deno.test("ManifestSource: a file that breaks after it parsed keeps its objects; the state stays complete", async () => {
  await withSource({ "a.yaml": service("a", 80) }, { watch: false }, async (h) => {
    await Deno.writeTextFile(`${h.dir}/a.yaml`, "[".repeat(5000));
    await h.source.reload();
    assertEquals(h.ports(), ["a:80"]);
    strictEqual(h.store.snapshot.partial, undefined);
    strictEqual(h.source.status().degraded, true);
  });
});

Deno.test("ManifestSource: the transform sees a partial state while a file is unknown", async () => {
  const seen: (boolean | undefined)[] = [];
  await withSource(
    { "a.yaml": service("a", 80), "b.yaml": "kind: [\n" },
    {
      watch: false,
      transform(state: ManifestState) {
        seen.push(state.partial);
        return state;
      },
    },
    () => {
      assertEquals(seen, [true]);
    },
  );
});

Deno.test("ManifestSource: repeated problems are logged once per change of a file, with a count", async () => {
  await withSource(
    { "a.yaml": service("a", 80), "docs.yaml": wrongKindDocuments(5000) },
    {},
    async (h) => {
      const about = (name: string) => h.logs.filter((l) => l.includes(`${h.dir}/${name}`));
      assertEquals(about("docs.yaml"), [
        `T WARN [manifests] ${h.dir}/docs.yaml#1 kind: "Deployment" is not a kind svcgate reads ` +
        "(Service, Endpoints, EndpointSlice, Namespace); ignored (and 4999 more like it in this file)",
      ]);
      strictEqual(h.source.problems.length, 5000, "every problem is still listed");
      // 100,000 documents: one line, naming the file, the document and the limit.
      await writeAtomic(`${h.dir}/many.yaml`, wrongKindDocuments(100_000));
      await h.source.reload();
      assertEquals(about("many.yaml"), [
        `T ERROR [manifests] ${h.dir}/many.yaml#50001: more than 50000 documents (the limit, ` +
        "--manifest-max-documents; each item of a List counts); the file is not loaded",
      ]);
      // Another file's edit logs nothing again about these.
      await writeAtomic(`${h.dir}/a.yaml`, service("a", 81));
      await h.source.reload();
      assertEquals(h.ports(), ["a:81"]);
      strictEqual(about("docs.yaml").length + about("many.yaml").length, 2);
    },
  );
});

Deno.test("groupRepeated: same file, field and message group; documents and List items do not split them", () => {
  const e = (where: string, path: string, message: string, warning = false): ValidationError => ({
    where,
    path,
    message,
    ...(warning ? { severity: "warning" as const } : {}),
  });
  const groups = groupRepeated([
    e("a.yaml#1", "kind", "x", true),
    e("a.yaml#2", "kind", "x", true),
    e("b.yaml#1", "kind", "x", true),
    e("a.yaml#3", "items[0].kind", "x", true),
    e("a.yaml#3", "items[7].kind", "x", true),
    e("a.yaml#4", "kind", "x"),
    e("a.yaml", "", "cannot read the file"),
  ]);
  assertEquals(groups.map((g) => [g.first.where, g.first.path, g.count]), [
    ["a.yaml#1", "kind", 2],
    ["b.yaml#1", "kind", 1],
    ["a.yaml#3", "items[0].kind", 2],
    ["a.yaml#4", "kind", 1],
    ["a.yaml", "", 1],
  ]);
});
