import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { goTimeString, nodeEligible, ProxierHealth } from "./proxier_health.ts";
import { handleHttp } from "./http.ts";
import { MetricsRegistry } from "../observe/metrics.ts";

const T0 = Date.UTC(2025, 5, 1, 12, 0, 0);

Deno.test("goTimeString prints Go's time.Time.String() in UTC, as kube-proxy's bodies hold it", () => {
  const table: [number | null, string][] = [
    [null, "0001-01-01 00:00:00 +0000 UTC"],
    [0, "1970-01-01 00:00:00 +0000 UTC"],
    [T0, "2025-06-01 12:00:00 +0000 UTC"],
    [T0 + 250, "2025-06-01 12:00:00.25 +0000 UTC"],
    [T0 + 7, "2025-06-01 12:00:00.007 +0000 UTC"],
  ];
  for (const [ms, text] of table) assertEquals(goTimeString(ms), text, String(ms));
});

Deno.test("ProxierHealth: kube-proxy's rules for /healthz and /livez", () => {
  // [what, events as [op, at ms after T0], asked at, node eligible, healthz, livez]
  type Op = ["queued" | "updated", number];
  const table: [string, Op[], number, boolean, number, number][] = [
    ["starting: nothing pending", [], 0, true, 200, 200],
    ["a change pending, not late yet", [["queued", 0]], 1999, true, 200, 200],
    ["a change pending past the timeout", [["queued", 0]], 2000, true, 503, 503],
    ["the oldest pending change counts", [["queued", 0], ["queued", 1500]], 2100, true, 503, 503],
    ["synced after the change", [["queued", 0], ["updated", 500]], 5000, true, 200, 200],
    [
      "a new change after a sync",
      [["queued", 0], ["updated", 1], ["queued", 3000]],
      4000,
      true,
      200,
      200,
    ],
    ["node being deleted: /healthz only", [], 0, false, 503, 200],
    ["late and node being deleted", [["queued", 0]], 3000, false, 503, 503],
  ];
  for (const [what, ops, at, eligible, healthz, livez] of table) {
    const h = new ProxierHealth(2000);
    for (const [op, t] of ops) h[op](T0 + t);
    assertEquals(
      [h.healthz(T0 + at, eligible).status, h.livez(T0 + at).status],
      [healthz, livez],
      what,
    );
  }
});

Deno.test("ProxierHealth: bodies are kube-proxy's, lastUpdated is now when healthy", () => {
  const h = new ProxierHealth(2000);
  h.updated(T0);
  h.queued(T0 + 1000);
  assertEquals(h.healthz(T0 + 1500, true), {
    status: 200,
    body:
      '{"lastUpdated": "2025-06-01 12:00:01.5 +0000 UTC","currentTime": "2025-06-01 12:00:01.5 +0000 UTC", "nodeEligible": true}',
  });
  assertEquals(h.healthz(T0 + 3000, true), {
    status: 503,
    body:
      '{"lastUpdated": "2025-06-01 12:00:00 +0000 UTC","currentTime": "2025-06-01 12:00:03 +0000 UTC", "nodeEligible": true}',
  });
  assertEquals(h.livez(T0 + 3000), {
    status: 503,
    body:
      '{"lastUpdated": "2025-06-01 12:00:00 +0000 UTC","currentTime": "2025-06-01 12:00:03 +0000 UTC"}',
  });
});

Deno.test("nodeEligible: deletion or the autoscaler's taint make the node ineligible", () => {
  const table: [string, Parameters<typeof nodeEligible>[0], boolean][] = [
    ["unknown node", null, true],
    ["plain node", { deleting: false, toBeDeleted: false }, true],
    ["being deleted", { deleting: true, toBeDeleted: false }, false],
    ["tainted ToBeDeletedByClusterAutoscaler", { deleting: false, toBeDeleted: true }, false],
  ];
  for (const [what, node, eligible] of table) assertEquals(nodeEligible(node), eligible, what);
});

Deno.test("handleHttp: /healthz and /livez answer with the health's status and JSON body", async () => {
  const state = {
    readiness: () => ({ ready: true }),
    metrics: new MetricsRegistry(),
    healthz: () => ({ status: 503 as const, body: '{"a": 1}' }),
    livez: () => ({ status: 200 as const, body: '{"b": 2}' }),
  };
  const healthz = handleHttp(new Request("http://x/healthz"), state);
  assertEquals(
    [healthz.status, healthz.headers.get("content-type"), await healthz.text()],
    [503, "application/json", '{"a": 1}'],
  );
  const livez = handleHttp(new Request("http://x/livez"), state);
  assertEquals([livez.status, await livez.text()], [200, '{"b": 2}']);
});
