import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { formatError } from "./validate.ts";
import { parseService } from "./service.ts";
import { svc } from "../../../tests/support/object_fixtures.ts";

Deno.test("parseService: bad ports are rejected with the exact error", async (t) => {
  const cases: { name: string; obj: unknown; errors: string[] }[] = [
    {
      name: "port out of range",
      obj: svc({ ports: [{ name: "a", port: 80 }, { name: "b", port: 70000 }] }),
      errors: ["s.yaml#1 spec.ports[1].port: 70000 is not a port (1-65535)"],
    },
    {
      name: "port as a string",
      obj: svc({ ports: [{ port: "80" }] }),
      errors: ['s.yaml#1 spec.ports[0].port: "80" is not a port (1-65535)'],
    },
    {
      name: "port not an integer",
      obj: svc({ ports: [{ port: 80.5 }] }),
      errors: ["s.yaml#1 spec.ports[0].port: 80.5 is not a port (1-65535)"],
    },
    {
      name: "port missing",
      obj: svc({ ports: [{ name: "http" }] }),
      errors: ["s.yaml#1 spec.ports[0].port: missing; a port number (1-65535) is required"],
    },
    {
      name: "no ports",
      obj: svc({ ports: [] }),
      errors: [
        "s.yaml#1 spec.ports: no ports; a Service needs at least one port unless it is headless or ExternalName",
      ],
    },
    {
      name: "ports not a list",
      obj: svc({ ports: { port: 80 } }),
      errors: ['s.yaml#1 spec.ports: expected a list, got {"port":80}'],
    },
    {
      name: "port entry null",
      obj: svc({ ports: [null] }),
      errors: ["s.yaml#1 spec.ports[0]: expected an object, got null"],
    },
    {
      name: "second port unnamed",
      obj: svc({ ports: [{ name: "http", port: 80 }, { port: 443 }] }),
      errors: [
        "s.yaml#1 spec.ports[1].name: missing; every port needs a name when a Service has more than one port",
      ],
    },
    {
      name: "duplicate port names",
      obj: svc({ ports: [{ name: "http", port: 80 }, { name: "http", port: 81 }] }),
      errors: ['s.yaml#1 spec.ports[1].name: "http" is already used by spec.ports[0]'],
    },
    {
      name: "invalid port name",
      obj: svc({ ports: [{ name: "HTTP", port: 80 }] }),
      errors: [
        's.yaml#1 spec.ports[0].name: "HTTP" is not a valid port name (a DNS-1123 label: a-z, 0-9 and "-", starting and ending with a letter or digit, at most 63 characters)',
      ],
    },
    {
      name: "duplicate port and protocol",
      obj: svc({ ports: [{ name: "a", port: 80 }, { name: "b", port: 80, protocol: "TCP" }] }),
      errors: ["s.yaml#1 spec.ports[1]: port 80/TCP is already used by spec.ports[0]"],
    },
    {
      name: "unknown protocol",
      obj: svc({ ports: [{ port: 80, protocol: "tcp" }] }),
      errors: ['s.yaml#1 spec.ports[0].protocol: "tcp" is not a protocol (TCP, UDP, SCTP)'],
    },
    {
      name: "targetPort out of range",
      obj: svc({ ports: [{ port: 80, targetPort: 65536 }] }),
      errors: ["s.yaml#1 spec.ports[0].targetPort: 65536 is not a port (1-65535)"],
    },
    {
      name: "targetPort name too long",
      obj: svc({ ports: [{ port: 80, targetPort: "a-very-long-port-name" }] }),
      errors: [
        's.yaml#1 spec.ports[0].targetPort: "a-very-long-port-name" is not a port number or an IANA service name: 1-15 characters a-z, 0-9 and "-", at least one letter, no leading, trailing or double "-"',
      ],
    },
    {
      name: "targetPort quoted number",
      obj: svc({ ports: [{ port: 80, targetPort: "8080" }] }),
      errors: [
        's.yaml#1 spec.ports[0].targetPort: "8080" is not a port number or an IANA service name: 1-15 characters a-z, 0-9 and "-", at least one letter, no leading, trailing or double "-"',
      ],
    },
    {
      name: "targetPort with double dash",
      obj: svc({ ports: [{ port: 80, targetPort: "http--alt" }] }),
      errors: [
        's.yaml#1 spec.ports[0].targetPort: "http--alt" is not a port number or an IANA service name: 1-15 characters a-z, 0-9 and "-", at least one letter, no leading, trailing or double "-"',
      ],
    },
    {
      name: "targetPort of another type",
      obj: svc({ ports: [{ port: 80, targetPort: true }] }),
      errors: ["s.yaml#1 spec.ports[0].targetPort: true is not a port number or a port name"],
    },
    {
      name: "nodePort on ClusterIP",
      obj: svc({ ports: [{ port: 80, nodePort: 30080 }] }),
      errors: [
        "s.yaml#1 spec.ports[0].nodePort: 30080 is not allowed for type ClusterIP (only NodePort and LoadBalancer)",
      ],
    },
    {
      name: "nodePort out of range",
      obj: svc({ type: "NodePort", ports: [{ port: 80, nodePort: 70000 }] }),
      errors: ["s.yaml#1 spec.ports[0].nodePort: 70000 is not a port (1-65535)"],
    },
    {
      name: "duplicate nodePort",
      obj: svc({
        type: "NodePort",
        ports: [{ name: "a", port: 80, nodePort: 30080 }, { name: "b", port: 81, nodePort: 30080 }],
      }),
      errors: ["s.yaml#1 spec.ports[1].nodePort: 30080/TCP is already used by spec.ports[0]"],
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
