import { deepStrictEqual as assertEquals, strictEqual } from "node:assert/strict";
import { formatLoadErrors } from "./load.ts";
import { listManifestFiles } from "./read.ts";
import {
  decodeManifestBytesSliced,
  DEFAULT_MANIFEST_LIMITS,
  findDocumentPastLimit,
  type ManifestLimits,
  parseManifestFile,
  parseManifestFileSliced,
} from "./parse_file.ts";
import {
  aliasBomb,
  serviceWithPorts,
  sliceWithEndpoints,
  wrongKindDocuments,
} from "../../../tests/support/hostile_manifests.ts";

const FIXTURES = new URL("../../../tests/support/manifests", import.meta.url).pathname;

function limits(fields: Partial<ManifestLimits>): ManifestLimits {
  return { ...DEFAULT_MANIFEST_LIMITS, ...fields };
}

function namespaceWithAliases(n: number): string {
  return "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: &n prod\n  annotations:\n" +
    Array.from({ length: n }, (_, i) => `    a${i}: *n\n`).join("");
}

Deno.test("parseManifestFile: aliases are bounded (the yaml library's maxAliasCount, 100)", () => {
  const bomb = parseManifestFile({ path: "bomb.yaml", text: aliasBomb() });
  strictEqual(bomb.broken, true);
  assertEquals(formatLoadErrors(bomb), [
    "bomb.yaml#1: cannot parse YAML at line 1, column 1: Excessive alias count indicates a " +
    "resource exhaustion attack",
  ]);
  // The bound counts what aliases resolve: 99 uses of one anchor load, 100 do not.
  strictEqual(parseManifestFile({ path: "a.yaml", text: namespaceWithAliases(99) }).broken, false);
  strictEqual(parseManifestFile({ path: "a.yaml", text: namespaceWithAliases(100) }).broken, true);
});

Deno.test("findDocumentPastLimit: counts --- lines, and content before the first one", () => {
  const cases: [string, number, { document: number; line: number } | null][] = [
    ["a: 1\n---\nb: 2\n---\nc: 3\n", 3, null],
    ["a: 1\n---\nb: 2\n---\nc: 3\n", 2, { document: 3, line: 4 }],
    ["---\na: 1\n---\nb: 2\n", 1, { document: 2, line: 3 }],
    ["# comment\n%YAML 1.2\n---\na: 1\n---\nb: 2\n", 2, null],
    ["--- {a: 1}\n--- |\n  text\n---\t\n", 2, { document: 3, line: 4 }],
    ["a: 1\n----\nb: ---\n---x\n", 1, null],
    ["a: 1\r\n---\r\nb: 2\r\n", 1, { document: 2, line: 2 }],
  ];
  for (const [text, limit, want] of cases) {
    assertEquals(findDocumentPastLimit(text, limit), want, JSON.stringify(text));
  }
});

Deno.test("parseManifestFile: each limit rejects with the file, the document and the limit", async (t) => {
  const cases: {
    name: string;
    path: string;
    text: string;
    limits: ManifestLimits;
    broken: boolean;
    errors: string[];
  }[] = [
    {
      name: "100,000 documents: refused by a scan, no document parsed",
      path: "docs.yaml",
      text: wrongKindDocuments(100_000),
      limits: DEFAULT_MANIFEST_LIMITS,
      broken: true,
      errors: [
        "docs.yaml#50001: more than 50000 documents (the limit, --manifest-max-documents; each " +
        "item of a List counts); the file is not loaded",
      ],
    },
    {
      name: "documents at the limit load",
      path: "docs.yaml",
      text: wrongKindDocuments(3),
      limits: limits({ documents: 3 }),
      broken: false,
      errors: [1, 2, 3].map((d) =>
        `warning: docs.yaml#${d} kind: "Deployment" is not a kind svcgate reads (Service, ` +
        "Endpoints, EndpointSlice, Namespace); ignored"
      ),
    },
    {
      name: "a List's items count as documents",
      path: "list.json",
      text: JSON.stringify({
        apiVersion: "v1",
        kind: "List",
        items: [1, 2, 3, 4].map((i) => ({
          kind: "Namespace",
          apiVersion: "v1",
          metadata: { name: `n${i}` },
        })),
      }),
      limits: limits({ documents: 3 }),
      broken: true,
      errors: [
        "list.json#1: more than 3 documents (the limit, --manifest-max-documents; each item of a " +
        "List counts); the file is not loaded",
      ],
    },
    {
      name: "nesting, from the flag",
      path: "n.yaml",
      text: "a: [[[[1]]]]\n",
      limits: limits({ depth: 3 }),
      broken: true,
      errors: [
        "n.yaml#1: cannot parse YAML at line 1, column 7: nested deeper than 3 levels (the limit, " +
        "--manifest-max-depth); the file is not loaded",
      ],
    },
    {
      name: "a Service of 2,000 ports is rejected alone; the file loads",
      path: "ports.yaml",
      text: serviceWithPorts(2000),
      limits: DEFAULT_MANIFEST_LIMITS,
      broken: false,
      errors: [
        "ports.yaml#1 spec.ports: 2000 ports, more than the limit of 1000 (--max-service-ports); " +
        "the object is rejected",
      ],
    },
    {
      name: "a document of more tokens than the limit: refused by a lexer pass, before the parse",
      path: "slice.yaml",
      text: `${wrongKindDocuments(2)}---\n${sliceWithEndpoints(100_000)}`,
      limits: DEFAULT_MANIFEST_LIMITS,
      broken: true,
      errors: [
        "slice.yaml#3: more than 150000 YAML tokens in one document (the limit, " +
        "--manifest-max-document-tokens); the file is not loaded",
      ],
    },
    {
      name: "a JSON file of more tokens than the limit",
      path: "big.json",
      text: JSON.stringify({
        kind: "Namespace",
        apiVersion: "v1",
        metadata: { name: "n" },
        x: [1, 2, 3],
      }),
      limits: limits({ documentTokens: 10 }),
      broken: true,
      errors: [
        "big.json#1: more than 10 JSON tokens in one document (the limit, " +
        "--manifest-max-document-tokens); the file is not loaded",
      ],
    },
    {
      name: "a slice of 5,000 endpoints, with the object limits of the file's limits",
      path: "slice.yaml",
      text: sliceWithEndpoints(5000),
      limits: DEFAULT_MANIFEST_LIMITS,
      broken: false,
      errors: [
        "slice.yaml#1 endpoints: 5000 endpoints, more than the limit of 1000 " +
        "(--max-endpoints-per-slice); the object is rejected",
      ],
    },
  ];
  for (const c of cases) {
    await t.step(c.name, () => {
      const file = parseManifestFile({ path: c.path, text: c.text }, c.limits);
      strictEqual(file.broken, c.broken);
      assertEquals(formatLoadErrors(file), c.errors);
      if (c.broken && c.errors.some((e) => e.includes("documents"))) {
        strictEqual(file.objects.length, 0, "a file past the documents limit is not loaded");
      }
    });
  }
});

Deno.test("parseManifestFileSliced: the same result as parseManifestFile, in steps", async () => {
  const files = [
    ...await listManifestFiles(`${FIXTURES}/valid`),
    ...await listManifestFiles(`${FIXTURES}/invalid`),
  ];
  for (const { path } of files) {
    const text = await Deno.readTextFile(path);
    const sliced = await parseManifestFileSliced(
      { path, text },
      DEFAULT_MANIFEST_LIMITS,
      () => Promise.resolve(),
    );
    assertEquals(sliced, parseManifestFile({ path, text }), path);
  }
  // 5,000 documents pause many times; each step is bounded by lexemes, objects or characters.
  let pauses = 0;
  const text = wrongKindDocuments(5000);
  const file = await parseManifestFileSliced(
    { path: "d.yaml", text },
    DEFAULT_MANIFEST_LIMITS,
    () => {
      pauses++;
      return Promise.resolve();
    },
  );
  strictEqual(file.errors.length, 5000);
  strictEqual(pauses > 50, true, `${pauses} pauses`);
});

Deno.test("decodeManifestBytesSliced: UTF-8 in steps, a character split between steps whole", async () => {
  const step = 1 << 18;
  // "é" (2 bytes) straddles the first step's end; the text is otherwise ASCII.
  const text = "a".repeat(step - 1) + "é" + "b".repeat(10);
  let pauses = 0;
  const pause = () => {
    pauses++;
    return Promise.resolve();
  };
  assertEquals(await decodeManifestBytesSliced(new TextEncoder().encode(text), pause), { text });
  strictEqual(pauses, 2);
  const bad = new Uint8Array([0x6b, 0x3a, 0xe9]);
  assertEquals(await decodeManifestBytesSliced(bad, pause), { error: "it is not UTF-8 text" });
});
