/**
 * Runs the real svcgate daemon (`main.ts run`) inside a lab's node namespace, with its log
 * captured, and small probes (dig, curl) run in the same namespace.
 * @module
 */

import { Lab } from "../lab/lab.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;

/**
 * The permission and V8 flags of `deno task compile`, read from deno.json so that tests run the
 * daemon (and the bundle) exactly as the binary is built.
 */
export const COMPILE_FLAGS: readonly string[] = (JSON.parse(
  Deno.readTextFileSync(new URL("../../deno.json", import.meta.url)),
).tasks.compile as string).split(/\s+/).filter((w) => /^--(allow|unstable|v8)-/.test(w));

/**
 * SVCGATE_DAEMON_PROF=PATH adds V8's sampling profiler writing to PATH (read it with
 * `node --prof-process PATH`), to see where a benchmark's daemon spends its time.
 */
const PROFILE_TO = Deno.env.get("SVCGATE_DAEMON_PROF");
/**
 * The shipped flags (deno.json's compile task): the daemon runs with the permissions it ships
 * with, not -A, so a test sees what a user's node sees (Deno asks for full access to /proc
 * paths, for one).
 */
const SHIPPED_FLAGS = COMPILE_FLAGS.map((f) =>
  PROFILE_TO && f.startsWith("--v8-flags=")
    ? `${f},--prof,--no-logfile-per-isolate,--logfile=${PROFILE_TO}`
    : f
);

/** A daemon process in a lab. */
export interface DaemonProcess {
  readonly child: Deno.ChildProcess;
  readonly log: string[];
  /** Waits until /readyz answers 200. */
  waitReady(timeoutMs?: number): Promise<void>;
  /** Sends a signal and waits for the exit code. */
  stop(signal?: Deno.Signal): Promise<number>;
}

/** Options of {@link startDaemon}. */
export interface StartOptions {
  readonly args: readonly string[];
  /** Directories put first on PATH (for example a failing `nft` wrapper). */
  readonly pathPrefix?: string;
  /** Extra environment variables for the daemon. */
  readonly env?: Readonly<Record<string, string>>;
  /** What deno runs instead of `run -A main.ts` (for example the bundle with narrow flags). */
  readonly program?: readonly string[];
  /** healthz port inside the node namespace (default 10256). */
  readonly healthzPort?: number;
}

/** Polls until `check` is true, or throws naming `what` (with the daemon log when given). */
export async function waitFor(
  what: string,
  check: () => Promise<boolean> | boolean,
  timeoutMs = 10_000,
  log?: readonly string[],
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(
    `Timed out after ${timeoutMs} ms waiting for ${what}` +
      (log ? `\n--- svcgate log ---\n${log.slice(-40).join("\n")}` : ""),
  );
}

/** The lines of a stream, as they arrive (a daemon's log). */
export function collectLines(stream: ReadableStream<Uint8Array>, copyTo?: string): string[] {
  const lines: string[] = [];
  const copy = copyTo ? Deno.openSync(copyTo, { append: true, create: true }) : null;
  (async () => {
    let rest = "";
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      copy?.writeSync(new TextEncoder().encode(chunk));
      const got = (rest + chunk).split("\n");
      rest = got.pop() ?? "";
      lines.push(...got);
    }
    copy?.close();
  })();
  return lines;
}

/** Starts `svcgate run` in the lab's node namespace. */
export function startDaemon(lab: Lab, options: StartOptions): DaemonProcess {
  const port = options.healthzPort ?? 10256;
  const env = [
    // As deploy/ runs it (systemd unit, image wrapper, `deno task start`).
    "MALLOC_ARENA_MAX=2",
    "MALLOC_MMAP_THRESHOLD_=131072",
    "MALLOC_TRIM_THRESHOLD_=131072",
    // As the image: no look for a newer Deno (a DNS query, through svcgate where the node's
    // resolver is svcgate, and an HTTPS request).
    "DENO_NO_UPDATE_CHECK=1",
    ...(options.pathPrefix ? [`PATH=${options.pathPrefix}:${Deno.env.get("PATH")}`] : []),
    ...Object.entries(options.env ?? {}).map(([k, v]) => `${k}=${v}`),
  ];
  // Each daemon has its own state (VIPs, the saved snapshot), never the host's /var/lib/svcgate.
  const ownState = options.args.includes("--state-dir")
    ? null
    : Deno.makeTempDirSync({ prefix: "svcgate-state-" });
  const child = lab.spawn(lab.node.ns, [
    "env",
    ...env,
    Deno.execPath(),
    ...(options.program ?? ["run", ...SHIPPED_FLAGS, MAIN]),
    "run",
    "--healthz-bind-address",
    `127.0.0.1:${port}`,
    "--metrics-bind-address",
    `127.0.0.1:${port}`,
    ...(ownState ? ["--state-dir", ownState] : []),
    ...options.args,
  ], { stdout: "null", stderr: "piped" });
  if (ownState) {
    child.status.finally(() => Deno.remove(ownState, { recursive: true }).catch(() => {}));
  }
  // SVCGATE_DAEMON_LOG=PATH also appends the log to a file, to watch a long run (a benchmark).
  const log = collectLines(child.stderr, Deno.env.get("SVCGATE_DAEMON_LOG"));
  return {
    child,
    log,
    async waitReady(timeoutMs = 15_000) {
      await waitFor(
        "svcgate /readyz to answer 200",
        async () => {
          const r = await lab.exec(lab.node.ns, [
            ...["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}"],
            `http://127.0.0.1:${port}/readyz`,
          ]);
          return r.stdout === "200";
        },
        timeoutMs,
        log,
      );
    },
    async stop(signal: Deno.Signal = "SIGTERM") {
      try {
        child.kill(signal);
      } catch { /* already exited */ }
      return (await child.status).code;
    },
  };
}

/** `dig +short` of a name and type against an address, inside the node namespace. */
export async function dig(
  lab: Lab,
  server: string,
  name: string,
  type = "A",
  extra: string[] = [],
): Promise<{ status: string; answers: string[] }> {
  const r = await lab.exec(lab.node.ns, [
    ...["dig", `@${server}`, name, type, "+tries=1", "+time=2", "+nocookie"],
    ...extra,
  ]);
  const status = r.stdout.match(/status: (\w+)/)?.[1] ?? `no answer (${r.stderr.trim()})`;
  const answerSection = r.stdout.split(";; ANSWER SECTION:\n")[1]?.split("\n\n")[0] ?? "";
  const answers = answerSection.split("\n").filter(Boolean).map((l) => l.split(/\s+/).pop()!);
  return { status, answers };
}

/** One HTTP GET from the node namespace; returns the body (the pod name) or "" on failure. */
export async function httpGet(lab: Lab, url: string, ns = lab.node.ns): Promise<string> {
  const r = await lab.exec(ns, ["curl", "-s", "-m", "2", url]);
  return r.code === 0 ? r.stdout.trim() : "";
}

/** Counts which pods answered n requests. */
export async function spread(lab: Lab, url: string, n: number): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const body = (await httpGet(lab, url)) || "(failed)";
    out[body] = (out[body] ?? 0) + 1;
  }
  return out;
}

/**
 * A real nft behind a switch, for `pathPrefix`: while the flag file exists every nft call fails
 * ("nft: injected failure"). The daemon must run the command (SVCGATE_NFT_EXECUTOR=command), not
 * libnftables, for the wrapper to be seen.
 */
export async function failingNft(lab: Lab, dir: string): Promise<{ bin: string; flag: string }> {
  const bin = `${dir}/bin`;
  const flag = `${dir}/nft-fails`;
  await Deno.mkdir(bin);
  const real = (await lab.exec(lab.node.ns, ["sh", "-c", "command -v nft"])).stdout.trim();
  await Deno.writeTextFile(
    `${bin}/nft`,
    `#!/bin/sh\nif [ -e ${flag} ]; then echo "nft: injected failure" >&2; exit 1; fi\nexec ${real} "$@"\n`,
  );
  await Deno.chmod(`${bin}/nft`, 0o755);
  return { bin, flag };
}

/**
 * A Service and its Endpoints in namespace default as manifest text: port `port` (named http) to
 * 8080 on each of `ips`; `clusterIP` null lets svcgate allocate the VIP.
 */
export function serviceManifest(
  name: string,
  clusterIP: string | null,
  ips: readonly string[],
  port = 80,
): string {
  return `apiVersion: v1
kind: Service
metadata: { name: ${name}, namespace: default }
spec:
  ${clusterIP ? `clusterIP: ${clusterIP}` : "type: ClusterIP"}
  ports: [{ name: http, port: ${port}, targetPort: 8080 }]
---
apiVersion: v1
kind: Endpoints
metadata: { name: ${name}, namespace: default }
subsets:
  - addresses: [${ips.map((ip) => `{ ip: "${ip}" }`).join(", ")}]
    ports: [{ name: http, port: 8080 }]
`;
}

/** Writes a manifest through a temporary file and a rename, as editors and config management do. */
export async function writeManifest(dir: string, name: string, text: string): Promise<void> {
  await Deno.writeTextFile(`${dir}/.${name}.tmp`, text);
  await Deno.rename(`${dir}/.${name}.tmp`, `${dir}/${name}`);
}

/** Runs `fn` with a lab of `pods` pods (their servers started) and a temporary folder. */
export async function withLab(
  pods: number,
  fn: (lab: Lab, dir: string) => Promise<void>,
): Promise<void> {
  const lab = await Lab.create({ pods });
  const dir = await Deno.makeTempDir({ prefix: "svcgate-e2e-" });
  try {
    await lab.startPodServers();
    await fn(lab, dir);
  } finally {
    await lab.destroy();
    await Deno.remove(dir, { recursive: true });
  }
}

/**
 * A metric's value on the daemon's /metrics in the lab's node namespace (0 when absent);
 * `labels` selects one series, written as exposed (`limit="tcp-clients"`).
 */
export async function daemonMetric(
  lab: Lab,
  name: string,
  labels = "",
  port = 10256,
): Promise<number> {
  const r = await lab.exec(lab.node.ns, [
    ...["curl", "-s", "-m", "2", `http://127.0.0.1:${port}/metrics`],
  ]);
  const series = labels ? `${name}\\{${labels.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}\\}` : name;
  return Number(new RegExp(`^${series} ([0-9.e+-]+)`, "m").exec(r.stdout)?.[1] ?? "0");
}
