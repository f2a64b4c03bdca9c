import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { formatError } from "./validate.ts";
import { parseService } from "./service.ts";
import { svc } from "../../../tests/support/object_fixtures.ts";

Deno.test("parseService: bad cluster IPs and IP families are rejected with the exact error", async (t) => {
  const cases: { name: string; obj: unknown; errors: string[] }[] = [
    {
      name: "clusterIP not an address",
      obj: svc({ clusterIP: "198.19.0.300" }),
      errors: [
        's.yaml#1 spec.clusterIP: "198.19.0.300" is not an IP address (or "None" for a headless service)',
      ],
    },
    {
      name: "clusterIPs same family",
      obj: svc({ clusterIPs: ["198.19.0.10", "198.19.0.11"] }),
      errors: [
        's.yaml#1 spec.clusterIPs[1]: "198.19.0.11" has the same IP family as spec.clusterIPs[0] "198.19.0.10"; dual-stack needs one IPv4 and one IPv6 address',
      ],
    },
    {
      name: "clusterIPs[0] differs from clusterIP",
      obj: svc({ clusterIP: "198.19.0.10", clusterIPs: ["198.19.0.11"] }),
      errors: [
        's.yaml#1 spec.clusterIPs[0]: "198.19.0.11" does not match spec.clusterIP "198.19.0.10"',
      ],
    },
    {
      name: "three clusterIPs",
      obj: svc({ clusterIPs: ["198.19.0.10", "2001:db8::10", "2001:db8::11"] }),
      errors: [
        's.yaml#1 spec.clusterIPs: 3 addresses given; at most 2 are allowed (one per IP family): ["198.19.0.10","2001:db8::10","2001:db8::11"]',
      ],
    },
    {
      name: "None with another address",
      obj: svc({ clusterIPs: ["None", "198.19.0.10"] }),
      errors: [
        's.yaml#1 spec.clusterIPs: "None" must be the only entry, got ["None","198.19.0.10"]',
      ],
    },
    {
      name: "headless NodePort",
      obj: svc({ type: "NodePort", clusterIP: "None" }),
      errors: ['s.yaml#1 spec.clusterIP: "None" (headless) is not allowed for type NodePort'],
    },
    {
      name: "clusterIP on ExternalName",
      obj: svc({ type: "ExternalName", externalName: "db.example.org", clusterIP: "198.19.0.10" }),
      errors: [
        's.yaml#1 spec.clusterIP: "198.19.0.10" is not allowed for type ExternalName (leave it empty)',
      ],
    },
    {
      name: "unknown IP family",
      obj: svc({ ipFamilies: ["IPv5"] }),
      errors: ['s.yaml#1 spec.ipFamilies[0]: "IPv5" is not an IP family (IPv4, IPv6)'],
    },
    {
      name: "IP family listed twice",
      obj: svc({ ipFamilies: ["IPv4", "IPv4"] }),
      errors: ['s.yaml#1 spec.ipFamilies[1]: "IPv4" is listed twice'],
    },
    {
      name: "IP family does not match clusterIP",
      obj: svc({ clusterIP: "198.19.0.10", ipFamilies: ["IPv6"] }),
      errors: [
        's.yaml#1 spec.ipFamilies[0]: "IPv6" does not match the family of spec.clusterIP "198.19.0.10"',
      ],
    },
    {
      name: "SingleStack with two families",
      obj: svc({ ipFamilyPolicy: "SingleStack", ipFamilies: ["IPv4", "IPv6"] }),
      errors: [
        's.yaml#1 spec.ipFamilyPolicy: "SingleStack" allows one IP family, but 2 are requested',
      ],
    },
    {
      name: "unknown IP family policy",
      obj: svc({ ipFamilyPolicy: "DualStack" }),
      errors: [
        's.yaml#1 spec.ipFamilyPolicy: "DualStack" is not an IP family policy (SingleStack, PreferDualStack, RequireDualStack)',
      ],
    },
    {
      name: "fewer ipFamilies than clusterIPs",
      obj: svc({ clusterIPs: ["198.19.0.10", "2001:db8::10"], ipFamilies: ["IPv4"] }),
      errors: [
        "s.yaml#1 spec.ipFamilies: lists 1 family but spec.clusterIPs has 2 addresses",
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
