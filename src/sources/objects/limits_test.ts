import { deepStrictEqual, strictEqual } from "node:assert/strict";
import { parseObject } from "./parse_object.ts";
import { endpoints, type Obj, slice, svc } from "../../../tests/support/object_fixtures.ts";
import { formatError, isWarning, type ParseOptions } from "./validate.ts";

const ports = (n: number) => Array.from({ length: n }, (_, i) => ({ name: `p${i}`, port: i + 1 }));
const eps = (n: number) =>
  Array.from({ length: n }, (_, i) => ({ addresses: [`198.18.${i >> 8}.${i & 255}`] }));
const addrs = (n: number) => Array.from({ length: n }, (_, i) => ({ ip: `198.18.1.${i % 250}` }));
const small = { limits: { servicePorts: 3, sliceEndpoints: 2, subsetEndpoints: 4 } };

const CASES: { name: string; obj: Obj; options?: ParseOptions; errors: string[] }[] = [
  { name: "1,000 ports: the default allows them", obj: svc({ ports: ports(1000) }), errors: [] },
  {
    name: "1,001 ports: rejected, naming the limit and its flag",
    obj: svc({ ports: ports(1001) }),
    errors: [
      "f.yaml#1 spec.ports: 1001 ports, more than the limit of 1000 (--max-service-ports); the object is rejected",
    ],
  },
  {
    name: "a slice of 1,000 endpoints, as the API server allows",
    obj: slice({ endpoints: eps(1000) }),
    errors: [],
  },
  {
    name: "a slice of 100,000 endpoints",
    obj: slice({ endpoints: eps(100_000) }),
    errors: [
      "f.yaml#1 endpoints: 100000 endpoints, more than the limit of 1000 (--max-endpoints-per-slice); the object is rejected",
    ],
  },
  {
    name: "a subset counts addresses and notReadyAddresses together",
    obj: endpoints([{
      addresses: addrs(600),
      notReadyAddresses: addrs(401),
      ports: [{ port: 80 }],
    }]),
    errors: [
      "f.yaml#1 subsets[0]: 1001 addresses and notReadyAddresses, more than the limit of 1000 (--max-endpoints-per-subset); the object is rejected",
    ],
  },
  {
    name: "limits from the options",
    obj: svc({ ports: ports(4) }),
    options: small,
    errors: [
      "f.yaml#1 spec.ports: 4 ports, more than the limit of 3 (--max-service-ports); the object is rejected",
    ],
  },
  {
    name: "limits from the options: a slice at its limit",
    obj: slice({ endpoints: eps(2) }),
    options: small,
    errors: [],
  },
  {
    name: "limits from the options: the second subset is over",
    obj: endpoints([
      { addresses: addrs(4), ports: [{ port: 80 }] },
      { addresses: addrs(5), ports: [{ port: 80 }] },
    ]),
    options: small,
    errors: [
      "f.yaml#1 subsets[1]: 5 addresses and notReadyAddresses, more than the limit of 4 (--max-endpoints-per-subset); the object is rejected",
    ],
  },
];

for (const c of CASES) {
  Deno.test(`object limits: ${c.name}`, () => {
    const r = parseObject(c.obj, "f.yaml#1", c.options);
    const errors = r.errors.filter((e) => !isWarning(e)).map(formatError);
    deepStrictEqual(errors, c.errors);
    strictEqual(r.value !== undefined, c.errors.length === 0, "a value only when no error");
  });
}
