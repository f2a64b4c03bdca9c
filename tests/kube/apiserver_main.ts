/**
 * The fake API server as a process of its own, so that it can run inside a lab's node network
 * namespace beside the daemon (which cannot reach the root namespace's loopback).
 *
 * It serves HTTPS with the certificate and key of a {@link generateTlsMaterial} folder and
 * requires a bearer token. Tests drive it over a control channel: JSON lines on a Unix socket (a
 * path in the file system, reachable from every network namespace). One request per line,
 * answered in order with `{"id":…,"ok":true,"result":…,"at":<epoch ms after the operation>}` or
 * `{"id":…,"ok":false,"error":"…"}`.
 *
 * Once listening it prints `{"event":"listening","port":…,"url":"…"}` on stdout.
 *
 * Usage: `deno run -A tests/kube/apiserver_main.ts --tls-dir DIR --token TOKEN --control SOCK
 *   [--port N] [--history-limit N]`
 * @module
 */

import {
  FakeApiServer,
  type KubeObject,
  type ResourceName,
  type TooLargeReply,
} from "../fake_apiserver/fake_apiserver.ts";
import { readTlsMaterial } from "../fake_apiserver/tls.ts";
import { loadScale, type ScaleSpec } from "../bench/kube_scale.ts";

/** One control request. */
export type ControlRequest =
  | { op: "create" | "update" | "apply"; resource: ResourceName; obj: KubeObject }
  | { op: "delete"; resource: ResourceName; namespace?: string; name: string }
  | { op: "batch"; ops: ControlRequest[] }
  | { op: "stop" | "start" | "compact" | "status" }
  | { op: "cutWatches" | "closeWatches" | "expireWatches"; resource?: ResourceName }
  | { op: "loadScale"; spec: ScaleSpec }
  | { op: "resetHistory"; reply?: TooLargeReply }
  | { op: "get"; resource: ResourceName; namespace?: string; name: string };

/** Wall-clock milliseconds with sub-millisecond precision, comparable across processes. */
export function epochMs(): number {
  return performance.timeOrigin + performance.now();
}

function flag(args: string[], name: string): string | undefined {
  const prefix = `--${name}=`;
  const eq = args.find((a) => a.startsWith(prefix));
  if (eq !== undefined) return eq.slice(prefix.length);
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
}

/** Runs one request against the server; throws with a message naming what failed. */
async function execute(api: FakeApiServer, req: ControlRequest): Promise<unknown> {
  switch (req.op) {
    case "create":
      return api.create(req.resource, req.obj).metadata.resourceVersion;
    case "update":
      return api.update(req.resource, req.obj).metadata.resourceVersion;
    case "apply":
      return api.apply(req.resource, req.obj).metadata.resourceVersion;
    case "delete":
      return api.delete(req.resource, req.namespace, req.name);
    case "get":
      return api.get(req.resource, req.namespace, req.name) ?? null;
    case "batch": {
      const out: unknown[] = [];
      for (const r of req.ops) out.push(await execute(api, r));
      return out;
    }
    case "stop":
      await api.stop();
      return null;
    case "start":
      await api.start();
      return api.port;
    case "compact":
      api.compact();
      return api.resourceVersion;
    case "cutWatches":
      return api.cutWatches(req.resource);
    case "closeWatches":
      return api.closeWatches(req.resource);
    case "expireWatches":
      return api.expireWatches(req.resource);
    case "loadScale":
      loadScale(api, req.spec);
      return { services: api.size("services"), endpointslices: api.size("endpointslices") };
    case "resetHistory":
      return api.resetHistory({ reply: req.reply ?? "error-event" });
    case "status":
      return {
        running: api.running,
        resourceVersion: api.resourceVersion,
        counts: api.counts,
        openWatches: api.openWatches(),
      };
    default:
      throw new Error(`Unknown control op ${JSON.stringify((req as { op?: unknown }).op)}`);
  }
}

async function serveControl(api: FakeApiServer, conn: Deno.Conn): Promise<void> {
  const encoder = new TextEncoder();
  let buf = "";
  try {
    for await (const chunk of conn.readable.pipeThrough(new TextDecoderStream())) {
      buf += chunk;
      let nl;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line.trim() === "") continue;
        let id: unknown = null;
        let reply: Record<string, unknown>;
        try {
          const req = JSON.parse(line) as ControlRequest & { id?: unknown };
          id = req.id ?? null;
          const result = await execute(api, req);
          reply = { id, ok: true, result, at: epochMs() };
        } catch (e) {
          reply = { id, ok: false, error: e instanceof Error ? e.message : String(e) };
        }
        await conn.write(encoder.encode(JSON.stringify(reply) + "\n"));
      }
    }
  } catch {
    // The test went away; nothing to answer.
  } finally {
    try {
      conn.close();
    } catch { /* already closed */ }
  }
}

if (import.meta.main) {
  const args = Deno.args;
  const tlsDir = flag(args, "tls-dir");
  const token = flag(args, "token");
  const control = flag(args, "control");
  if (!tlsDir || !token || !control) {
    console.error(
      "usage: apiserver_main.ts --tls-dir DIR --token TOKEN --control SOCK [--port N] " +
        "[--history-limit N]",
    );
    Deno.exit(2);
  }
  const port = Number(flag(args, "port") ?? "0");
  const historyLimit = flag(args, "history-limit");
  const api = await FakeApiServer.start({
    tls: await readTlsMaterial(tlsDir),
    token,
    port,
    ...(historyLimit ? { historyLimit: Number(historyLimit) } : {}),
  });
  const listener = Deno.listen({ transport: "unix", path: control });
  console.log(JSON.stringify({ event: "listening", port: api.port, url: api.url }));
  for await (const conn of listener) serveControl(api, conn);
}
