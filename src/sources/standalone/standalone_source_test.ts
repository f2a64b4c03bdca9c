import { deepStrictEqual as assertEquals, strictEqual } from "node:assert/strict";
import { type Cidr, parseCidr } from "../../model/ip.ts";
import { ModelStore } from "../../model/store.ts";
import { createLogger } from "../../observe/log.ts";
import { MetricsRegistry } from "../../observe/metrics.ts";
import { parseIpamState, renderIpamState } from "../../ipam/state.ts";
import { VIP_LOCK_FILE } from "../../ipam/lock.ts";
import type { ProbeFn } from "../../health/probe.ts";
import { StandaloneSource, type StandaloneSourceOptions } from "./standalone_source.ts";
import { withTempDir } from "../../../tests/support/temp_dir.ts";
import { ip } from "../../../tests/support/model_values.ts";

const CIDR = parseCidr("198.19.0.0/16") as Cidr;

function service(name: string, extra = ""): string {
  return `apiVersion: v1
kind: Service
metadata:
  name: ${name}
${extra}spec:
  ports: [{ port: 80, targetPort: 8080 }]
`;
}

function slice(name: string, address: string): string {
  return `apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: ${name}-1
  labels: { kubernetes.io/service-name: ${name} }
addressType: IPv4
endpoints: [{ addresses: ["${address}"] }]
ports: [{ port: 8080 }]
`;
}

interface Harness {
  readonly dir: string;
  readonly store: ModelStore;
  readonly source: StandaloneSource;
  readonly logs: string[];
  /** `name clusterIPs` of every service in the store, committed now. */
  vips(): string[];
  /** The state file as saved (after stop). */
  savedState(): ReturnType<typeof parseIpamState>;
  /** Stops the source, starts a new one on the same files, and returns its `vips()`. */
  restart(): Promise<string[]>;
}

function vipsOf(store: ModelStore): string[] {
  return [...store.commit().snapshot.services.values()].map((e) =>
    `${e.service.name} ${e.service.clusterIPs.join(",")}`
  ).sort();
}

async function withStandalone(
  files: Record<string, string>,
  options: Partial<StandaloneSourceOptions>,
  fn: (h: Harness) => Promise<void> | void,
): Promise<void> {
  await withTempDir("svcgate-standalone-", async (dir) => {
    await Deno.mkdir(`${dir}/manifests`);
    await Deno.mkdir(`${dir}/state`);
    for (const [name, text] of Object.entries(files)) {
      await Deno.writeTextFile(`${dir}/${name}`, text);
    }
    const logs: string[] = [];
    const store = new ModelStore();
    const all: StandaloneSourceOptions = {
      manifests: `${dir}/manifests`,
      serviceCidrs: [CIDR],
      stateDir: `${dir}/state`,
      liveVips: {},
      log: createLogger({ format: "text", write: (l) => logs.push(l), now: () => "T" }),
      metrics: new MetricsRegistry(),
      watch: false,
      checkIntervalMs: 0,
      ...options,
    };
    const source = new StandaloneSource(all);
    try {
      await source.start({ store, requestSync: () => {} });
      await fn({
        dir,
        store,
        source,
        logs,
        vips: () => vipsOf(store),
        savedState: () => parseIpamState(Deno.readTextFileSync(`${dir}/state/ipam.json`)),
        async restart() {
          await source.stop();
          const again = new StandaloneSource(all);
          const fresh = new ModelStore();
          await again.start({ store: fresh, requestSync: () => {} });
          await again.stop();
          return vipsOf(fresh);
        },
      });
    } finally {
      await source.stop();
    }
  });
}

async function waitFor(what: string, cond: () => boolean): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

Deno.test("StandaloneSource: services get VIPs, which are saved and kept across a restart", async () => {
  await withStandalone({ "manifests/web.yaml": service("web") }, {}, async (h) => {
    const first = h.vips();
    strictEqual(first.length, 1);
    strictEqual(first[0].startsWith("web 198.19."), true);
    assertEquals(h.source.details(), { ipam: { problems: [] }, health: { unhealthy: [] } });
    assertEquals(h.source.status(), { synced: true, degraded: false });
    assertEquals(await h.restart(), first);
    const saved = h.savedState();
    assertEquals(typeof saved === "string" ? saved : saved.allocations, {
      "default/web": { ips: [first[0].slice("web ".length)] },
    });
  });
});

Deno.test("StandaloneSource: the live VIPs rebuild a lost state file", async () => {
  await withStandalone(
    { "manifests/web.yaml": service("web") },
    { liveVips: { "default/web": ["198.19.7.7"] } },
    (h) => {
      assertEquals(h.vips(), ["web 198.19.7.7"]);
      strictEqual(h.logs.some((l) => l.includes("does not exist; recovering 1 service(s)")), true);
    },
  );
});

Deno.test("StandaloneSource: an allocation error leaves that service out and shows in details", async () => {
  await withStandalone(
    {
      "manifests/web.yaml": service("web"),
      "manifests/db.yaml": service("db").replace("spec:\n", "spec:\n  clusterIP: 10.0.0.1\n"),
    },
    {},
    (h) => {
      strictEqual(h.vips().length, 1);
      assertEquals(h.source.details().ipam, {
        problems: ['default/db: clusterIP "10.0.0.1" is outside --service-cidr 198.19.0.0/16'],
      });
      strictEqual(h.logs.filter((l) => l.includes("VIP allocation failed")).length, 1);
    },
  );
});

Deno.test("StandaloneSource: while a file never parsed, the state is partial and its services keep their VIPs", async () => {
  const state = {
    version: 1 as const,
    allocations: {
      "default/api": { ips: [ip("198.19.40.7")] },
      "default/web": { ips: [ip("198.19.40.1")] },
    },
    released: [],
  };
  await withStandalone(
    {
      "state/ipam.json": renderIpamState(state),
      "manifests/web.yaml": service("web"),
      "manifests/api.yaml": "[".repeat(100_000),
    },
    {},
    async (h) => {
      assertEquals(h.vips(), ["web 198.19.40.1"]);
      strictEqual(h.store.snapshot.partial, true);
      await h.source.stop();
      assertEquals(h.savedState(), state);
    },
  );
});

Deno.test("StandaloneSource: reload takes a new VIP lock file and new manifests", async () => {
  await withStandalone({ "manifests/web.yaml": service("web") }, {}, async (h) => {
    await Deno.writeTextFile(
      `${h.dir}/manifests/${VIP_LOCK_FILE}`,
      '{"version":1,"services":{"default/web":["198.19.9.9"]}}',
    );
    await Deno.writeTextFile(`${h.dir}/manifests/api.yaml`, service("api"));
    await h.source.reload();
    const vips = h.vips();
    strictEqual(vips.length, 2);
    strictEqual(vips[1], "web 198.19.9.9");
    // A bad lock file is logged and ignored; the last allocation stays.
    await Deno.writeTextFile(`${h.dir}/manifests/${VIP_LOCK_FILE}`, "{");
    await h.source.reload();
    strictEqual(h.vips()[1], "web 198.19.9.9");
    strictEqual(h.logs.some((l) => l.includes("ignoring the VIP lock file")), true);
  });
});

Deno.test("StandaloneSource: an endpoint failing its health check goes out, and comes back", async () => {
  let healthy = false;
  const probe: ProbeFn = () =>
    Promise.resolve(healthy ? { ok: true, detail: "ok" } : { ok: false, detail: "refused" });
  const annotations = `  annotations:
    svcgate.io/health-check: tcp
    svcgate.io/health-check-interval: 100ms
    svcgate.io/health-check-timeout: 100ms
    svcgate.io/health-check-healthy-threshold: "1"
    svcgate.io/health-check-unhealthy-threshold: "1"
`;
  await withStandalone(
    {
      "manifests/web.yaml": service("web", annotations),
      "manifests/web-slice.yaml": slice("web", "198.18.0.10"),
    },
    { probe },
    async (h) => {
      const ready = () => h.store.commit().snapshot.services.get("default/web")!.endpoints[0].ready;
      strictEqual(ready(), true);
      await waitFor("the endpoint to go out", () => !ready());
      assertEquals(h.source.details().health, { unhealthy: ["default/web 198.18.0.10:8080"] });
      healthy = true;
      await waitFor("the endpoint to come back", () => ready());
      assertEquals(h.source.details().health, { unhealthy: [] });
    },
  );
});
