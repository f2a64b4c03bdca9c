/**
 * Shared by the Kubernetes scale test and benchmark: a cluster-sized data set for the fake API
 * server, and the probe child process that syncs it.
 * @module
 */

import type { FakeApiServer } from "../fake_apiserver/fake_apiserver.ts";
import { makeEndpointSlice, makeNamespace, makeService } from "../fake_apiserver/fixtures.ts";

/** Size of the data set. */
export interface ScaleSpec {
  readonly services: number;
  readonly endpointsPerService: number;
  readonly namespaces: number;
}

/** 10,000 services with 10 endpoints each (100,000) over 100 namespaces. */
export const CLUSTER_10K: ScaleSpec = {
  services: 10_000,
  endpointsPerService: 10,
  namespaces: 100,
};

/** Test addresses only: VIPs in 198.19.0.0/16, pods in 198.18.0.0/16 (reused past 65,536). */
export function serviceIp(i: number): string {
  return `198.19.${(i >> 8) & 255}.${i & 255}`;
}

/** The i-th pod address. */
export function podIp(n: number): string {
  return `198.18.${(n >> 8) & 255}.${n & 255}`;
}

/** Namespace and name of the i-th service. */
export function serviceName(spec: ScaleSpec, i: number): { namespace: string; name: string } {
  return { namespace: `ns-${i % spec.namespaces}`, name: `svc-${i}` };
}

/** The i-th service's slice with `version` changing the first endpoint's readiness. */
export function sliceOf(spec: ScaleSpec, i: number, version = 0) {
  const { namespace, name } = serviceName(spec, i);
  const eps = [];
  for (let j = 0; j < spec.endpointsPerService; j++) {
    eps.push({
      ip: podIp(i * spec.endpointsPerService + j),
      nodeName: `node-${j % 3}`,
      ready: j === 0 ? version % 2 === 0 : true,
    });
  }
  return makeEndpointSlice(namespace, name, `${name}-1`, eps, [{ name: "http", port: 8080 }]);
}

/** Loads the data set into the fake API server and compacts the history it made. */
export function loadScale(api: FakeApiServer, spec: ScaleSpec): void {
  for (let n = 0; n < spec.namespaces; n++) api.create("namespaces", makeNamespace(`ns-${n}`));
  for (let i = 0; i < spec.services; i++) {
    const { namespace, name } = serviceName(spec, i);
    api.create(
      "services",
      makeService(namespace, name, serviceIp(i), [{ name: "http", port: 80, targetPort: 8080 }]),
    );
    api.create("endpointslices", sliceOf(spec, i));
  }
  api.compact();
}

/** A running probe: its report lines, and how to stop it. */
export interface Probe {
  /** Resolves with the next report line whose event matches. */
  next(event: string): Promise<Record<string, unknown>>;
  /** Resolves with the next "applied" line that includes `key`. */
  applied(key: string): Promise<{ at: number; keys: string[]; commitMs: number }>;
  kill(): Promise<void>;
}

/**
 * Spawns tests/bench/kube_probe.ts with the least permissions the source needs
 * (--allow-env --allow-read --allow-net) and --expose-gc for the settled RSS; the environment
 * variable SVCGATE_PROBE_V8_FLAGS adds V8 flags.
 */
export function spawnProbe(
  kubeconfig: string,
  opts: { pageSize?: number; lists?: "raw" | "typed"; env?: Record<string, string> } = {},
): Probe {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-env",
      "--allow-read",
      "--allow-net",
      // Extra V8 flags to compare heap settings (e.g. --optimize-for-size); not --trace-gc,
      // which writes to stdout.
      ["--v8-flags=--expose-gc", Deno.env.get("SVCGATE_PROBE_V8_FLAGS")].filter(Boolean).join(","),
      new URL("./kube_probe.ts", import.meta.url).pathname,
      kubeconfig,
      String(opts.pageSize ?? 500),
      opts.lists ?? "raw",
    ],
    env: opts.env,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const lines: Record<string, unknown>[] = [];
  const waiters: {
    match: (l: Record<string, unknown>) => boolean;
    resolve: (l: Record<string, unknown>) => void;
  }[] = [];
  let stderr = "";
  let exited = false;
  const deliver = (line: Record<string, unknown>) => {
    const i = waiters.findIndex((w) => w.match(line));
    if (i >= 0) waiters.splice(i, 1)[0].resolve(line);
    else lines.push(line);
  };
  (async () => {
    let buf = "";
    for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
      buf += chunk;
      let i;
      while ((i = buf.indexOf("\n")) >= 0) {
        deliver(JSON.parse(buf.slice(0, i)));
        buf = buf.slice(i + 1);
      }
    }
  })();
  (async () => {
    for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
      stderr = (stderr + chunk).slice(-4000);
    }
  })();
  const status = child.status.then((s) => {
    exited = true;
    return s;
  });
  const take = (match: (l: Record<string, unknown>) => boolean) => {
    const i = lines.findIndex(match);
    if (i >= 0) return Promise.resolve(lines.splice(i, 1)[0]);
    if (exited) return Promise.reject(new Error(`probe exited; stderr: ${stderr}`));
    return new Promise<Record<string, unknown>>((resolve, reject) => {
      waiters.push({ match, resolve });
      status.then((s) => reject(new Error(`probe exited (${s.code}); stderr: ${stderr}`)));
    });
  };
  return {
    next: (event) => take((l) => l.event === event),
    applied: async (key) => {
      const l = await take((l) => l.event === "applied" && (l.keys as string[]).includes(key));
      return l as unknown as { at: number; keys: string[]; commitMs: number };
    },
    async kill() {
      if (!exited) child.kill("SIGTERM");
      await status;
    },
  };
}
