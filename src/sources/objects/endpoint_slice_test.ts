import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { formatError, isWarning } from "./validate.ts";
import { parseEndpointSlice } from "./endpoint_slice.ts";
import { type Obj, plainSet, slice } from "../../../tests/support/object_fixtures.ts";

Deno.test("parseEndpointSlice: conditions, fields and defaults", async (t) => {
  const cases: { name: string; ep: Obj; want: Obj }[] = [
    {
      name: "conditions absent: ready, serving, not terminating",
      ep: { addresses: ["198.18.0.10"] },
      want: { address: "198.18.0.10", ready: true, serving: true, terminating: false },
    },
    {
      name: "ready false: serving follows ready",
      ep: { addresses: ["198.18.0.10"], conditions: { ready: false } },
      want: { address: "198.18.0.10", ready: false, serving: false, terminating: false },
    },
    {
      name: "terminating but still serving",
      ep: {
        addresses: ["198.18.0.10"],
        conditions: { ready: false, serving: true, terminating: true },
      },
      want: { address: "198.18.0.10", ready: false, serving: true, terminating: true },
    },
    {
      name: "null conditions use defaults",
      ep: { addresses: ["198.18.0.10"], conditions: { ready: null, serving: null } },
      want: { address: "198.18.0.10", ready: true, serving: true, terminating: false },
    },
    {
      name: "only the first address is used",
      ep: { addresses: ["198.18.0.10", "198.18.0.11"] },
      want: { address: "198.18.0.10", ready: true, serving: true, terminating: false },
    },
    {
      name: "node, zone and hostname; a valid targetRef is checked, not kept",
      ep: {
        addresses: ["198.18.0.10"],
        nodeName: "node-1",
        zone: "z1",
        hostname: "web-0",
        targetRef: { kind: "Pod", name: "web-0", namespace: "default", uid: "x" },
      },
      want: {
        address: "198.18.0.10",
        ready: true,
        serving: true,
        terminating: false,
        nodeName: "node-1",
        zone: "z1",
        hostname: "web-0",
      },
    },
    {
      name: "topology hints",
      ep: {
        addresses: ["198.18.0.10"],
        zone: "z1",
        hints: { forZones: [{ name: "z1" }, { name: "z2" }], forNodes: [{ name: "node-1" }] },
      },
      want: {
        address: "198.18.0.10",
        ready: true,
        serving: true,
        terminating: false,
        zone: "z1",
        zoneHints: ["z1", "z2"],
        nodeHints: ["node-1"],
      },
    },
  ];
  for (const c of cases) {
    await t.step(c.name, () => {
      const { value, errors } = parseEndpointSlice(slice({ endpoints: [c.ep] }), "e.yaml#1");
      assertEquals(errors.map(formatError), []);
      assertEquals(value?.endpoints, [c.want]);
    });
  }
  await t.step("identity, ports and IPv6 canonical form", () => {
    const { value, errors } = parseEndpointSlice(
      slice({
        addressType: "IPv6",
        endpoints: [{ addresses: ["2001:DB8:0:0::a"] }],
        ports: [{ name: "http", port: 8080 }, { name: "dns", port: 53, protocol: "UDP" }],
      }),
      "e.yaml#1",
    );
    assertEquals(errors, []);
    assertEquals(plainSet(value), {
      namespace: "default",
      serviceName: "web",
      id: "web-1",
      ports: [
        { name: "http", protocol: "TCP", port: 8080 },
        { name: "dns", protocol: "UDP", port: 53 },
      ],
      endpoints: [{ address: "2001:db8::a", ready: true, serving: true, terminating: false }],
    });
  });
  await t.step("no endpoints and no ports is a valid empty slice", () => {
    const { value, errors } = parseEndpointSlice(
      slice({ endpoints: undefined, ports: undefined }),
      "e.yaml#1",
    );
    assertEquals(errors, []);
    assertEquals(value?.endpoints, []);
    assertEquals(value?.ports, []);
  });
  await t.step("FQDN slices are ignored with a warning", () => {
    const { value, errors } = parseEndpointSlice(slice({ addressType: "FQDN" }), "e.yaml#1");
    assertEquals(value, undefined);
    assertEquals(errors.map(formatError), [
      'e.yaml#1 addressType: "FQDN" slices are not used by svcgate; slice ignored',
    ]);
    assertEquals(errors.map(isWarning), [true]);
  });
});

Deno.test("parseEndpointSlice: bad input is rejected with the exact error", async (t) => {
  const cases: { name: string; obj: unknown; errors: string[] }[] = [
    {
      name: "service-name label missing",
      obj: slice({}, { app: "web" }),
      errors: [
        'e.yaml#1 metadata.labels["kubernetes.io/service-name"]: missing; an EndpointSlice names its Service in this label',
      ],
    },
    {
      name: "service-name label not a service name",
      obj: slice({}, { "kubernetes.io/service-name": "Web" }),
      errors: [
        'e.yaml#1 metadata.labels["kubernetes.io/service-name"]: "Web" is not a valid Service name (a DNS-1035 label: a-z, 0-9 and "-", starting with a letter, ending with a letter or digit, at most 63 characters)',
      ],
    },
    {
      name: "name invalid",
      obj: {
        ...slice(),
        metadata: { name: "web_1", labels: { "kubernetes.io/service-name": "web" } },
      },
      errors: [
        'e.yaml#1 metadata.name: "web_1" is not a valid EndpointSlice name (a DNS-1123 subdomain: dot-separated DNS-1123 labels, at most 253 characters)',
      ],
    },
    {
      name: "addressType missing",
      obj: slice({ addressType: undefined }),
      errors: ["e.yaml#1 addressType: missing; expected IPv4 or IPv6"],
    },
    {
      name: "addressType unknown",
      obj: slice({ addressType: "IP" }),
      errors: ['e.yaml#1 addressType: "IP" is not an address type (IPv4, IPv6, FQDN)'],
    },
    {
      name: "address of the wrong family",
      obj: slice({ endpoints: [{ addresses: ["2001:db8::a"] }] }),
      errors: ['e.yaml#1 endpoints[0].addresses[0]: "2001:db8::a" is not an IPv4 address'],
    },
    {
      name: "address invalid",
      obj: slice({ endpoints: [{ addresses: ["198.18.0.1"] }, { addresses: ["198.18.0.256"] }] }),
      errors: ['e.yaml#1 endpoints[1].addresses[0]: "198.18.0.256" is not an IP address'],
    },
    {
      name: "addresses missing",
      obj: slice({ endpoints: [{ conditions: { ready: true } }] }),
      errors: ["e.yaml#1 endpoints[0].addresses: missing; every endpoint needs an address"],
    },
    {
      name: "addresses empty",
      obj: slice({ endpoints: [{ addresses: [] }] }),
      errors: ["e.yaml#1 endpoints[0].addresses: missing; every endpoint needs an address"],
    },
    {
      name: "condition not a boolean",
      obj: slice({ endpoints: [{ addresses: ["198.18.0.10"], conditions: { ready: "true" } }] }),
      errors: [
        'e.yaml#1 endpoints[0].conditions.ready: "true" is not a boolean (true or false)',
      ],
    },
    {
      name: "hostname invalid",
      obj: slice({ endpoints: [{ addresses: ["198.18.0.10"], hostname: "web.0" }] }),
      errors: [
        'e.yaml#1 endpoints[0].hostname: "web.0" is not a valid hostname (a DNS-1123 label: a-z, 0-9 and "-", starting and ending with a letter or digit, at most 63 characters)',
      ],
    },
    {
      name: "hint without a name",
      obj: slice({ endpoints: [{ addresses: ["198.18.0.10"], hints: { forZones: [{}] } }] }),
      errors: [
        "e.yaml#1 endpoints[0].hints.forZones[0].name: missing; a hint names a zone or node",
      ],
    },
    {
      name: "nodeName invalid",
      obj: slice({ endpoints: [{ addresses: ["198.18.0.10"], nodeName: "Node 1" }] }),
      errors: [
        'e.yaml#1 endpoints[0].nodeName: "Node 1" is not a valid node name (a DNS-1123 subdomain: dot-separated DNS-1123 labels, at most 253 characters)',
      ],
    },
    {
      name: "targetRef without name",
      obj: slice({ endpoints: [{ addresses: ["198.18.0.10"], targetRef: { kind: "Pod" } }] }),
      errors: [
        "e.yaml#1 endpoints[0].targetRef.name: missing; a targetRef names the object behind the endpoint",
      ],
    },
    {
      name: "port out of range",
      obj: slice({ ports: [{ port: 0 }] }),
      errors: ["e.yaml#1 ports[0].port: 0 is not a port (1-65535)"],
    },
    {
      name: "duplicate port names",
      obj: slice({ ports: [{ name: "http", port: 80 }, { name: "http", port: 81 }] }),
      errors: ['e.yaml#1 ports[1].name: "http" is already used by ports[0]'],
    },
    {
      name: "two unnamed ports",
      obj: slice({ ports: [{ port: 80 }, { port: 81 }] }),
      errors: ['e.yaml#1 ports[1].name: "" is already used by ports[0]'],
    },
    {
      name: "port protocol unknown",
      obj: slice({ ports: [{ port: 80, protocol: "QUIC" }] }),
      errors: ['e.yaml#1 ports[0].protocol: "QUIC" is not a protocol (TCP, UDP, SCTP)'],
    },
    {
      name: "wrong apiVersion",
      obj: slice({ apiVersion: "discovery.k8s.io/v1beta1" }),
      errors: [
        'e.yaml#1 apiVersion: "discovery.k8s.io/v1beta1" is not supported for kind EndpointSlice (expected "discovery.k8s.io/v1")',
      ],
    },
    {
      name: "endpoints not a list",
      obj: slice({ endpoints: { addresses: ["198.18.0.10"] } }),
      errors: ['e.yaml#1 endpoints: expected a list, got {"addresses":["198.18.0.10"]}'],
    },
  ];
  for (const c of cases) {
    await t.step(c.name, () => {
      const { value, errors } = parseEndpointSlice(c.obj, "e.yaml#1");
      assertEquals(errors.map(formatError), c.errors);
      assertEquals(value, undefined);
    });
  }
});

Deno.test("an EndpointSlice port without a number is skipped with a warning", () => {
  const r = parseEndpointSlice(
    slice({ ports: [{ name: "all" }, { name: "http", port: 8080 }] }),
    "e.yaml#1",
  );
  assertEquals(r.errors.map(formatError), [
    "e.yaml#1 ports[0].port: missing; this port is ignored (svcgate needs a port number)",
  ]);
  assertEquals(r.errors.every(isWarning), true);
  assertEquals(r.value?.ports, [{ name: "http", protocol: "TCP", port: 8080 }]);
});

Deno.test("an EndpointSlice may mix one unnamed port with named ones, as the API allows", () => {
  const r = parseEndpointSlice(
    slice({ ports: [{ port: 8080 }, { name: "metrics", port: 9100 }] }),
    "e.yaml#1",
  );
  assertEquals(r.errors, []);
  assertEquals(r.value?.ports.map((p) => `${p.name}:${p.port}`), [":8080", "metrics:9100"]);
});

Deno.test("parseEndpointSlice: keepPodNames keeps a Pod targetRef's name, nothing else", () => {
  const eps = [
    { addresses: ["198.18.0.10"], targetRef: { kind: "Pod", name: "web-7d4f-x2" } },
    { addresses: ["198.18.0.11"], targetRef: { kind: "Node", name: "node-1" } },
    { addresses: ["198.18.0.12"], targetRef: { kind: "Pod", name: "a".repeat(64) } },
    { addresses: ["198.18.0.13"], hostname: "db-0", targetRef: { kind: "Pod", name: "db-0" } },
  ];
  const kept = parseEndpointSlice(slice({ endpoints: eps }), "e.yaml#1", { keepPodNames: true });
  assertEquals(kept.errors, []);
  assertEquals(kept.value?.endpoints.map((e) => e.podName), [
    "web-7d4f-x2",
    undefined,
    undefined,
    "db-0",
  ]);
  const plain = parseEndpointSlice(slice({ endpoints: eps }), "e.yaml#1");
  assertEquals(plain.value?.endpoints.map((e) => e.podName), [
    undefined,
    undefined,
    undefined,
    undefined,
  ]);
});
