import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { loadKubeConfig } from "./config.ts";
import { withTempDir } from "../../../tests/support/temp_dir.ts";

function errorOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    return (e as Error).message;
  }
  return "";
}

function kubeconfig(
  server: string,
  user: Record<string, unknown>,
  cluster: Record<string, unknown> = {},
) {
  return JSON.stringify({
    apiVersion: "v1",
    kind: "Config",
    clusters: [{ name: "c", cluster: { server, ...cluster } }],
    users: [{ name: "u", user }],
    contexts: [{ name: "ctx", context: { cluster: "c", user: "u" } }],
    "current-context": "ctx",
  });
}

const noEnv = () => undefined;

Deno.test("kubeconfig file: server, auth kind, TLS verification and the client-node path", async () => {
  await withTempDir("svcgate-kubeconfig-", async (dir) => {
    const table: [Record<string, unknown>, Record<string, unknown>, string, boolean, boolean][] = [
      [{ token: "t" }, {}, "token", true, false],
      [
        { "client-certificate-data": "eA==", "client-key-data": "eA==" },
        {},
        "client-certificate",
        true,
        false,
      ],
      [
        { exec: { command: "true", apiVersion: "client.authentication.k8s.io/v1" } },
        {},
        "exec",
        true,
        true,
      ],
      [{}, { "insecure-skip-tls-verify": true }, "none", false, false],
      [{}, { "proxy-url": "http://198.18.0.2:3128" }, "none", true, true],
    ];
    for (const [user, cluster, auth, verify, viaClientNode] of table) {
      const path = `${dir}/kc-${crypto.randomUUID()}`;
      await Deno.writeTextFile(path, kubeconfig("https://198.18.0.1:6443", user, cluster));
      const conn = loadKubeConfig({ kubeconfigPath: path, env: noEnv });
      assertEquals(
        [conn.origin, conn.server, conn.auth, conn.verifyTls, conn.viaClientNode],
        ["kubeconfig", "https://198.18.0.1:6443", auth, verify, viaClientNode],
        JSON.stringify([user, cluster]),
      );
    }
  });
});

Deno.test("--kubeconfig wins over KUBECONFIG; KUBECONFIG may list several files", async () => {
  await withTempDir("svcgate-kubeconfig-", async (dir) => {
    await Deno.writeTextFile(`${dir}/a`, kubeconfig("https://198.18.0.1:6443", { token: "a" }));
    await Deno.writeTextFile(
      `${dir}/b`,
      JSON.stringify({
        clusters: [{ name: "other", cluster: { server: "https://198.18.0.2:6443" } }],
        users: [],
        contexts: [],
      }),
    );
    const env = (n: string) => n === "KUBECONFIG" ? `${dir}/a:${dir}/b` : undefined;
    const merged = loadKubeConfig({ env });
    assertEquals([merged.path, merged.server], [`${dir}/a:${dir}/b`, "https://198.18.0.1:6443"]);
    assertEquals(merged.config.clusters.map((c) => c.name), ["c", "other"]);
    const flag = loadKubeConfig({ kubeconfigPath: `${dir}/a`, env: () => "/nonexistent" });
    assertEquals(flag.path, `${dir}/a`);
  });
});

Deno.test("--master overrides the kubeconfig's server, or stands alone", async () => {
  await withTempDir("svcgate-kubeconfig-", async (dir) => {
    await Deno.writeTextFile(`${dir}/a`, kubeconfig("https://198.18.0.1:6443", { token: "a" }));
    const over = loadKubeConfig({
      kubeconfigPath: `${dir}/a`,
      master: "https://198.18.0.9:443/",
      env: noEnv,
    });
    assertEquals([over.server, over.auth], ["https://198.18.0.9:443", "token"]);
    const alone = loadKubeConfig({ master: "https://198.18.0.9:6443", env: noEnv });
    assertEquals([alone.origin, alone.server, alone.auth], [
      "master",
      "https://198.18.0.9:6443",
      "none",
    ]);
  });
});

Deno.test("in-cluster: service host/port, token file and CA from the service-account folder", async () => {
  await withTempDir("svcgate-kubeconfig-", async (dir) => {
    await Deno.writeTextFile(`${dir}/token`, "tok");
    await Deno.writeTextFile(`${dir}/ca.crt`, "not checked here");
    const env = (n: string) =>
      ({ KUBERNETES_SERVICE_HOST: "2001:db8::1", KUBERNETES_SERVICE_PORT: "443" })[n];
    const conn = loadKubeConfig({ env, serviceAccountDir: dir });
    assertEquals(
      [conn.origin, conn.server, conn.auth, conn.verifyTls],
      ["in-cluster", "https://[2001:db8::1]:443", "token-file", true],
    );
    assertEquals(conn.config.getCurrentCluster()?.caFile, `${dir}/ca.crt`);
  });
});

Deno.test("failures say what was attempted and quote the value", async () => {
  await withTempDir("svcgate-kubeconfig-", async (dir) => {
    await Deno.writeTextFile(`${dir}/http`, kubeconfig("http://127.0.0.1:8080", { token: "t" }));
    const table: [() => unknown, string][] = [
      [
        () => loadKubeConfig({ kubeconfigPath: `${dir}/missing`, env: noEnv }),
        `Cannot load --kubeconfig "${dir}/missing": `,
      ],
      [
        () => loadKubeConfig({ env: noEnv }),
        "Cannot connect to Kubernetes: no --kubeconfig, KUBECONFIG is unset",
      ],
      [
        () => loadKubeConfig({ kubeconfigPath: `${dir}/http`, env: noEnv }),
        'Cannot use API server "http://127.0.0.1:8080": plain HTTP is refused unless',
      ],
      [
        () => loadKubeConfig({ master: "ftp://x", env: noEnv }),
        'Cannot use --master "ftp://x": the scheme must be https or http',
      ],
      [
        () =>
          loadKubeConfig({
            env: (n) =>
              ({ KUBERNETES_SERVICE_HOST: "198.18.0.1", KUBERNETES_SERVICE_PORT: "443" })[n],
            serviceAccountDir: `${dir}/sa`,
          }),
        `Cannot use the in-cluster service account (KUBERNETES_SERVICE_HOST="198.18.0.1"): "${dir}/sa/token" does not exist`,
      ],
    ];
    for (const [fn, want] of table) {
      const got = errorOf(fn);
      if (!got.startsWith(want)) {
        throw new Error(
          `expected an error starting ${JSON.stringify(want)}, got ${JSON.stringify(got)}`,
        );
      }
    }
  });
});

Deno.test("relative certificate paths are resolved against the kubeconfig's folder", async () => {
  await withTempDir("svcgate-kubeconfig-", async (dir) => {
    await Deno.mkdir(`${dir}/sub`);
    await Deno.writeTextFile(`${dir}/sub/ca.crt`, "CA");
    await Deno.writeTextFile(`${dir}/sub/token`, "from-file");
    await Deno.writeTextFile(
      `${dir}/sub/kc.yaml`,
      [
        "apiVersion: v1",
        "clusters:",
        "- name: c",
        "  cluster:",
        "    server: https://198.18.0.1:6443/",
        "    certificate-authority: ca.crt",
        "users:",
        "- name: u",
        "  user:",
        "    client-certificate: cert.pem",
        "    client-key: /abs/key.pem",
        `    token-file: ${dir}/sub/token`,
        "contexts:",
        "- name: ctx",
        "  context: {cluster: c, user: u}",
        "current-context: ctx",
      ].join("\n"),
    );
    const conn = loadKubeConfig({ kubeconfigPath: `${dir}/sub/kc.yaml`, env: noEnv });
    const user = conn.config.getCurrentUser();
    assertEquals(
      [conn.server, conn.config.getCurrentCluster()?.caFile, user?.certFile, user?.keyFile],
      ["https://198.18.0.1:6443", `${dir}/sub/ca.crt`, `${dir}/sub/cert.pem`, "/abs/key.pem"],
    );
    assertEquals([conn.auth, user?.token], ["token", "from-file"]);
  });
});

Deno.test("several KUBECONFIG files naming the same cluster are refused, as client-node does", async () => {
  await withTempDir("svcgate-kubeconfig-", async (dir) => {
    await Deno.writeTextFile(`${dir}/a`, kubeconfig("https://198.18.0.1:6443", { token: "a" }));
    await Deno.writeTextFile(`${dir}/b`, kubeconfig("https://198.18.0.2:6443", { token: "b" }));
    const env = (n: string) => n === "KUBECONFIG" ? `${dir}/a:${dir}/b` : undefined;
    assertEquals(errorOf(() => loadKubeConfig({ env })), "Duplicate cluster: c");
  });
});
