import { deepStrictEqual as assertEquals, strictEqual } from "node:assert/strict";
import { formatLoadErrors, keepLastGood, loadManifestTexts, type ManifestText } from "./load.ts";
import { findDeepNesting, parseManifestFile } from "./parse_file.ts";

/** A Service document with the given name and port lines, as YAML. */
function service(name: string, port: number | string = 80, extra = ""): string {
  return `apiVersion: v1
kind: Service
metadata:
  name: ${name}
spec:
  ports:
    - port: ${port}
${extra}`;
}

function slice(name: string, serviceName: string, address = "198.18.0.10"): string {
  return `apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: ${name}
  labels:
    kubernetes.io/service-name: ${serviceName}
addressType: IPv4
endpoints:
  - addresses: ["${address}"]
ports:
  - port: 8080
`;
}

function keys(services: readonly { namespace: string; name: string }[]): string[] {
  return services.map((s) => `${s.namespace}/${s.name}`);
}

Deno.test("loadManifestTexts: bad input gives the exact error and the rest still loads", async (t) => {
  const cases: {
    name: string;
    files: [string, string][];
    errors: string[];
    /** Services that still load. */
    services: string[];
  }[] = [
    {
      name: "YAML: inconsistent indentation, document 2 of 3",
      files: [[
        "services.yaml",
        `${service("a")}---
apiVersion: v1
kind: Service
metadata:
  name: broken
  spec:
 ports: [
---
${service("c")}`,
      ]],
      errors: [
        "services.yaml#2: cannot parse YAML at line 13, column 8: All mapping items must start at the same column",
      ],
      services: ["default/a", "default/c"],
    },
    {
      name: "YAML: duplicate key",
      files: [["dup.yaml", "apiVersion: v1\nkind: Service\nmetadata:\n  name: a\n  name: b\n"]],
      errors: ["dup.yaml#1: cannot parse YAML at line 5, column 3: Map keys must be unique"],
      services: [],
    },
    {
      name: "YAML: unclosed flow sequence",
      files: [["s.yaml", "metadata: {name: a}\nports: [1, 2\nkind: Service\n"]],
      errors: [
        "s.yaml#1: cannot parse YAML at line 3, column 1: Flow sequence in block collection must be sufficiently indented and end with a ]",
      ],
      services: [],
    },
    {
      name: "YAML: unterminated quote",
      files: [["s.yaml", 'kind: "Service\n']],
      errors: ['s.yaml#1: cannot parse YAML at line 2, column 1: Missing closing "quote'],
      services: [],
    },
    {
      name: "YAML: tab indentation",
      files: [["s.yaml", "kind: Service\nmetadata:\n\tname: a\n"]],
      errors: [
        "s.yaml#1: cannot parse YAML at line 3, column 1: Tabs are not allowed as indentation",
      ],
      services: [],
    },
    {
      name: "YAML: nested compact mapping",
      files: [["s.yaml", "kind: Service\nmetadata: name: a\n"]],
      errors: [
        "s.yaml#1: cannot parse YAML at line 2, column 11: Nested mappings are not allowed in compact mappings",
      ],
      services: [],
    },
    {
      name: "YAML: document is a list",
      files: [["s.yaml", "- kind: Service\n"]],
      errors: [
        's.yaml#1: expected a Kubernetes object (a mapping with apiVersion and kind), got [{"kind":"Service"}]',
      ],
      services: [],
    },
    {
      name: "YAML: document is a string",
      files: [["s.yaml", `${service("a")}---\nhello world\n`]],
      errors: [
        's.yaml#2: expected a Kubernetes object (a mapping with apiVersion and kind), got "hello world"',
      ],
      services: ["default/a"],
    },
    {
      name: "JSON: trailing comma",
      files: [["s.json", '{\n  "kind": "Service",\n  "apiVersion": "v1",\n}\n']],
      errors: [
        's.json#1: cannot parse JSON at line 4, column 1: expected a property name in double quotes, found "}"',
      ],
      services: [],
    },
    {
      name: "JSON: missing comma",
      files: [["s.json", '{\n  "kind": "Service"\n  "apiVersion": "v1"\n}\n']],
      errors: [
        's.json#1: cannot parse JSON at line 3, column 3: expected "," or "}", found "\\""',
      ],
      services: [],
    },
    {
      name: "JSON: unquoted value",
      files: [["s.json", '{"kind": Service}']],
      errors: [
        's.json#1: cannot parse JSON at line 1, column 10: unexpected "Service" (strings need double quotes)',
      ],
      services: [],
    },
    {
      name: "JSON: two values",
      files: [["s.json", '{"kind": "Service"}\n{"kind": "Service"}\n']],
      errors: [
        's.json#1: cannot parse JSON at line 2, column 1: unexpected "{" after the end of the value',
      ],
      services: [],
    },
    {
      name: "a field error names file, document and path",
      files: [[
        "services.yaml",
        `${service("a")}---\n${service("b")}---\napiVersion: v1
kind: Service
metadata:
  name: c
spec:
  ports:
    - name: http
      port: 80
    - name: admin
      port: 70000
`,
      ]],
      errors: ["services.yaml#3 spec.ports[1].port: 70000 is not a port (1-65535)"],
      services: ["default/a", "default/b"],
    },
    {
      name: "a List item error names the item",
      files: [[
        "list.json",
        JSON.stringify({
          apiVersion: "v1",
          kind: "List",
          items: [
            {
              apiVersion: "v1",
              kind: "Service",
              metadata: { name: "a" },
              spec: { ports: [{ port: 80 }] },
            },
            {
              apiVersion: "v1",
              kind: "Service",
              metadata: { name: "b" },
              spec: { ports: [{ port: -1 }] },
            },
          ],
        }),
      ]],
      errors: ["list.json#1 items[1].spec.ports[0].port: -1 is not a port (1-65535)"],
      services: ["default/a"],
    },
    {
      name: "a List whose items are not a list",
      files: [["l.yaml", "apiVersion: v1\nkind: ServiceList\nitems: 3\n"]],
      errors: ["l.yaml#1 items: expected a list, got 3"],
      services: [],
    },
    {
      name: "the same Service in two files: both places named, first wins",
      files: [["a.yaml", service("web", 80)], [
        "b.yaml",
        `${service("x")}---\n${service("web", 81)}`,
      ]],
      errors: [
        "b.yaml#2: Service default/web is already defined at a.yaml#1; this copy is ignored",
      ],
      services: ["default/web", "default/x"],
    },
    {
      name: "the same Service twice in a List",
      files: [[
        "l.yaml",
        `apiVersion: v1
kind: List
items:
  - {apiVersion: v1, kind: Service, metadata: {name: a}, spec: {ports: [{port: 1}]}}
  - {apiVersion: v1, kind: Service, metadata: {name: a}, spec: {ports: [{port: 2}]}}
`,
      ]],
      errors: [
        "l.yaml#1 items[1]: Service default/a is already defined at l.yaml#1; this copy is ignored",
      ],
      services: ["default/a"],
    },
    {
      name: "the same EndpointSlice twice",
      files: [[
        "a.yaml",
        `${service("web")}---\n${slice("web-1", "web")}---\n${slice("web-1", "web")}`,
      ]],
      errors: [
        "a.yaml#3: EndpointSlice default/web-1 is already defined at a.yaml#2; this copy is ignored",
      ],
      services: ["default/web"],
    },
    {
      name: "a name that is not a DNS label",
      files: [["s.yaml", service("Web_1")]],
      errors: [
        's.yaml#1 metadata.name: "Web_1" is not a valid Service name (a DNS-1035 label: a-z, 0-9 and "-", starting with a letter, ending with a letter or digit, at most 63 characters)',
      ],
      services: [],
    },
    {
      name: "a YAML number where a string is needed",
      files: [["s.yaml", service("a", 80, "  clusterIP: 1\n")]],
      errors: ["s.yaml#1 spec.clusterIP: 1 is not a string"],
      services: [],
    },
    {
      name: "a YAML 1.1 boolean word is a string here",
      files: [["s.yaml", service("a", 80, "  publishNotReadyAddresses: yes\n")]],
      errors: ['s.yaml#1 spec.publishNotReadyAddresses: "yes" is not a boolean (true or false)'],
      services: [],
    },
    {
      name: "kind missing",
      files: [["s.yaml", "apiVersion: v1\nmetadata:\n  name: a\n"]],
      errors: ["s.yaml#1 kind: missing; expected Service, Endpoints, EndpointSlice or Namespace"],
      services: [],
    },
    {
      name: "apiVersion missing",
      files: [["s.yaml", "kind: Service\nmetadata:\n  name: a\n"]],
      errors: ['s.yaml#1 apiVersion: missing; expected "v1" for kind Service'],
      services: [],
    },
    {
      name: "EndpointSlice with an address of the wrong family",
      files: [["e.yaml", `${service("web")}---\n${slice("web-1", "web", "2001:db8::1")}`]],
      errors: ['e.yaml#2 endpoints[0].addresses[0]: "2001:db8::1" is not an IPv4 address'],
      services: ["default/web"],
    },
    {
      name: "Endpoints with an invalid ip",
      files: [[
        "e.yaml",
        `${service("db")}---
apiVersion: v1
kind: Endpoints
metadata: {name: db}
subsets:
  - addresses: [{ip: 198.18.0.999}]
`,
      ]],
      errors: ['e.yaml#2 subsets[0].addresses[0].ip: "198.18.0.999" is not an IP address'],
      services: ["default/db"],
    },
    {
      name: "warnings: other kinds, typos, FQDN slices, slices of unknown services",
      files: [[
        "w.yaml",
        `apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
---
${service("web", 80, "      targetport: 8080\n")}---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-fqdn
  labels: {kubernetes.io/service-name: web}
addressType: FQDN
endpoints: [{addresses: [a.example]}]
---
${slice("webb-1", "webb")}`,
      ]],
      errors: [
        'warning: w.yaml#1 kind: "Deployment" is not a kind svcgate reads (Service, Endpoints, EndpointSlice, Namespace); ignored',
        "warning: w.yaml#2 spec.ports[0].targetport: unknown field, ignored",
        'warning: w.yaml#3 addressType: "FQDN" slices are not used by svcgate; slice ignored',
        "warning: w.yaml#4: EndpointSlice default/webb-1 belongs to Service default/webb, which no manifest defines",
      ],
      services: ["default/web"],
    },
    {
      name: "an EndpointSlice whose port names match no Service port",
      files: [[
        "p.yaml",
        `apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  ports: [{name: http, port: 80, targetPort: 8080}]
---
${slice("web-1", "web")}`,
      ]],
      errors: [
        'warning: p.yaml#2: EndpointSlice default/web-1 gives Service default/web no backends: no port matches a Service port by name and protocol (it has "" 8080/TCP; the Service has "http" 80/TCP)',
      ],
      services: ["default/web"],
    },
    {
      name: "an Endpoints subset with a named targetPort and no ports",
      files: [[
        "p.yaml",
        `apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  ports: [{port: 80, targetPort: http}]
---
apiVersion: v1
kind: List
items:
  - apiVersion: v1
    kind: Endpoints
    metadata: {name: web}
    subsets:
      - addresses: [{ip: 198.18.0.1}]
        ports: [{port: 8080}]
      - addresses: [{ip: 198.18.0.2}]
`,
      ]],
      errors: [
        'warning: p.yaml#2 items[0].subsets[1]: Endpoints default/web gives Service default/web no backends: no port matches a Service port by name and protocol (it has no ports; the Service has "" 80/TCP)',
      ],
      services: ["default/web"],
    },
  ];
  for (const c of cases) {
    await t.step(c.name, () => {
      const files: ManifestText[] = c.files.map(([path, text]) => ({ path, text }));
      const load = loadManifestTexts(files);
      assertEquals(formatLoadErrors(load), c.errors);
      assertEquals(keys(load.services), c.services);
    });
  }
});

Deno.test("loadManifestTexts: a valid set loads with namespaces and origins", () => {
  const load = loadManifestTexts([
    {
      path: "a.yaml",
      text: `apiVersion: v1
kind: Namespace
metadata: {name: staging}
---
${service("web")}---
${slice("web-1", "web")}
---
# only a comment: an empty document
---
`,
    },
    {
      path: "b.json",
      text: JSON.stringify({
        apiVersion: "v1",
        kind: "Endpoints",
        metadata: { name: "web", namespace: "prod" },
        subsets: [{ addresses: [{ ip: "198.18.0.20" }] }],
      }),
    },
    { path: "c.json", text: "  \n" },
    { path: "d.yaml", text: "" },
  ]);
  assertEquals(formatLoadErrors(load), [
    "warning: b.json#1: Endpoints prod/web belongs to Service prod/web, which no manifest defines",
  ]);
  assertEquals(keys(load.services), ["default/web"]);
  assertEquals(load.endpointSets.map((s) => `${s.namespace}/${s.serviceName}/${s.id}`), [
    "default/web/web-1",
    "prod/web/endpoints/web#0",
  ]);
  assertEquals(load.namespaces, ["default", "prod", "staging"]);
  assertEquals(load.objects.map((o) => `${o.id} @ ${o.where}`), [
    "Namespace staging @ a.yaml#1",
    "Service default/web @ a.yaml#2",
    "EndpointSlice default/web-1 @ a.yaml#3",
    "Endpoints prod/web @ b.json#1",
  ]);
  strictEqual(load.objects[1].document, 2);
  strictEqual(load.objects[1].file, "a.yaml");
});

Deno.test("loadManifestTexts: YAML anchors and merge keys work as in kubectl", () => {
  const load = loadManifestTexts([{
    path: "m.yaml",
    text: `apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  ports:
    - &http {name: http, port: 80, targetPort: 8080}
    - <<: *http
      name: alt
      port: 81
`,
  }]);
  assertEquals(load.errors, []);
  assertEquals(load.services[0].ports.map((p) => `${p.name} ${p.port}->${p.targetPort}`), [
    "http 80->8080",
    "alt 81->8080",
  ]);
});

Deno.test("parseManifestFile: a syntax error marks the file broken; object errors do not", () => {
  const broken = parseManifestFile({ path: "a.yaml", text: `${service("a")}---\nkind: [\n` });
  strictEqual(broken.broken, true);
  assertEquals(broken.objects.map((o) => o.id), ["Service default/a"]);
  const invalid = parseManifestFile({
    path: "b.yaml",
    text: `${service("a")}---\n${service("b", 0)}`,
  });
  strictEqual(invalid.broken, false);
  assertEquals(invalid.rejected, ["Service default/b"]);
});

Deno.test("keepLastGood: a bad edit keeps what was serving", async (t) => {
  const good = parseManifestFile({
    path: "a.yaml",
    text: `${service("a")}---\n${service("b")}---\n${service("c")}`,
  });
  await t.step("a broken file keeps every object of the last good version", () => {
    const next = parseManifestFile({ path: "a.yaml", text: `${service("a", 81)}---\nkind: [\n` });
    const merged = keepLastGood(good, next);
    strictEqual(merged.objects, good.objects);
    assertEquals(merged.kept, ["Service default/a", "Service default/b", "Service default/c"]);
    assertEquals(formatLoadErrors(merged), [
      "a.yaml#2: cannot parse YAML at line 10, column 1: Flow sequence in block collection must be sufficiently indented and end with a ]",
      "warning: a.yaml: serving the last good version of this file (3 objects)",
    ]);
  });
  await t.step("an object that became invalid keeps its last good version", () => {
    const next = parseManifestFile({
      path: "a.yaml",
      text: `${service("a", 8080)}---\n${service("b", 70000)}`,
    });
    const merged = keepLastGood(good, next);
    assertEquals(
      merged.objects.map((o) =>
        `${o.id} ${o.parsed.kind === "Service" && o.parsed.service.ports[0].port}`
      ),
      [
        "Service default/a 8080",
        "Service default/b 80",
      ],
    );
    assertEquals(merged.kept, ["Service default/b"]);
    assertEquals(formatLoadErrors(merged), [
      "a.yaml#2 spec.ports[0].port: 70000 is not a port (1-65535)",
      "warning: a.yaml#2: serving the last good version of Service default/b",
    ]);
  });
  await t.step("unchanged objects keep their identity; removed ones go", () => {
    const next = parseManifestFile({
      path: "a.yaml",
      text: `${service("a")}---\n${service("c", 90)}`,
    });
    const merged = keepLastGood(good, next);
    strictEqual(merged.objects[0], good.objects[0]);
    strictEqual(merged.objects[1] === good.objects[2], false);
    assertEquals(merged.objects.map((o) => o.id), ["Service default/a", "Service default/c"]);
    assertEquals(merged.kept, []);
  });
  await t.step("an object that moved to another document is a new object", () => {
    const next = parseManifestFile({ path: "a.yaml", text: `${service("b")}---\n${service("a")}` });
    const merged = keepLastGood(good, next);
    strictEqual(merged.objects[0] === good.objects[1], false);
    assertEquals(merged.objects.map((o) => o.where), ["a.yaml#1", "a.yaml#2"]);
  });
  await t.step("without a last good version the new parse stands", () => {
    const next = parseManifestFile({ path: "a.yaml", text: "kind: [\n" });
    strictEqual(keepLastGood(undefined, next), next);
  });
});

Deno.test("findDeepNesting: flow nesting past the limit is found with its position; quotes and comments are skipped", () => {
  const cases: [string, number, { line: number; column: number } | null][] = [
    ["a: [1, [2, [3]]]", 3, null],
    ["a: [1, [2, [3, [4]]]]", 3, { line: 1, column: 16 }],
    ['a: "[[[[["\nb: [[1]]', 2, null],
    ["a: '[[['' [[['\nb: x", 2, null],
    ["a: don't [[[", 2, { line: 1, column: 12 }],
    ["# [[[[[\na: [[1]]", 2, null],
    ['{"a": {"b": "\\"[[[[", "c": [[[]]]}}', 4, { line: 1, column: 30 }],
    ["x:\n  - [\n    [\n      [1]]]", 2, { line: 4, column: 7 }],
  ];
  for (const [text, limit, want] of cases) {
    assertEquals(findDeepNesting(text, limit), want, JSON.stringify(text));
  }
});

Deno.test("parseManifestFile: a file nested past the limit or too deep for the parser is broken alone, named", () => {
  const flow = parseManifestFile({ path: "deep.yaml", text: "[".repeat(100_000) });
  strictEqual(flow.broken, true);
  assertEquals(formatLoadErrors(flow), [
    "deep.yaml#1: cannot parse YAML at line 1, column 101: nested deeper than 100 levels " +
    "(the limit, --manifest-max-depth); the file is not loaded",
  ]);
  // Block nesting has no brackets: 3,000 levels of indentation exhaust the parser's stack.
  const block = Array.from({ length: 3000 }, (_, i) => `${" ".repeat(i)}a${i}:`).join("\n");
  const parsed = parseManifestFile({ path: "block.yaml", text: block });
  strictEqual(parsed.broken, true);
  strictEqual(parsed.objects.length, 0);
  strictEqual(parsed.errors.length, 1);
  strictEqual(parsed.errors[0].where, "block.yaml#1");
});
