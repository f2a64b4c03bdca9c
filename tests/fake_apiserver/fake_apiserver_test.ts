// JSON bodies from the server are read field by field, untyped.
// deno-lint-ignore-file no-explicit-any
/**
 * The fake API server's protocol, checked with plain fetch: what a real API server answers.
 */

import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { FakeApiServer } from "./fake_apiserver.ts";
import { makeNamespace, makePod, makeService } from "./fixtures.ts";

async function withServer(fn: (api: FakeApiServer) => Promise<void>, token?: string) {
  const api = await FakeApiServer.start({ token, bookmarkIntervalMs: 50, tooLargeWaitMs: 20 });
  try {
    await fn(api);
  } finally {
    await api.close();
  }
}

async function get(api: FakeApiServer, path: string, token?: string) {
  const res = await fetch(api.url + path, {
    headers: token ? { authorization: `Bearer ${token}` } : {},
  });
  return { status: res.status, body: await res.json() };
}

/** Reads a watch stream until it ends or `max` events arrived. */
async function readWatch(api: FakeApiServer, path: string, max = Infinity) {
  const res = await fetch(api.url + path);
  const events: { type: string; object: Record<string, any> }[] = [];
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  while (events.length < max) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += value;
    let i;
    while ((i = buf.indexOf("\n")) >= 0) {
      events.push(JSON.parse(buf.slice(0, i)));
      buf = buf.slice(i + 1);
    }
  }
  await reader.cancel().catch(() => {});
  return { status: res.status, events };
}

Deno.test("lists carry the global resourceVersion; objects their own", async () => {
  await withServer(async (api) => {
    api.create("services", makeService("default", "a", "198.19.0.1"));
    api.create("namespaces", makeNamespace("default"));
    api.create("services", makeService("shop", "b", "198.19.0.2"));
    const all = await get(api, "/api/v1/services");
    assertEquals(all.status, 200);
    assertEquals(all.body.kind, "ServiceList");
    assertEquals(all.body.metadata.resourceVersion, "1003", "global RV");
    assertEquals(all.body.items.map((i: any) => i.metadata.resourceVersion), ["1001", "1003"]);
    const ns = await get(api, "/api/v1/namespaces/shop/services");
    assertEquals(ns.body.items.map((i: any) => i.metadata.name), ["b"]);
    const one = await get(api, "/api/v1/namespaces/default/services/a");
    assertEquals(one.body.metadata.name, "a");
    assertEquals((await get(api, "/api/v1/namespaces/default/services/zz")).status, 404);
  });
});

Deno.test("paging returns a consistent snapshot; an expired continue token gets 410", async () => {
  await withServer(async (api) => {
    for (let i = 0; i < 5; i++) {
      api.create("services", makeService("default", `s${i}`, `198.19.0.${i}`));
    }
    const p1 = await get(api, "/api/v1/services?limit=2");
    assertEquals(p1.body.items.map((i: any) => i.metadata.name), ["s0", "s1"]);
    assertEquals(p1.body.metadata.remainingItemCount, 3);
    // Changes after the first page are not visible in the continued list.
    api.delete("services", "default", "s3");
    api.create("services", makeService("default", "s9", "198.19.0.9"));
    const token = encodeURIComponent(p1.body.metadata.continue);
    const p2 = await get(api, `/api/v1/services?limit=2&continue=${token}`);
    assertEquals(p2.body.items.map((i: any) => i.metadata.name), ["s2", "s3"]);
    assertEquals(p2.body.metadata.resourceVersion, p1.body.metadata.resourceVersion);
    const p3 = await get(
      api,
      `/api/v1/services?limit=2&continue=${encodeURIComponent(p2.body.metadata.continue)}`,
    );
    assertEquals(p3.body.items.map((i: any) => i.metadata.name), ["s4"]);
    assertEquals(p3.body.metadata.continue, undefined, "last page");
    api.compact();
    const gone = await get(api, `/api/v1/services?limit=2&continue=${token}`);
    assertEquals([gone.status, gone.body.reason, gone.body.code], [410, "Expired", 410]);
  });
});

Deno.test("label and field selectors filter lists; bad ones get 400", async () => {
  await withServer(async (api) => {
    api.create(
      "services",
      makeService("default", "a", "198.19.0.1", undefined, { labels: { tier: "web" } }),
    );
    api.create(
      "services",
      makeService("default", "b", "198.19.0.2", undefined, { labels: { tier: "db" } }),
    );
    api.create(
      "services",
      makeService("shop", "a", "198.19.0.3", undefined, { labels: { tier: "web" } }),
    );
    const names = async (q: string) =>
      (await get(api, `/api/v1/services?${q}`)).body.items.map((i: any) =>
        `${i.metadata.namespace}/${i.metadata.name}`
      );
    assertEquals(await names("labelSelector=tier%3Dweb"), ["default/a", "shop/a"]);
    assertEquals(await names("labelSelector=tier!%3Dweb"), ["default/b"]);
    assertEquals(await names("fieldSelector=metadata.name%3Da"), ["default/a", "shop/a"]);
    assertEquals(await names("fieldSelector=metadata.namespace%3Dshop"), ["shop/a"]);
    const bad = await get(api, "/api/v1/services?fieldSelector=spec.type%3DClusterIP");
    assertEquals([bad.status, bad.body.message], [400, "field label not supported: spec.type"]);
  });
});

Deno.test("bearer token required: 401 Status otherwise", async () => {
  await withServer(async (api) => {
    const no = await get(api, "/api/v1/services");
    assertEquals([no.status, no.body.kind, no.body.reason], [401, "Status", "Unauthorized"]);
    assertEquals((await get(api, "/api/v1/services", "t0k")).status, 200);
    assertEquals((await get(api, "/api/v1/services", "other")).status, 401);
  }, "t0k");
});

Deno.test("watch replays from a resourceVersion, ends after timeoutSeconds with a bookmark", async () => {
  await withServer(async (api) => {
    api.create("services", makeService("default", "a", "198.19.0.1"));
    const rv = api.resourceVersion;
    api.update("services", makeService("default", "a", "198.19.0.1", [{ name: "x", port: 81 }]));
    api.create("services", makeService("default", "b", "198.19.0.2"));
    api.delete("services", "default", "a");
    const w = await readWatch(
      api,
      `/api/v1/services?watch=true&resourceVersion=${rv}&timeoutSeconds=1&allowWatchBookmarks=true`,
    );
    const seen = w.events.filter((e) => e.type !== "BOOKMARK").map((e) =>
      `${e.type} ${e.object.metadata.name} ${e.object.metadata.resourceVersion}`
    );
    assertEquals(seen, ["MODIFIED a 1002", "ADDED b 1003", "DELETED a 1004"]);
    const last = w.events[w.events.length - 1];
    assertEquals([last.type, last.object.metadata.resourceVersion], ["BOOKMARK", "1004"]);
  });
});

Deno.test("watch without a resourceVersion starts with synthetic ADDED events", async () => {
  await withServer(async (api) => {
    api.create("services", makeService("default", "a", "198.19.0.1"));
    api.create("services", makeService("default", "b", "198.19.0.2"));
    const w = await readWatch(api, "/api/v1/services?watch=true&timeoutSeconds=1");
    assertEquals(w.events.map((e) => `${e.type} ${e.object.metadata.name}`), [
      "ADDED a",
      "ADDED b",
    ]);
  });
});

Deno.test("watch from a compacted resourceVersion: 200 then ERROR 410 Expired", async () => {
  await withServer(async (api) => {
    api.create("services", makeService("default", "a", "198.19.0.1"));
    api.create("services", makeService("default", "b", "198.19.0.2"));
    api.compact();
    const w = await readWatch(api, "/api/v1/services?watch=true&resourceVersion=1001");
    assertEquals(w.status, 200);
    assertEquals(w.events.length, 1);
    assertEquals(
      [
        w.events[0].type,
        w.events[0].object.kind,
        w.events[0].object.code,
        w.events[0].object.reason,
      ],
      ["ERROR", "Status", 410, "Expired"],
    );
  });
});

Deno.test("a watch with a label selector sees objects enter and leave it", async () => {
  await withServer(async (api) => {
    api.create(
      "services",
      makeService("default", "a", "198.19.0.1", undefined, { labels: { t: "x" } }),
    );
    const rv = api.resourceVersion;
    api.update(
      "services",
      makeService("default", "a", "198.19.0.1", undefined, { labels: { t: "y" } }),
    );
    api.update(
      "services",
      makeService("default", "a", "198.19.0.1", undefined, { labels: { t: "x" } }),
    );
    const w = await readWatch(
      api,
      `/api/v1/services?watch=true&resourceVersion=${rv}&labelSelector=t%3Dx&timeoutSeconds=1`,
    );
    assertEquals(w.events.map((e) => `${e.type} ${e.object.metadata.resourceVersion}`), [
      "DELETED 1002",
      "ADDED 1003",
    ]);
  });
});

Deno.test("history beyond historyLimit expires", async () => {
  const api = await FakeApiServer.start({ historyLimit: 10 });
  try {
    for (let i = 0; i < 30; i++) api.create("namespaces", makeNamespace(`n${i}`));
    const w = await readWatch(api, "/api/v1/namespaces?watch=true&resourceVersion=1001");
    assertEquals(w.events[0].object.code, 410);
  } finally {
    await api.close();
  }
});

Deno.test("after a history reset, a watch from a newer resourceVersion gets Too large (504)", async () => {
  await withServer(async (api) => {
    api.create("services", makeService("default", "a", "198.19.0.1"));
    api.create("services", makeService("default", "b", "198.19.0.2"));
    const held = api.resourceVersion;
    assertEquals(api.resetHistory({ resourceVersion: 1000 }), 1000);
    const list = await get(api, "/api/v1/services");
    assertEquals(
      list.body.items.map((i: any) => i.metadata.resourceVersion),
      ["1000", "1000"],
      "objects carry the new history's resourceVersion",
    );
    const cause = [{ reason: "ResourceVersionTooLarge", message: "Too large resource version" }];
    const w = await readWatch(api, `/api/v1/services?watch=true&resourceVersion=${held}`);
    assertEquals(w.status, 200);
    assertEquals(
      w.events.map((e) => [e.type, e.object.code, e.object.reason, e.object.details.causes]),
      [["ERROR", 504, "Timeout", cause]],
      "the watch cache's form: 200, then one ERROR event",
    );
    api.resetHistory({ resourceVersion: 1000, reply: "http" });
    const r = await get(api, `/api/v1/services?watch=true&resourceVersion=${held}`);
    assertEquals([r.status, r.body.reason, r.body.details.causes], [504, "Timeout", cause]);
    // A watch from the new history's resourceVersion is served.
    const ok = await readWatch(
      api,
      "/api/v1/services?watch=true&resourceVersion=1000&timeoutSeconds=1",
    );
    assertEquals(ok.status, 200);
    assertEquals(ok.events.filter((e) => e.type === "ERROR").length, 0, "no error");
  });
});

Deno.test("pods: field selectors on spec.nodeName and status.phase, as the API server's", async () => {
  await withServer(async (api) => {
    api.create("pods", makePod("default", "here", { nodeName: "node-a", ips: ["198.18.0.11"] }));
    api.create("pods", makePod("default", "there", { nodeName: "node-b", ips: ["198.18.1.11"] }));
    api.create("pods", makePod("default", "done", { nodeName: "node-a", phase: "Succeeded" }));
    const selector = encodeURIComponent(
      "spec.nodeName=node-a,status.phase!=Succeeded,status.phase!=Failed",
    );
    const list = await get(api, `/api/v1/pods?fieldSelector=${selector}`);
    assertEquals(list.body.items.map((p: any) => p.metadata.name), ["here"]);
    const bad = await get(api, `/api/v1/pods?fieldSelector=spec.schedulerName%3Dx`);
    assertEquals([bad.status, bad.body.message], [
      400,
      "field label not supported: spec.schedulerName",
    ]);
    // Scheduled onto node-a later: the watch sees it enter; finishing, leave.
    const rv = api.resourceVersion;
    api.create("pods", makePod("prod", "late", {}));
    api.update("pods", makePod("prod", "late", { nodeName: "node-a", ips: ["198.18.0.12"] }));
    api.update("pods", makePod("prod", "late", { nodeName: "node-a", phase: "Succeeded" }));
    const w = await readWatch(
      api,
      `/api/v1/pods?watch=true&resourceVersion=${rv}&fieldSelector=${selector}&timeoutSeconds=1`,
    );
    assertEquals(w.events.map((e) => `${e.type} ${e.object.metadata.name}`), [
      "ADDED late",
      "DELETED late",
    ]);
  });
});
