import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { formatError } from "./validate.ts";
import { parseService } from "./service.ts";
import { svc } from "../../../tests/support/object_fixtures.ts";

Deno.test("parseService: bad metadata is rejected with the exact error", async (t) => {
  const cases: { name: string; obj: unknown; errors: string[] }[] = [
    {
      name: "metadata missing",
      obj: { apiVersion: "v1", kind: "Service", spec: { ports: [{ port: 80 }] } },
      errors: ["s.yaml#1 metadata: missing; every Service needs metadata.name"],
    },
    {
      name: "name missing",
      obj: svc({}, { name: undefined, generateName: "web-" }),
      errors: ["s.yaml#1 metadata.name: missing; every Service needs a name"],
    },
    {
      name: "name not a DNS-1035 label",
      obj: svc({}, { name: "1web" }),
      errors: [
        's.yaml#1 metadata.name: "1web" is not a valid Service name (a DNS-1035 label: a-z, 0-9 and "-", starting with a letter, ending with a letter or digit, at most 63 characters)',
      ],
    },
    {
      name: "name with uppercase",
      obj: svc({}, { name: "Web" }),
      errors: [
        's.yaml#1 metadata.name: "Web" is not a valid Service name (a DNS-1035 label: a-z, 0-9 and "-", starting with a letter, ending with a letter or digit, at most 63 characters)',
      ],
    },
    {
      name: "name too long",
      obj: svc({}, { name: "a".repeat(64) }),
      errors: [
        `s.yaml#1 metadata.name: "${
          "a".repeat(
            64,
          )
        }" is not a valid Service name (a DNS-1035 label: a-z, 0-9 and "-", starting with a letter, ending with a letter or digit, at most 63 characters)`,
      ],
    },
    {
      name: "namespace invalid",
      obj: svc({}, { namespace: "Prod_1" }),
      errors: [
        's.yaml#1 metadata.namespace: "Prod_1" is not a valid namespace (a DNS-1123 label: a-z, 0-9 and "-", starting and ending with a letter or digit, at most 63 characters)',
      ],
    },
    {
      name: "label value not a string",
      obj: svc({}, { labels: { tier: 1 } }),
      errors: ["s.yaml#1 metadata.labels.tier: 1 is not a string (quote it)"],
    },
    {
      name: "label value invalid",
      obj: svc({}, { labels: { tier: "front end" } }),
      errors: [
        's.yaml#1 metadata.labels.tier: "front end" is not a label value: at most 63 characters of A-Z, a-z, 0-9, "-", "_" and ".", starting and ending with a letter or digit',
      ],
    },
    {
      name: "label key prefix invalid",
      obj: svc({}, { labels: { "Example.com/tier": "x" } }),
      errors: [
        's.yaml#1 metadata.labels["Example.com/tier"]: key prefix "Example.com" is not a DNS-1123 subdomain: dot-separated DNS-1123 labels, at most 253 characters',
      ],
    },
    {
      name: "annotation value not a string",
      obj: svc({}, { annotations: { "svcgate.io/health-check-interval": 5 } }),
      errors: [
        's.yaml#1 metadata.annotations["svcgate.io/health-check-interval"]: 5 is not a string (quote it)',
      ],
    },
    {
      name: "annotation key name invalid",
      obj: svc({}, { annotations: { "svcgate.io/": "x" } }),
      errors: [
        's.yaml#1 metadata.annotations["svcgate.io/"]: key name "" must be 1-63 characters of A-Z, a-z, 0-9, "-", "_" and ".", starting and ending with a letter or digit',
      ],
    },
  ];
  for (const c of cases) {
    await t.step(c.name, () => {
      const { value, errors } = parseService(c.obj, "s.yaml#1");
      assertEquals(errors.map(formatError), c.errors);
      assertEquals(value, undefined);
    });
  }
});
