import { deepStrictEqual as assertEquals, strictEqual } from "node:assert/strict";
import { endpointSet } from "./endpoint_set.ts";
import { EMPTY_LIST, type Endpoint } from "./types.ts";
import { ip } from "../../tests/support/model_values.ts";

const ep = (address: string, extra: Partial<Endpoint> = {}): Endpoint => ({
  address: ip(address),
  ready: true,
  serving: true,
  terminating: false,
  ...extra,
});

const fields = (endpoints: readonly Endpoint[]) => ({
  namespace: "default",
  serviceName: "web",
  id: "web-1",
  ports: [{ name: "http", protocol: "TCP" as const, port: 8080 }],
  endpoints,
});

Deno.test("endpointSet: every endpoint reads back as it was written", async (t) => {
  const cases: [string, Endpoint[]][] = [
    ["one IPv4, ready", [ep("198.18.0.10")]],
    ["IPv6", [ep("2001:db8::a")]],
    ["every flag combination", [
      ep("198.18.0.1", { ready: false, serving: false, terminating: false }),
      ep("198.18.0.2", { ready: false, serving: true, terminating: true }),
      ep("198.18.0.3", { ready: true, serving: false, terminating: true }),
      ep("198.18.0.4", { ready: false, serving: false, terminating: true }),
    ]],
    ["optional texts present, absent and empty", [
      ep("198.18.0.5", { nodeName: "node-1", zone: "z-a", hostname: "db-0" }),
      ep("198.18.0.6", { nodeName: "node-2" }),
      ep("198.18.0.7", { hostname: "" }),
      ep("198.18.0.8", { zone: "", nodeName: "" }),
    ]],
    ["a unicode zone", [ep("198.18.0.9", { zone: "zürich-1" })]],
    ["topology hints, with and without other texts", [
      ep("198.18.0.11", { zone: "z-a", zoneHints: ["z-a"], nodeHints: ["node-1"] }),
      ep("198.18.0.12", { zoneHints: ["z-a", "z-b"] }),
      ep("198.18.0.13", { nodeName: "node-2", hostname: "db-1", nodeHints: ["node-2"] }),
      ep("198.18.0.14", { zoneHints: [], nodeHints: [] }),
      ep("198.18.0.15", { hostname: "db-2" }),
    ]],
    ["pod names, with and without a hostname", [
      ep("198.18.0.12", { podName: "web-7d4f-x2" }),
      ep("198.18.0.13", { hostname: "db-0", podName: "db-0" }),
      ep("198.18.0.14", { nodeName: "n", zone: "z", hostname: "", podName: "" }),
    ]],
    ["pod names with topology hints", [
      ep("198.18.0.16", { zoneHints: ["z-a"], podName: "web-1" }),
      ep("198.18.0.17", { hostname: "db-3", nodeHints: ["node-1"], podName: "" }),
      ep("198.18.0.18", { zoneHints: [], nodeHints: [], podName: "web-2" }),
    ]],
  ];
  for (const [name, endpoints] of cases) {
    await t.step(name, () => {
      const set = endpointSet(fields(endpoints));
      assertEquals(set.endpoints, endpoints);
      assertEquals(JSON.parse(JSON.stringify(set)), JSON.parse(JSON.stringify(fields(endpoints))));
      strictEqual(set.id, "web-1");
      strictEqual(Object.isFrozen(set), true);
    });
  }
});

Deno.test("endpointSet: no endpoints reads as the shared empty list", () => {
  strictEqual(endpointSet(fields([])).endpoints, EMPTY_LIST);
});

Deno.test("endpointSet: a text holding a separator keeps the plain list, unchanged", () => {
  const endpoints = [ep("198.18.0.10", { zone: "a\tb" }), ep("198.18.0.11", { hostname: "x\ny" })];
  const set = endpointSet(fields(endpoints));
  assertEquals(set.endpoints, endpoints);
  strictEqual(Object.isFrozen(set), true);
  strictEqual(Object.isFrozen(set.endpoints), true);
  strictEqual(set.endpoints.every((e) => Object.isFrozen(e)), true);
});
