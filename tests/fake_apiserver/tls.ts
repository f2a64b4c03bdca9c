/**
 * Test TLS material made with the real `openssl`: a CA, a server certificate for 127.0.0.1,
 * ::1 and localhost, and a client certificate (for client-certificate auth), in a temp folder.
 * @module
 */

/** PEM texts and the paths they were written to. */
export interface TlsMaterial {
  readonly dir: string;
  readonly caCertFile: string;
  readonly caCert: string;
  readonly serverCert: string;
  readonly serverKey: string;
  readonly clientCertFile: string;
  readonly clientKeyFile: string;
  readonly clientCert: string;
  readonly clientKey: string;
}

async function openssl(args: string[], cwd: string): Promise<void> {
  const out = await new Deno.Command("openssl", { args, cwd, stdout: "piped", stderr: "piped" })
    .output();
  if (!out.success) {
    throw new Error(
      `Cannot run "openssl ${args.join(" ")}": ${new TextDecoder().decode(out.stderr).trim()}`,
    );
  }
}

/**
 * Generates a CA and certificates signed by it into a new temp folder (removed by
 * {@link removeTlsMaterial}).
 *
 * @example
 * ```ts
 * const tls = await generateTlsMaterial();
 * try { ... } finally { await removeTlsMaterial(tls); }
 * ```
 */
export async function generateTlsMaterial(): Promise<TlsMaterial> {
  const dir = await Deno.makeTempDir({ prefix: "svcgate-tls-" });
  const days = "2";
  await openssl([
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
    "-keyout",
    "ca.key",
    "-out",
    "ca.crt",
    "-days",
    days,
    "-subj",
    "/CN=svcgate-test-ca",
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign",
  ], dir);
  const issue = async (name: string, subj: string, ext: string) => {
    await openssl([
      "req",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-keyout",
      `${name}.key`,
      "-out",
      `${name}.csr`,
      "-subj",
      subj,
    ], dir);
    await Deno.writeTextFile(`${dir}/${name}.ext`, ext);
    await openssl([
      "x509",
      "-req",
      "-in",
      `${name}.csr`,
      "-CA",
      "ca.crt",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-out",
      `${name}.crt`,
      "-days",
      days,
      "-extfile",
      `${name}.ext`,
    ], dir);
  };
  await issue(
    "server",
    "/CN=fake-apiserver",
    "subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
  );
  await issue(
    "client",
    "/CN=system:serviceaccount:kube-system:svcgate/O=svcgate",
    "extendedKeyUsage=clientAuth\n",
  );
  return await readTlsMaterial(dir);
}

/** The material {@link generateTlsMaterial} wrote to `dir` (a child process reads it back). */
export async function readTlsMaterial(dir: string): Promise<TlsMaterial> {
  const read = (f: string) => Deno.readTextFile(`${dir}/${f}`);
  return {
    dir,
    caCertFile: `${dir}/ca.crt`,
    caCert: await read("ca.crt"),
    serverCert: await read("server.crt"),
    serverKey: await read("server.key"),
    clientCertFile: `${dir}/client.crt`,
    clientKeyFile: `${dir}/client.key`,
    clientCert: await read("client.crt"),
    clientKey: await read("client.key"),
  };
}

/** Removes the folder {@link generateTlsMaterial} made. */
export async function removeTlsMaterial(tls: TlsMaterial): Promise<void> {
  await Deno.remove(tls.dir, { recursive: true }).catch(() => {});
}
