import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { formatError } from "./validate.ts";
import { parseEndpoints } from "./endpoints.ts";
import { endpoints, plainSet } from "../../../tests/support/object_fixtures.ts";

Deno.test("parseEndpoints: one set per subset; addresses ready, notReadyAddresses not", () => {
  const { value, errors } = parseEndpoints(
    endpoints([
      {
        addresses: [{
          ip: "198.18.0.10",
          hostname: "db-0",
          nodeName: "node-1",
          targetRef: { kind: "Pod", name: "db-0" },
        }],
        notReadyAddresses: [{ ip: "198.18.0.11" }],
        ports: [{ name: "pg", port: 5432 }],
      },
      { addresses: [{ ip: "2001:db8::0:b" }], ports: [{ port: 53, protocol: "UDP" }] },
    ], { name: "db", namespace: "data" }),
    "d.yaml#2",
  );
  assertEquals(errors, []);
  assertEquals(value?.map(plainSet), [
    {
      namespace: "data",
      serviceName: "db",
      id: "endpoints/db#0",
      ports: [{ name: "pg", protocol: "TCP", port: 5432 }],
      endpoints: [
        {
          address: "198.18.0.10",
          ready: true,
          serving: true,
          terminating: false,
          nodeName: "node-1",
          hostname: "db-0",
        },
        { address: "198.18.0.11", ready: false, serving: false, terminating: false },
      ],
    },
    {
      namespace: "data",
      serviceName: "db",
      id: "endpoints/db#1",
      ports: [{ name: "", protocol: "UDP", port: 53 }],
      endpoints: [{ address: "2001:db8::b", ready: true, serving: true, terminating: false }],
    },
  ]);
});

Deno.test("parseEndpoints: no subsets is a valid empty object", () => {
  assertEquals(parseEndpoints(endpoints(undefined), "d.yaml#1"), { value: [], errors: [] });
});

Deno.test("parseEndpoints: bad input is rejected with the exact error", async (t) => {
  const cases: { name: string; obj: unknown; errors: string[] }[] = [
    {
      name: "ip missing",
      obj: endpoints([{ addresses: [{ hostname: "db-0" }] }]),
      errors: ["d.yaml#1 subsets[0].addresses[0].ip: missing; every address needs an ip"],
    },
    {
      name: "ip invalid",
      obj: endpoints([{ notReadyAddresses: [{ ip: "db-0" }] }]),
      errors: ['d.yaml#1 subsets[0].notReadyAddresses[0].ip: "db-0" is not an IP address'],
    },
    {
      name: "ports need names when more than one",
      obj: endpoints([{ ports: [{ port: 1 }, { port: 2 }] }]),
      errors: [
        "d.yaml#1 subsets[0].ports[0].name: missing; every port needs a name when there is more than one port",
        "d.yaml#1 subsets[0].ports[1].name: missing; every port needs a name when there is more than one port",
      ],
    },
    {
      name: "subsets not a list",
      obj: endpoints({ addresses: [] }),
      errors: ['d.yaml#1 subsets: expected a list, got {"addresses":[]}'],
    },
    {
      name: "name missing",
      obj: endpoints([], {}),
      errors: ["d.yaml#1 metadata.name: missing; every Endpoints needs a name"],
    },
    {
      name: "hostname invalid",
      obj: endpoints([{ addresses: [{ ip: "198.18.0.10", hostname: "DB" }] }]),
      errors: [
        'd.yaml#1 subsets[0].addresses[0].hostname: "DB" is not a valid hostname (a DNS-1123 label: a-z, 0-9 and "-", starting and ending with a letter or digit, at most 63 characters)',
      ],
    },
  ];
  for (const c of cases) {
    await t.step(c.name, () => {
      const { value, errors } = parseEndpoints(c.obj, "d.yaml#1");
      assertEquals(errors.map(formatError), c.errors);
      assertEquals(value, undefined);
    });
  }
});

Deno.test("an Endpoints port without a number is an error", () => {
  const r = parseEndpoints(endpoints([{ ports: [{ name: "http" }] }]), "d.yaml#1");
  assertEquals(r.errors.map(formatError), [
    "d.yaml#1 subsets[0].ports[0].port: missing; a port number (1-65535) is required",
  ]);
  assertEquals(r.value, undefined);
});
