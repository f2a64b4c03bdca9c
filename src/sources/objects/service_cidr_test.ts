import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { parseServiceCidr } from "./service_cidr.ts";
import { formatError } from "./validate.ts";

Deno.test("parseServiceCidr: the ranges of a networking.k8s.io/v1 ServiceCIDR", () => {
  const obj = (spec: unknown) => ({
    apiVersion: "networking.k8s.io/v1",
    kind: "ServiceCIDR",
    metadata: { name: "kubernetes" },
    spec,
  });
  // [what, object, ranges or the first error]
  const table: [string, unknown, string][] = [
    [
      "dual-stack",
      obj({ cidrs: ["198.19.0.0/16", "2001:db8:19::/112"] }),
      "198.19.0.0/16,2001:db8:19::/112",
    ],
    [
      "no cidrs",
      obj({}),
      "API ServiceCIDR kubernetes spec.cidrs: missing; a ServiceCIDR holds one CIDR per family",
    ],
    [
      "a bad CIDR",
      obj({ cidrs: ["198.19.0.0/40"] }),
      'API ServiceCIDR kubernetes spec.cidrs[0]: "198.19.0.0/40" is not a CIDR: prefix is invalid',
    ],
  ];
  for (const [what, o, expected] of table) {
    const { value, errors } = parseServiceCidr(o, "API ServiceCIDR kubernetes");
    assertEquals(
      value ? value.map((c) => c.text).join(",") : formatError(errors[0]),
      expected,
      what,
    );
  }
});
