import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { Buffer } from "node:buffer";
import type { KubeConfig } from "@kubernetes/client-node";
import { type KubeClientConfig, needsPlugins } from "./kube_access.ts";
import { testAccess } from "../../../tests/support/kube_access.ts";

// client-node's KubeConfig must satisfy the interface the source hands to Watch and listRaw.
type Satisfies<T extends KubeClientConfig> = T;
export type KubeConfigIsAClientConfig = Satisfies<KubeConfig>;

/** The options the agent was built with (node's Agent keeps them as `options`). */
function agentOptions(agent: unknown): Record<string, unknown> {
  return (agent as { options: Record<string, unknown> }).options;
}

const b64 = (s: string) => Buffer.from(s).toString("base64");

Deno.test("a bearer token becomes the Authorization header; the agent is reused", async () => {
  const a = testAccess({ token: "secret" });
  const one = await a.applyToFetchOptions({});
  assertEquals(one.headers, { Authorization: "Bearer secret" });
  const two = await a.applyToFetchOptions({});
  assert(one.agent === two.agent, "one agent for every request");
  assertEquals(agentOptions(one.agent).keepAlive, true, "keep-alive");
  assertEquals(a.getCurrentUser()?.name, "u");
  assertEquals(a.getCurrentCluster()?.server, "https://198.18.0.1:6443");
  a.close();
});

Deno.test("a token file is read, and re-read once a minute has passed", async () => {
  const dir = await Deno.makeTempDir({ prefix: "svcgate-access-" });
  try {
    const file = `${dir}/token`;
    await Deno.writeTextFile(file, "first");
    const a = testAccess({ authProvider: { name: "tokenFile", config: { tokenFile: file } } });
    let now = 1_000_000;
    a.now = () => now;
    assertEquals((await a.applyToFetchOptions({})).headers.Authorization, "Bearer first");
    await Deno.writeTextFile(file, "second");
    now += 30_000;
    assertEquals(
      (await a.applyToFetchOptions({})).headers.Authorization,
      "Bearer first",
      "cached within a minute",
    );
    now += 31_000;
    assertEquals((await a.applyToFetchOptions({})).headers.Authorization, "Bearer second");
    // A failed re-read keeps the last token.
    await Deno.remove(file);
    now += 61_000;
    assertEquals((await a.applyToFetchOptions({})).headers.Authorization, "Bearer second");
    // kubeconfig `token-file` (loaded into token, with the file remembered) is re-read too.
    await Deno.writeTextFile(file, "third");
    const b = testAccess({ token: "loaded", tokenFile: file });
    assertEquals((await b.applyToFetchOptions({})).headers.Authorization, "Bearer third");
    a.close();
    b.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("client certificate, key and CA (data or files) are on the agent", async () => {
  const dir = await Deno.makeTempDir({ prefix: "svcgate-access-" });
  try {
    const data = testAccess(
      { certData: b64("CERT"), keyData: b64("KEY") },
      { caData: b64("CA"), tlsServerName: "kubernetes.default" },
    );
    const d = agentOptions((await data.applyToFetchOptions({})).agent);
    assertEquals(
      [String(d.cert), String(d.key), String(d.ca), d.servername, d.rejectUnauthorized],
      ["CERT", "KEY", "CA", "kubernetes.default", undefined],
    );
    await Deno.writeTextFile(`${dir}/cert`, "FCERT");
    await Deno.writeTextFile(`${dir}/key`, "FKEY");
    await Deno.writeTextFile(`${dir}/ca`, "FCA");
    const files = testAccess({ certFile: `${dir}/cert`, keyFile: `${dir}/key` }, {
      caFile: `${dir}/ca`,
    });
    const first = (await files.applyToFetchOptions({})).agent;
    const f = agentOptions(first);
    assertEquals([String(f.cert), String(f.key), String(f.ca)], ["FCERT", "FKEY", "FCA"]);
    assertEquals((await files.applyToFetchOptions({})).headers, {}, "no credentials header");
    // Files are re-read per request (as client-node does): a rotated CA gets a new agent.
    await Deno.writeTextFile(`${dir}/ca`, "FCA2");
    const second = (await files.applyToFetchOptions({})).agent;
    assert(second !== first, "new agent for new TLS material");
    assertEquals(String(agentOptions(second).ca), "FCA2");
    data.close();
    files.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("insecure-skip-tls-verify sets rejectUnauthorized false; plain http needs it", async () => {
  const skip = testAccess({ token: "t" }, { skipTLSVerify: true });
  assertEquals(agentOptions((await skip.applyToFetchOptions({})).agent).rejectUnauthorized, false);
  const http = testAccess({}, { server: "http://127.0.0.1:8080", skipTLSVerify: true });
  const agent = (await http.applyToFetchOptions({})).agent;
  assertEquals(agent.constructor.name, "Agent");
  assertEquals((agent as unknown as { protocol: string }).protocol, "http:");
  const refused = testAccess({}, { server: "http://127.0.0.1:8080" });
  let message = "";
  await refused.applyToFetchOptions({}).catch((e) => message = e.message);
  assertEquals(message, "HTTP protocol is not allowed when skipTLSVerify is not set or false");
  skip.close();
  http.close();
});

Deno.test("basic auth replaces a bearer token; impersonation is passed on", async () => {
  const a = testAccess({ username: "admin", password: "pw", token: "t", impersonateUser: "bob" });
  assertEquals((await a.applyToFetchOptions({})).headers, {
    "Impersonate-User": "bob",
    Authorization: `Basic ${b64("admin:pw")}`,
  });
  a.close();
});

Deno.test("exec and plugin auth-providers go through client-node's KubeConfig", () => {
  const usesPlugins = (user: Parameters<typeof testAccess>[0]) => {
    const a = testAccess(user);
    return needsPlugins(a.getCurrentUser(), a.getCurrentCluster());
  };
  assertEquals(usesPlugins({ exec: { command: "true" } }), true);
  assertEquals(usesPlugins({ authProvider: { name: "gcp", config: {} } }), true);
  assertEquals(usesPlugins({ authProvider: { name: "oidc", config: {} } }), true);
  assertEquals(
    usesPlugins({ authProvider: { name: "tokenFile", config: { tokenFile: "/x" } } }),
    false,
  );
  assertEquals(usesPlugins({ token: "t" }), false);
});

Deno.test("an exec user gets its token from client-node's ExecAuth", async () => {
  const credential = JSON.stringify({
    apiVersion: "client.authentication.k8s.io/v1",
    kind: "ExecCredential",
    status: { token: "from-exec" },
  });
  const a = testAccess({
    exec: {
      apiVersion: "client.authentication.k8s.io/v1",
      command: "sh",
      args: ["-c", `echo '${credential}'`],
    },
  }, { caData: b64("CA") });
  const init = await a.applyToFetchOptions({});
  assertEquals(init.headers.authorization, "Bearer from-exec");
  assertEquals(String(agentOptions(init.agent).ca), "CA");
});

Deno.test({
  name: "the Kubernetes source does not import client-node's index (>= 15 MB less heap)",
  // Two subprocesses load client-node; a few seconds.
  async fn() {
    const root = new URL("../../../", import.meta.url);
    const dir = await Deno.makeTempDir({ prefix: "svcgate-lean-" });
    try {
      await Deno.writeTextFile(
        `${dir}/kc.yaml`,
        [
          "apiVersion: v1",
          "kind: Config",
          "clusters:",
          "- name: c",
          "  cluster: {server: 'https://127.0.0.1:6443', certificate-authority-data: 'eA=='}",
          "users: [{name: u, user: {token: t}}]",
          "contexts: [{name: x, context: {cluster: c, user: u}}]",
          "current-context: x",
        ].join("\n"),
      );
      const measure = [
        "for (let i = 0; i < 4; i++) (globalThis as unknown as { gc(): void }).gc();",
        "const m = Deno.memoryUsage();",
        "console.log(JSON.stringify({ heapUsed: m.heapUsed, rss: m.rss }));",
      ].join("\n");
      // What the daemon loads in Kubernetes mode (src/daemon/compose.ts), and a first request's
      // options.
      const lean = [
        `const { KubeSource } = await import(${
          JSON.stringify(new URL("src/sources/kube/kube_source.ts", root).href)
        });`,
        `const { loadKubeConfig } = await import(${
          JSON.stringify(new URL("src/sources/kube/config.ts", root).href)
        });`,
        `const conn = loadKubeConfig({ kubeconfigPath: ${
          JSON.stringify(`${dir}/kc.yaml`)
        }, env: () => undefined });`,
        "await conn.config.applyToFetchOptions({});",
        "if (!KubeSource || conn.auth !== 'token') throw new Error('not loaded');",
        measure,
      ].join("\n");
      const full = ['await import("@kubernetes/client-node");', measure].join("\n");
      const run = async (name: string, code: string) => {
        const file = `${dir}/${name}.ts`;
        await Deno.writeTextFile(file, code);
        const out = await new Deno.Command(Deno.execPath(), {
          args: [
            "run",
            "-A",
            "--quiet",
            "--v8-flags=--expose-gc",
            "--config",
            new URL("deno.json", root).pathname,
            file,
          ],
          cwd: new URL(".", root).pathname,
          stdout: "piped",
          stderr: "piped",
        }).output();
        const text = new TextDecoder().decode(out.stdout);
        if (!out.success) {
          throw new Error(`${name} failed: ${new TextDecoder().decode(out.stderr)}`);
        }
        return JSON.parse(text.trim().split("\n").at(-1)!) as { heapUsed: number; rss: number };
      };
      const l = await run("lean", lean);
      const f = await run("full", full);
      const mb = (n: number) => (n / 1e6).toFixed(1);
      console.log(
        `heapUsed: lean ${mb(l.heapUsed)} MB, full ${mb(f.heapUsed)} MB; ` +
          `rss: lean ${mb(l.rss)} MB, full ${mb(f.rss)} MB`,
      );
      assert(
        f.heapUsed - l.heapUsed >= 15e6,
        `expected the lean path to use >= 15 MB less heap: lean ${mb(l.heapUsed)} MB, ` +
          `full ${mb(f.heapUsed)} MB`,
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
