/**
 * Which connections list through the runtime's fetch (kube_access.ts fetchInit), with real TLS
 * material from openssl; the lists themselves go through it in kube_source_test.ts.
 */
import type { KubeAccess } from "../../src/sources/kube/kube_access.ts";
import { testAccess } from "../support/kube_access.ts";
import { generateTlsMaterial, removeTlsMaterial } from "../fake_apiserver/tls.ts";
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";

Deno.test("fetchInit: a fetch client with the CA and client certificate; node:https where only it can", async () => {
  const tls = await generateTlsMaterial();
  const opened: KubeAccess[] = [];
  const make = (user: Record<string, unknown>, cluster: Record<string, unknown>) => {
    const a = testAccess(user, cluster);
    opened.push(a);
    return a;
  };
  try {
    const mtls = make(
      { certFile: tls.clientCertFile, keyFile: tls.clientKeyFile, token: "t" },
      { caFile: tls.caCertFile },
    );
    const first = await mtls.fetchInit();
    assert(first !== null && first.client !== null, "a client for CA + client certificate");
    assertEquals(first.headers, { Authorization: "Bearer t" }, "headers");
    assert((await mtls.fetchInit())?.client === first.client, "the client is kept");

    const plainHttp = await make({}, { server: "http://127.0.0.1:8080", skipTLSVerify: true })
      .fetchInit();
    assert(plainHttp !== null && plainHttp.client === null, "plain http: the default fetch");

    const cases: [string, Record<string, unknown>, Record<string, unknown>][] = [
      ["insecure-skip-tls-verify", { token: "t" }, { skipTLSVerify: true }],
      ["tls-server-name", { token: "t" }, { caFile: tls.caCertFile, tlsServerName: "k8s" }],
      ["an exec plugin", { exec: { command: "true", apiVersion: "v1" } }, {}],
    ];
    for (const [what, user, cluster] of cases) {
      assertEquals(await make(user, cluster).fetchInit(), null, `${what}: node:https`);
    }
  } finally {
    for (const a of opened) a.close();
    await removeTlsMaterial(tls);
  }
});
