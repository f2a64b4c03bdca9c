/**
 * Runs tests/kube/apiserver_main.ts (the fake API server, HTTPS with a generated CA and a bearer
 * token) as a process inside a network namespace, writes a kubeconfig for it, and drives it over
 * its Unix-socket control channel.
 * @module
 */

import { Lab as LabClass, type LabOptions } from "../lab/lab.ts";
type Lab = LabClass;
import type { KubeObject, ResourceName } from "../fake_apiserver/fake_apiserver.ts";
import { writeKubeconfig } from "../fake_apiserver/fixtures.ts";
import { generateTlsMaterial, removeTlsMaterial, type TlsMaterial } from "../fake_apiserver/tls.ts";
import type { ControlRequest } from "./apiserver_main.ts";
import type { ScaleSpec } from "../bench/kube_scale.ts";

const MAIN = new URL("./apiserver_main.ts", import.meta.url).pathname;

/** The token the fake API server process expects. */
export const API_TOKEN = "svcgate-e2e-token";

/** Result of a control request: its value, and when (epoch ms, server clock) it was done. */
export interface ControlReply<T = unknown> {
  readonly result: T;
  readonly at: number;
}

/** Options of {@link ApiServerProcess.spawn}. */
export interface ApiServerSpawnOptions {
  /** Events kept for watch resumption (default: the fake's own, 100k). */
  readonly historyLimit?: number;
}

/** A fake API server process in a namespace. Always {@link close} it (try/finally). */
export class ApiServerProcess {
  readonly url: string;
  readonly port: number;
  /** Path of a kubeconfig (CA file, token) pointing at {@link url}. */
  readonly kubeconfig: string;
  readonly tls: TlsMaterial;
  readonly #child: Deno.ChildProcess;
  readonly #conn: Deno.Conn;
  readonly #stderr: string[];
  #nextId = 1;
  #queue: Promise<unknown> = Promise.resolve();
  #lines: AsyncIterator<string>;
  #closed = false;

  private constructor(
    init: {
      url: string;
      port: number;
      kubeconfig: string;
      tls: TlsMaterial;
      child: Deno.ChildProcess;
      conn: Deno.Conn;
      stderr: string[];
    },
  ) {
    this.url = init.url;
    this.port = init.port;
    this.kubeconfig = init.kubeconfig;
    this.tls = init.tls;
    this.#child = init.child;
    this.#conn = init.conn;
    this.#stderr = init.stderr;
    this.#lines = lineIterator(this.#conn.readable);
  }

  /**
   * Generates TLS material, starts the server in `ns` through `lab.spawn` (killed at the lab's
   * teardown too) and connects to its control socket.
   */
  static async spawn(
    lab: Lab,
    ns: string,
    options: ApiServerSpawnOptions = {},
  ): Promise<ApiServerProcess> {
    const tls = await generateTlsMaterial();
    const control = `${tls.dir}/control.sock`;
    let child: Deno.ChildProcess | null = null;
    try {
      child = lab.spawn(ns, [
        Deno.execPath(),
        "run",
        "-A",
        MAIN,
        ...["--tls-dir", tls.dir, "--token", API_TOKEN, "--control", control],
        ...(options.historyLimit ? ["--history-limit", String(options.historyLimit)] : []),
      ], { stdout: "piped", stderr: "piped" });
      const stderr: string[] = [];
      (async () => {
        for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
          stderr.push(...chunk.split("\n").filter(Boolean));
          if (stderr.length > 200) stderr.splice(0, stderr.length - 200);
        }
      })();
      const out = lineIterator(child.stdout);
      const first = await Promise.race([
        out.next(),
        new Promise<never>((_, reject) =>
          setTimeout(
            () => reject(new Error("the fake API server did not listen within 30 s")),
            30_000,
          )
        ),
      ]);
      if (first.done) {
        throw new Error(`the fake API server exited before listening: ${stderr.join("\n")}`);
      }
      const hello = JSON.parse(first.value) as { event: string; port: number; url: string };
      // Keep draining stdout so the child never blocks on a full pipe.
      (async () => {
        while (!(await out.next()).done) { /* discard */ }
      })();
      const conn = await Deno.connect({ transport: "unix", path: control });
      const kubeconfig = await writeKubeconfig(tls.dir, {
        server: hello.url,
        caFile: tls.caCertFile,
        token: API_TOKEN,
      });
      return new ApiServerProcess({
        url: hello.url,
        port: hello.port,
        kubeconfig,
        tls,
        child,
        conn,
        stderr,
      });
    } catch (e) {
      if (child) {
        try {
          child.kill("SIGKILL");
        } catch { /* gone */ }
        await child.status;
      }
      await removeTlsMaterial(tls);
      throw new Error(`Cannot start the fake API server in namespace "${ns}": ${e}`);
    }
  }

  /** The server process id. */
  get pid(): number {
    return this.#child.pid;
  }

  /** Sends one control request and waits for its reply (requests are serialised). */
  call<T = unknown>(req: ControlRequest): Promise<ControlReply<T>> {
    const run = async (): Promise<ControlReply<T>> => {
      if (this.#closed) throw new Error(`fake API server control: closed (op ${req.op})`);
      const id = this.#nextId++;
      await this.#conn.write(new TextEncoder().encode(JSON.stringify({ ...req, id }) + "\n"));
      const line = await this.#lines.next();
      if (line.done) {
        throw new Error(
          `fake API server control: connection closed during "${req.op}"; stderr:\n` +
            this.#stderr.join("\n"),
        );
      }
      const reply = JSON.parse(line.value) as {
        id: number;
        ok: boolean;
        result?: T;
        at?: number;
        error?: string;
      };
      if (reply.id !== id) {
        throw new Error(`fake API server control: reply ${reply.id} to request ${id}`);
      }
      if (!reply.ok) throw new Error(`fake API server "${req.op}" failed: ${reply.error}`);
      return { result: reply.result as T, at: reply.at! };
    };
    const p = this.#queue.then(run, run);
    this.#queue = p.catch(() => {});
    return p;
  }

  /** Creates an object; resolves with when the event was sent. */
  create(resource: ResourceName, obj: KubeObject): Promise<ControlReply<string>> {
    return this.call({ op: "create", resource, obj });
  }

  /** Replaces an existing object. */
  update(resource: ResourceName, obj: KubeObject): Promise<ControlReply<string>> {
    return this.call({ op: "update", resource, obj });
  }

  /** Creates or replaces an object. */
  apply(resource: ResourceName, obj: KubeObject): Promise<ControlReply<string>> {
    return this.call({ op: "apply", resource, obj });
  }

  /** Deletes an object. */
  delete(
    resource: ResourceName,
    namespace: string | undefined,
    name: string,
  ): Promise<ControlReply<boolean>> {
    return this.call({ op: "delete", resource, namespace, name });
  }

  /** Takes the API down (watches cut, listener closed); data is kept. */
  stop(): Promise<ControlReply<null>> {
    return this.call({ op: "stop" });
  }

  /** Brings the API back on the same port. */
  start(): Promise<ControlReply<number>> {
    return this.call({ op: "start" });
  }

  /** Loads the scale data set of tests/bench/kube_scale.ts (and compacts the history). */
  loadScale(
    spec: ScaleSpec,
  ): Promise<ControlReply<{ services: number; endpointslices: number }>> {
    return this.call({ op: "loadScale", spec });
  }

  /** Running state, resourceVersion, request counts, open watches. */
  status(): Promise<
    ControlReply<
      {
        running: boolean;
        resourceVersion: number;
        counts: Record<string, unknown>;
        openWatches: number;
      }
    >
  > {
    return this.call({ op: "status" });
  }

  /** Kills the process and removes its TLS folder (kubeconfig, socket). Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#conn.close();
    } catch { /* already closed */ }
    try {
      this.#child.kill("SIGKILL");
    } catch { /* already gone */ }
    await this.#child.status;
    await removeTlsMaterial(this.tls);
  }
}

/** Splits a byte stream into lines. */
function lineIterator(stream: ReadableStream<Uint8Array>): AsyncIterator<string> {
  const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  return {
    async next(): Promise<IteratorResult<string>> {
      for (;;) {
        const nl = buf.indexOf("\n");
        if (nl >= 0) {
          const value = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          return { value, done: false };
        }
        const { value, done } = await reader.read();
        if (done) return { value: undefined, done: true };
        buf += value;
      }
    },
  };
}

/**
 * Runs `fn` with a lab (started pod servers) and a fake API server process in its node namespace;
 * both are torn down afterwards, whatever happens.
 *
 * @example
 * ```ts
 * await withApiServerLab({ pods: 2 }, async (lab, api) => { ... });
 * ```
 */
export async function withApiServerLab(
  options: LabOptions,
  fn: (lab: Lab, api: ApiServerProcess) => Promise<void>,
): Promise<void> {
  const lab = await LabClass.create(options);
  let api: ApiServerProcess | null = null;
  try {
    await lab.startPodServers();
    api = await ApiServerProcess.spawn(lab, lab.node.ns);
    await fn(lab, api);
  } finally {
    await api?.close();
    await lab.destroy();
  }
}
