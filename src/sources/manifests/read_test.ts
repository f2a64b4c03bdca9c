import { deepStrictEqual as assertEquals, rejects, strictEqual } from "node:assert/strict";
import { ModelStore } from "../../model/store.ts";
import { formatLoadErrors } from "./load.ts";
import { listManifestFiles, readManifestBytes, readManifestFile, readManifests } from "./read.ts";
import { DEFAULT_MANIFEST_LIMITS } from "./parse_file.ts";
import { junkText } from "../../../tests/support/hostile_manifests.ts";
import { withTempDir } from "../../../tests/support/temp_dir.ts";

const FIXTURES = decodeURIComponent(
  new URL("../../../tests/support/manifests", import.meta.url).pathname,
);

/** Error lines with the fixture folder removed, so expectations do not depend on the checkout. */
function relative(lines: string[]): string[] {
  return lines.map((l) => l.replaceAll(`${FIXTURES}/`, ""));
}

Deno.test("listManifestFiles: recursive, sorted, manifest extensions only, hidden skipped", async () => {
  const files = await listManifestFiles(`${FIXTURES}/valid`);
  assertEquals(files.map((f) => f.path.slice(FIXTURES.length + 1)), [
    "valid/endpoints/db.json",
    "valid/endpoints/web-slices.yaml",
    "valid/namespaces.yml",
    "valid/services.yaml",
  ]);
  strictEqual(files.every((f) => f.mtimeMs !== null && f.size > 0), true);
});

Deno.test("readManifests: the valid fixtures load into a model with resolved backends", async () => {
  const load = await readManifests(`${FIXTURES}/valid`);
  assertEquals(formatLoadErrors(load), []);
  assertEquals(load.services.map((s) => `${s.namespace}/${s.name}`), [
    "prod/api",
    "default/web",
    "default/db",
    "default/dns",
    "default/docs",
    "default/dual",
  ]);
  assertEquals(load.namespaces, ["default", "prod"]);
  assertEquals(relative(load.objects.map((o) => `${o.id} @ ${o.where}`)), [
    "Endpoints default/db @ valid/endpoints/db.json#1",
    "EndpointSlice default/web-a @ valid/endpoints/web-slices.yaml#1",
    "EndpointSlice default/web-b @ valid/endpoints/web-slices.yaml#2",
    "Namespace prod @ valid/namespaces.yml#1",
    "Service prod/api @ valid/namespaces.yml#2",
    "Endpoints prod/api @ valid/namespaces.yml#2",
    "Service default/web @ valid/services.yaml#1",
    "Service default/db @ valid/services.yaml#2",
    "Service default/dns @ valid/services.yaml#3",
    "Service default/docs @ valid/services.yaml#4",
    "Service default/dual @ valid/services.yaml#5",
  ]);

  const store = new ModelStore();
  store.replaceAll(load);
  const { snapshot } = store.commit();
  const backends = (key: string) =>
    snapshot.services.get(key)!.ports.map((p) =>
      `${p.servicePort.port}/${p.servicePort.protocol}: ` +
      p.backends.map((b) => `${b.address}:${b.port}${b.ready ? "" : "(not ready)"}`).join(" ")
    );
  // The named targetPort "http-alt" is carried by the slices' port named like the service port.
  assertEquals(backends("default/web"), [
    "80/TCP: 198.18.0.101:8080 198.18.0.102:8080(not ready) 198.18.0.103:8080",
  ]);
  // Endpoints without ports: the numeric targetPort applies, both families.
  assertEquals(backends("prod/api"), ["443/TCP: 198.18.0.121:8443 2001:db8::a1:8443"]);
  const db = snapshot.services.get("default/db")!;
  assertEquals(db.service.headless, true);
  assertEquals(db.endpoints.map((e) => `${e.hostname} ${e.address} ${e.ready}`), [
    "db-0 198.18.0.111 true",
    "db-1 198.18.0.112 true",
    "db-2 198.18.0.113 false",
  ]);
  assertEquals(snapshot.services.get("default/docs")!.service.externalName, "docs.example.org");
  assertEquals(snapshot.services.get("default/dual")!.service.clusterIPs, [
    "198.19.0.20",
    "2001:db8:ffff::20",
  ]);
  assertEquals(snapshot.services.get("default/dual")!.service.sessionAffinityTimeoutSeconds, 600);
  assertEquals([...snapshot.namespaces].sort(), ["default", "prod"]);
});

Deno.test("readManifests: the invalid fixtures report every problem and load the rest", async () => {
  const load = await readManifests(`${FIXTURES}/invalid`);
  assertEquals(relative(formatLoadErrors(load)), [
    "invalid/bad-objects.yaml#2 spec.ports[1].port: 70000 is not a port (1-65535)",
    'invalid/bad-objects.yaml#3 metadata.name: "Bad_Name" is not a valid Service name (a DNS-1035 label: a-z, 0-9 and "-", starting with a letter, ending with a letter or digit, at most 63 characters)',
    'warning: invalid/bad-objects.yaml#4 kind: "Deployment" is not a kind svcgate reads (Service, Endpoints, EndpointSlice, Namespace); ignored',
    'invalid/bad-objects.yaml#5 endpoints[0].addresses[0]: "2001:db8::1" is not an IPv4 address',
    "invalid/duplicate.yml#1: Service default/ok is already defined at invalid/bad-objects.yaml#1; this copy is ignored",
  ]);
  assertEquals(load.services.map((s) => `${s.name}:${s.ports[0].port}`), ["ok:80"]);
});

Deno.test("readManifests: a single file path is read whatever its extension", async () => {
  await withTempDir("svcgate-manifests-", async (dir) => {
    await Deno.writeTextFile(
      `${dir}/svc.conf`,
      "apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec: {ports: [{port: 1}]}\n",
    );
    const load = await readManifests(`${dir}/svc.conf`);
    assertEquals(load.services.map((s) => s.name), ["a"]);
    assertEquals(load.objects[0].where, `${dir}/svc.conf#1`);
  });
});

Deno.test("readManifests: a missing path is a clear error", async () => {
  await withTempDir("svcgate-manifests-", async (dir) => {
    await rejects(
      readManifests(`${dir}/nope`),
      new Error(`Cannot read manifests "${dir}/nope": no such file or directory`),
    );
  });
});

Deno.test("readManifestFile: unreadable and non-UTF-8 files are broken, with the reason", async () => {
  await withTempDir("svcgate-manifests-", async (dir) => {
    await Deno.symlink(`${dir}/missing.yaml`, `${dir}/dangling.yaml`);
    await Deno.writeFile(`${dir}/latin1.yaml`, new Uint8Array([0x6b, 0x3a, 0x20, 0xe9, 0x0a]));
    const files = await listManifestFiles(dir);
    assertEquals(files.map((f) => [f.path.slice(dir.length + 1), f.mtimeMs === null]), [
      ["dangling.yaml", true],
      ["latin1.yaml", false],
    ]);
    const dangling = await readManifestFile(`${dir}/dangling.yaml`);
    strictEqual(dangling.broken, true);
    assertEquals(formatLoadErrors(dangling), [
      `${dir}/dangling.yaml: cannot read the file: no such file or directory`,
    ]);
    assertEquals(formatLoadErrors(await readManifestFile(`${dir}/latin1.yaml`)), [
      `${dir}/latin1.yaml: cannot read the file: it is not UTF-8 text`,
    ]);
  });
});

Deno.test("listManifestFiles: follows symlinked folders once, skips ConfigMap ..data folders", async () => {
  await withTempDir("svcgate-manifests-", async (dir) => {
    // The layout of a ConfigMap volume: visible symlinks into a hidden, atomically swapped folder.
    await Deno.mkdir(`${dir}/..2024_01_01`);
    await Deno.writeTextFile(`${dir}/..2024_01_01/web.yaml`, "");
    await Deno.symlink(`${dir}/..2024_01_01`, `${dir}/..data`);
    await Deno.symlink(`${dir}/..data/web.yaml`, `${dir}/web.yaml`);
    // A loop must not recurse forever.
    await Deno.mkdir(`${dir}/sub`);
    await Deno.writeTextFile(`${dir}/sub/x.yml`, "");
    await Deno.symlink(dir, `${dir}/sub/loop`);
    const files = await listManifestFiles(dir);
    assertEquals(files.map((f) => f.path.slice(dir.length + 1)), ["sub/x.yml", "web.yaml"]);
  });
});

Deno.test("readManifestBytes: a 50 MB file is refused by its size, before it is read", async () => {
  await withTempDir("svcgate-manifests-", async (dir) => {
    const path = `${dir}/junk.yaml`;
    await Deno.writeFile(path, junkText(50e6));
    assertEquals(await readManifestBytes(path, DEFAULT_MANIFEST_LIMITS.fileBytes), {
      error: "it is 50000000 bytes, more than the limit of 16777216 (--manifest-max-file-size)",
    });
    assertEquals(formatLoadErrors(await readManifestFile(path)), [
      `${path}: cannot read the file: it is 50000000 bytes, more than the limit of 16777216 ` +
      "(--manifest-max-file-size)",
    ]);
    // At the limit, the whole file is read.
    await Deno.writeTextFile(path, "0123456789");
    const r = await readManifestBytes(path, 10);
    strictEqual("bytes" in r && new TextDecoder().decode(r.bytes), "0123456789");
    strictEqual("error" in await readManifestBytes(path, 9), true);
  });
});
