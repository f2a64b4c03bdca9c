import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { formatError, isWarning } from "./validate.ts";
import { objectId, parseObject, rawObjectId } from "./parse_object.ts";
import { endpoints, slice, svc } from "../../../tests/support/object_fixtures.ts";

Deno.test("parseObject dispatches on apiVersion and kind", async (t) => {
  await t.step("Service", () => {
    const r = parseObject(svc({}, { namespace: "prod" }), "x#1");
    assertEquals(r.value?.kind, "Service");
    assertEquals(r.value?.id, "Service prod/web");
  });
  await t.step("EndpointSlice", () => {
    const r = parseObject(slice(), "x#1");
    assertEquals(r.value?.kind, "EndpointSlice");
    assertEquals(r.value?.id, "EndpointSlice default/web-1");
  });
  await t.step("Endpoints", () => {
    const r = parseObject(endpoints([{ addresses: [{ ip: "198.18.0.1" }] }]), "x#1");
    assertEquals(r.value?.kind, "Endpoints");
    assertEquals(r.value?.id, "Endpoints default/web");
    assertEquals(r.value?.kind === "Endpoints" && r.value.endpointSets.length, 1);
  });
  await t.step("Namespace", () => {
    const r = parseObject(
      { apiVersion: "v1", kind: "Namespace", metadata: { name: "prod" } },
      "x#1",
    );
    assertEquals(r, {
      value: { kind: "Namespace", id: "Namespace prod", namespace: "prod" },
      errors: [],
    });
  });
  const bad: { name: string; obj: unknown; errors: string[]; warning?: boolean }[] = [
    {
      name: "scalar document",
      obj: "hello",
      errors: [
        'x#1: expected a Kubernetes object (a mapping with apiVersion and kind), got "hello"',
      ],
    },
    {
      name: "list document",
      obj: [1, 2],
      errors: ["x#1: expected a Kubernetes object (a mapping with apiVersion and kind), got [1,2]"],
    },
    {
      name: "kind missing",
      obj: { apiVersion: "v1", metadata: { name: "web" } },
      errors: ["x#1 kind: missing; expected Service, Endpoints, EndpointSlice or Namespace"],
    },
    {
      name: "kind not a string",
      obj: { apiVersion: "v1", kind: 3 },
      errors: ["x#1 kind: 3 is not a string"],
    },
    {
      name: "apiVersion missing",
      obj: { kind: "EndpointSlice", metadata: { name: "web" } },
      errors: ['x#1 apiVersion: missing; expected "discovery.k8s.io/v1" for kind EndpointSlice'],
    },
    {
      name: "other kinds are ignored with a warning",
      obj: { apiVersion: "apps/v1", kind: "Deployment", metadata: { name: "web" } },
      errors: [
        'x#1 kind: "Deployment" is not a kind svcgate reads (Service, Endpoints, EndpointSlice, Namespace); ignored',
      ],
      warning: true,
    },
    {
      name: "Namespace name invalid",
      obj: { apiVersion: "v1", kind: "Namespace", metadata: { name: "prod.eu" } },
      errors: [
        'x#1 metadata.name: "prod.eu" is not a valid Namespace name (a DNS-1123 label: a-z, 0-9 and "-", starting and ending with a letter or digit, at most 63 characters)',
      ],
    },
  ];
  for (const c of bad) {
    await t.step(c.name, () => {
      const r = parseObject(c.obj, "x#1");
      assertEquals(r.value, undefined);
      assertEquals(r.errors.map(formatError), c.errors);
      assertEquals(r.errors.every(isWarning), c.warning ?? false);
    });
  }
});

Deno.test("rawObjectId and objectId identify objects even when invalid", () => {
  assertEquals(
    rawObjectId(svc({ ports: [{ port: 0 }] }, { namespace: "prod" })),
    "Service prod/web",
  );
  assertEquals(rawObjectId(slice()), "EndpointSlice default/web-1");
  assertEquals(rawObjectId({ kind: "Namespace", metadata: { name: "x" } }), "Namespace x");
  assertEquals(rawObjectId({ kind: "Service", metadata: {} }), undefined);
  assertEquals(rawObjectId({ kind: "Deployment", metadata: { name: "x" } }), undefined);
  assertEquals(rawObjectId("x"), undefined);
  assertEquals(objectId("Endpoints", "a", "b"), "Endpoints a/b");
});
