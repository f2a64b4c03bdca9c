/**
 * Helpers shared by the DNS benchmark and the DNS end-to-end tests: free ports, temp dirs the
 * C servers can read, starting knotd / unbound / dnsmasq / svcgate on loopback, one-shot UDP and
 * TCP queries, and running dnsperf. Every process started here is stopped by PID.
 * @module
 */

import dgram from "node:dgram";
import { decodeMessage } from "../../src/dns/codec/decode.ts";
import { encodeMessage } from "../../src/dns/codec/encode.ts";
import { type Message, RRClass, typeFromName } from "../../src/dns/codec/records.ts";

/** A process this module started, and how to stop it. */
export interface Started {
  readonly name: string;
  readonly port: number;
  readonly pid: number;
  stop(): Promise<void>;
}

/** A port free for both UDP and TCP on 127.0.0.1 (racy by nature, so tests retry on bind errors). */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (listener.addr as Deno.NetAddr).port;
    listener.close();
    const ok = await new Promise<boolean>((resolve) => {
      const s = dgram.createSocket("udp4");
      s.once("error", () => resolve(false));
      s.bind(port, "127.0.0.1", () => s.close(() => resolve(true)));
    });
    if (ok) return port;
  }
  throw new Error("Cannot find a free port on 127.0.0.1 after 50 attempts");
}

/** A temp dir with world-readable permissions (dnsmasq and knot drop privileges). */
export async function worldReadableTempDir(prefix: string): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix });
  await Deno.chmod(dir, 0o755);
  return dir;
}

/** Writes a world-readable file. */
export async function writePublic(path: string, text: string): Promise<void> {
  await Deno.writeTextFile(path, text);
  await Deno.chmod(path, 0o644);
}

/** Builds a query packet. */
export function queryPacket(
  name: string,
  type: string | number,
  opts: { id?: number; edns?: number; rd?: boolean } = {},
): Uint8Array {
  const t = typeof type === "number" ? type : typeFromName(type);
  if (t === null) throw new Error(`Cannot build a query: type "${type}" is unknown`);
  const msg: Message = {
    id: opts.id ?? Math.floor(Math.random() * 65536),
    qr: false,
    opcode: 0,
    aa: false,
    tc: false,
    rd: opts.rd ?? true,
    ra: false,
    ad: false,
    cd: false,
    rcode: 0,
    questions: [{ name, type: t, class: RRClass.IN }],
    answers: [],
    authority: [],
    additional: [],
    ...(opts.edns
      ? { edns: { udpSize: opts.edns, version: 0, dnssecOk: false, options: [] } }
      : {}),
  };
  return encodeMessage(msg);
}

/**
 * Sends raw bytes over UDP from `localAddress` (default 127.0.0.1) and returns the first reply,
 * or null after `timeoutMs`.
 */
export function udpExchange(
  port: number,
  packet: Uint8Array,
  timeoutMs = 2000,
  opts: { host?: string; localAddress?: string } = {},
): Promise<Uint8Array | null> {
  const host = opts.host ?? "127.0.0.1";
  const s = dgram.createSocket(host.includes(":") ? "udp6" : "udp4");
  return new Promise((resolve) => {
    const timer = setTimeout(() => finish(null), timeoutMs);
    const finish = (v: Uint8Array | null) => {
      clearTimeout(timer);
      try {
        s.close();
      } catch { /* closed */ }
      resolve(v);
    };
    s.on("error", () => finish(null));
    s.on("message", (m: Uint8Array) => finish(new Uint8Array(m)));
    const send = () => s.send(packet, port, host);
    if (opts.localAddress) s.bind(0, opts.localAddress, send);
    else send();
  });
}

/** A UDP query decoded; throws when no answer comes or it is malformed. */
export async function udpQuery(
  port: number,
  name: string,
  type: string | number,
  opts: { edns?: number; localAddress?: string } = {},
): Promise<Message> {
  const reply = await udpExchange(port, queryPacket(name, type, { edns: opts.edns }), 2000, {
    localAddress: opts.localAddress,
  });
  if (!reply) throw new Error(`No UDP answer from 127.0.0.1:${port} for ${name} ${type}`);
  const d = decodeMessage(reply);
  if (!d.ok) {
    throw new Error(`Malformed answer from 127.0.0.1:${port} for ${name} ${type}: ${d.error}`);
  }
  return d.message;
}

/** Waits until something answers DNS on the port. */
export async function waitForDns(port: number, name: string, timeoutMs = 10000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const r = await udpExchange(port, queryPacket(name, "A"), 300);
    if (r) return;
    await new Promise((res) => setTimeout(res, 100));
  }
  throw new Error(`Nothing answered DNS on 127.0.0.1:${port} within ${timeoutMs} ms`);
}

async function killProcess(child: Deno.ChildProcess, name: string): Promise<void> {
  try {
    child.kill("SIGTERM");
  } catch { /* exited already */ }
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch { /* exited */ }
  }, 3000);
  try {
    await child.status;
  } catch (e) {
    console.error(`waiting for ${name} failed: ${(e as Error).message}`);
  } finally {
    clearTimeout(timer);
  }
}

/** One zone record for the C servers. */
export interface ZoneEntry {
  readonly name: string;
  readonly type: "A" | "AAAA" | "TXT" | "CNAME";
  readonly value: string;
}

/** Starts knotd serving `origin` with `entries` on 127.0.0.1:`port` (SOA minimum `negTtl`). */
export async function startKnot(
  opts: {
    origin: string;
    entries: readonly ZoneEntry[];
    port: number;
    ttl?: number;
    negTtl?: number;
    udpWorkers?: number;
  },
): Promise<Started> {
  const dir = await worldReadableTempDir("svcgate-knot-");
  const ttl = opts.ttl ?? 30;
  const zone = [
    `$ORIGIN ${opts.origin}.`,
    `$TTL ${ttl}`,
    `@ ${ttl} IN SOA ns.${opts.origin}. hostmaster.${opts.origin}. 1 7200 1800 86400 ${
      opts.negTtl ?? ttl
    }`,
    `@ ${ttl} IN NS ns.${opts.origin}.`,
    `ns ${ttl} IN A 127.0.0.1`,
    ...opts.entries.map((e) =>
      `${e.name}. ${ttl} IN ${e.type} ${e.type === "TXT" ? JSON.stringify(e.value) : e.value}`
    ),
  ].join("\n") + "\n";
  await writePublic(`${dir}/zone.txt`, zone);
  await writePublic(
    `${dir}/knot.conf`,
    [
      "server:",
      `    listen: 127.0.0.1@${opts.port}`,
      `    rundir: "${dir}"`,
      ...(opts.udpWorkers ? [`    udp-workers: ${opts.udpWorkers}`] : []),
      "log:",
      "  - target: stderr",
      "    any: warning",
      "database:",
      `    storage: "${dir}"`,
      "zone:",
      `  - domain: ${opts.origin}`,
      `    file: "${dir}/zone.txt"`,
      `    storage: "${dir}"`,
      "",
    ].join("\n"),
  );
  const child = new Deno.Command("knotd", {
    args: ["-c", `${dir}/knot.conf`],
    stdout: "null",
    stderr: "piped",
  }).spawn();
  return await started("knotd", child, opts.port, `ns.${opts.origin}`, dir);
}

/** Starts unbound serving `entries` as local data on 127.0.0.1:`port`. */
export async function startUnbound(
  opts: {
    origin: string;
    entries: readonly ZoneEntry[];
    port: number;
    ttl?: number;
    threads?: number;
  },
): Promise<Started> {
  const dir = await worldReadableTempDir("svcgate-unbound-");
  const ttl = opts.ttl ?? 30;
  const lines = [
    "server:",
    "  interface: 127.0.0.1",
    `  port: ${opts.port}`,
    "  do-daemonize: no",
    '  chroot: ""',
    '  username: ""',
    `  directory: "${dir}"`,
    `  pidfile: "${dir}/unbound.pid"`,
    "  use-syslog: no",
    '  logfile: ""',
    "  verbosity: 0",
    `  num-threads: ${opts.threads ?? 2}`,
    "  so-reuseport: yes",
    "  access-control: 127.0.0.0/8 allow",
    "  do-ip6: no",
    `  local-zone: "${opts.origin}." static`,
    `  local-data: "${opts.origin}. ${ttl} IN SOA ns.${opts.origin}. hostmaster.${opts.origin}. 1 7200 1800 86400 ${ttl}"`,
    ...opts.entries.map((e) =>
      `  local-data: '${e.name}. ${ttl} IN ${e.type} ${
        e.type === "TXT" ? JSON.stringify(e.value) : e.value
      }'`
    ),
    "remote-control:",
    "  control-enable: no",
    "",
  ];
  await writePublic(`${dir}/unbound.conf`, lines.join("\n"));
  const child = new Deno.Command("unbound", {
    args: ["-d", "-c", `${dir}/unbound.conf`],
    stdout: "null",
    stderr: "piped",
  }).spawn();
  return await started("unbound", child, opts.port, opts.entries[0]?.name ?? opts.origin, dir);
}

/** Starts dnsmasq answering `entries` (A records) from a hosts file on 127.0.0.1:`port`. */
export async function startDnsmasq(
  opts: { entries: readonly ZoneEntry[]; port: number; ttl?: number },
): Promise<Started> {
  const dir = await worldReadableTempDir("svcgate-dnsmasq-");
  await writePublic(
    `${dir}/hosts`,
    opts.entries.filter((e) => e.type === "A").map((e) => `${e.value} ${e.name}`).join("\n") + "\n",
  );
  const child = new Deno.Command("dnsmasq", {
    args: [
      "-k",
      "--conf-file=/dev/null",
      `--port=${opts.port}`,
      "--listen-address=127.0.0.1",
      "--bind-interfaces",
      "--no-resolv",
      "--no-hosts",
      `--addn-hosts=${dir}/hosts`,
      `--local-ttl=${opts.ttl ?? 30}`,
      `--pid-file=${dir}/dnsmasq.pid`,
      "--cache-size=10000",
    ],
    stdout: "null",
    stderr: "piped",
  }).spawn();
  return await started("dnsmasq", child, opts.port, opts.entries[0]?.name ?? "localhost", dir);
}

/** Starts tests/bench/dns_serve.ts (svcgate's DnsServer) with extra arguments. */
export async function startSvcgate(
  extra: readonly string[],
  denoFlags: readonly string[] = ["-A"],
): Promise<Started & { udpMode: string; tcpPort: number | null }> {
  const script = new URL("./dns_serve.ts", import.meta.url).pathname;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", ...denoFlags, script, ...extra],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  const deadline = Date.now() + 30000;
  while (!text.includes("\n")) {
    const r = await Promise.race([
      reader.read(),
      new Promise<{ done: true; value: undefined }>((res) =>
        setTimeout(() => res({ done: true, value: undefined }), Math.max(0, deadline - Date.now()))
      ),
    ]);
    if (r.done) {
      await killProcess(child, "svcgate");
      throw new Error(
        `svcgate (dns_serve.ts ${extra.join(" ")}) did not report its port: ${
          JSON.stringify(text)
        }`,
      );
    }
    text += r.value;
  }
  const info = JSON.parse(text.slice(0, text.indexOf("\n")));
  // Keep draining stdout so the child never blocks on a full pipe.
  (async () => {
    try {
      while (!(await reader.read()).done) { /* drain */ }
    } catch { /* closed */ }
  })();
  return {
    name: "svcgate",
    port: info.udpPort,
    tcpPort: info.tcpPort,
    udpMode: info.udpMode,
    pid: child.pid,
    stop: async () => {
      try {
        await child.stdin.close();
      } catch { /* closed */ }
      await killProcess(child, "svcgate");
    },
  };
}

async function started(
  name: string,
  child: Deno.ChildProcess,
  port: number,
  probe: string,
  dir: string,
): Promise<Started> {
  const stderr: string[] = [];
  (async () => {
    try {
      for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
        stderr.push(chunk);
      }
    } catch { /* closed */ }
  })();
  const stop = async () => {
    await killProcess(child, name);
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  try {
    await waitForDns(port, probe);
  } catch (e) {
    await stop();
    throw new Error(
      `${name} did not start: ${(e as Error).message}; stderr: ${stderr.join("").slice(0, 2000)}`,
    );
  }
  return { name, port, pid: child.pid, stop };
}

/** dnsperf results. */
export interface PerfResult {
  readonly qps: number;
  readonly sent: number;
  readonly lost: number;
  readonly rcodes: string;
  /** Per-query latencies in seconds, sorted (only with `verbose`). */
  readonly latencies: number[];
}

/** Runs dnsperf against 127.0.0.1:`port` with the query file. */
export async function runDnsperf(
  opts: {
    port: number;
    file: string;
    seconds: number;
    qps?: number;
    verbose?: boolean;
    tcp?: boolean;
    extra?: string[];
  },
): Promise<PerfResult> {
  const args = [
    "-s",
    "127.0.0.1",
    "-p",
    String(opts.port),
    "-d",
    opts.file,
    "-l",
    String(opts.seconds),
  ];
  if (opts.qps) args.push("-Q", String(opts.qps));
  if (opts.verbose) args.push("-v");
  if (opts.tcp) args.push("-m", "tcp");
  if (opts.extra) args.push(...opts.extra);
  const out = await new Deno.Command("dnsperf", { args, stdout: "piped", stderr: "piped" })
    .output();
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) {
    throw new Error(
      `dnsperf ${args.join(" ")} failed: ${new TextDecoder().decode(out.stderr).slice(0, 500)}`,
    );
  }
  const num = (re: RegExp) => Number(re.exec(text)?.[1] ?? "NaN");
  const latencies: number[] = [];
  if (opts.verbose) {
    for (const line of text.split("\n")) {
      if (!line.startsWith("> ")) continue;
      const v = Number(line.slice(line.lastIndexOf(" ") + 1));
      if (Number.isFinite(v)) latencies.push(v);
    }
    latencies.sort((a, b) => a - b);
  }
  return {
    qps: num(/Queries per second:\s+([\d.]+)/),
    sent: num(/Queries sent:\s+(\d+)/),
    lost: num(/Queries lost:\s+(\d+)/),
    rcodes: /Response codes:\s+(.*)/.exec(text)?.[1]?.trim() ?? "",
    latencies,
  };
}

/** The q-quantile of sorted values. */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}
