/**
 * Hostile manifest files, as probes found them, for the end-to-end tests and the benchmark: each
 * is written into a folder by a rename (as editors do) and must be rejected alone, naming itself.
 * @module
 */

/** One hostile file. */
export interface HostileFile {
  /** File name in the manifest folder. */
  readonly name: string;
  readonly label: string;
  /** Heavy to read or parse: the DNS benchmark drops these in. */
  readonly bench: boolean;
  /** Text the daemon's log line about the file contains (besides the path). */
  readonly reason: RegExp;
  /** Writes the file into `dir`. */
  write(dir: string): Promise<void>;
}

async function byRename(dir: string, name: string, data: string | Uint8Array): Promise<void> {
  const tmp = `${dir}/.${name}.tmp`;
  if (typeof data === "string") await Deno.writeTextFile(tmp, data);
  else await Deno.writeFile(tmp, data);
  await Deno.rename(tmp, `${dir}/${name}`);
}

function file(
  name: string,
  label: string,
  bench: boolean,
  reason: RegExp,
  make: () => string | Uint8Array,
): HostileFile {
  return { name, label, bench, reason, write: (dir) => byRename(dir, name, make()) };
}

/** The YAML "billion laughs": 9 levels of 9 aliases each, 387 million strings if expanded. */
export function aliasBomb(): string {
  const lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'];
  const names = "abcdefghi";
  for (let i = 1; i < names.length; i++) {
    const prev = `*${names[i - 1]}`;
    lines.push(`${names[i]}: &${names[i]} [${Array(9).fill(prev).join(",")}]`);
  }
  return lines.join("\n") + "\n";
}

/** `bytes` of printable text in lines of 64 characters: valid UTF-8, one long YAML scalar. */
export function junkText(bytes: number): Uint8Array {
  const out = new Uint8Array(bytes);
  let seed = 12345;
  for (let i = 0; i < bytes; i++) {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    out[i] = i % 65 === 64 ? 10 : 97 + (seed >> 16) % 26;
  }
  return out;
}

/** A Service with `n` ports. */
export function serviceWithPorts(n: number): string {
  let s = "apiVersion: v1\nkind: Service\nmetadata:\n  name: many-ports\nspec:\n" +
    "  clusterIP: 198.19.0.50\n  ports:\n";
  for (let i = 0; i < n; i++) s += `  - name: p${i}\n    port: ${1 + i}\n`;
  return s;
}

/** An EndpointSlice with `n` endpoints. */
export function sliceWithEndpoints(n: number): string {
  let s = "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: huge\n" +
    "  labels: { kubernetes.io/service-name: many-ports }\naddressType: IPv4\n" +
    "ports: [{ name: p0, port: 1 }]\nendpoints:\n";
  for (let i = 0; i < n; i++) s += `  - addresses: ["198.18.${(i >> 8) & 255}.${i & 255}"]\n`;
  return s;
}

/** `n` documents of a kind svcgate does not read. */
export function wrongKindDocuments(n: number): string {
  const parts: string[] = [];
  for (let i = 0; i < n; i++) {
    parts.push(`apiVersion: apps/v1\nkind: Deployment\nmetadata: { name: d${i} }\n`);
  }
  return parts.join("---\n");
}

/** Every hostile file of issue 21's probes. */
export function hostileFiles(): HostileFile[] {
  const deep = () => "[".repeat(100_000) + "]".repeat(100_000);
  return [
    file("deep.yaml", "deep YAML (100,000 [)", false, /nested deeper/, deep),
    file("deep.json", "deep JSON (100,000 [)", false, /nested deeper/, deep),
    file("alias-bomb.yaml", "alias bomb (9 x 9 aliases)", false, /alias/i, aliasBomb),
    file("junk.yaml", "50 MB of text", true, /limit|too large|bigger/, () => junkText(50e6)),
    file("latin1.yaml", "not UTF-8", false, /not UTF-8/, () => new Uint8Array([0x6b, 0x3a, 0xe9])),
    {
      name: "loop.yaml",
      label: "symlink loop",
      bench: false,
      reason: /cannot read/,
      write: (dir) => Deno.symlink(`${dir}/loop.yaml`, `${dir}/loop.yaml`),
    },
    file("docs.yaml", "100,000 documents", true, /documents/, () => wrongKindDocuments(100_000)),
    // 10,000 ports are ~180,000 YAML tokens: the token bound refuses the file before the parse.
    file("ports.yaml", "Service with 10,000 ports", true, /tokens/, () => serviceWithPorts(10_000)),
    file(
      "slice.yaml",
      "EndpointSlice with 100,000 endpoints",
      true,
      /tokens/,
      () => sliceWithEndpoints(100_000),
    ),
  ];
}
