/**
 * The test lab: a "node" network namespace with N "pod" namespaces on a bridge, optionally a
 * "client host" outside the node, small servers in the pods, and a teardown that always runs.
 *
 * Addresses (the same in every lab: each lab has its own namespaces):
 * - node: bridge br0 198.18.0.1/24 and 2001:db8::1/64; default route through an empty bridge so
 *   locally generated traffic to service VIPs is routed and reaches the nat output hook;
 * - pod i: 198.18.0.(10+i), 2001:db8::(a+i) (hex), default route via the node;
 * - client host: 198.18.100.2 and 2001:db8:100::2, via the node at 198.18.100.1 / 2001:db8:100::1.
 *
 * Namespace names carry the creating process id, so {@link sweepStaleLabs} can remove what a
 * killed run left behind.
 * @module
 */

const POD_SERVER = new URL("./pod_server.ts", import.meta.url).pathname;
const NAME_PREFIX = "sglab";

/** Result of a command run in a namespace. */
export interface ExecResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** A namespace of the lab with its addresses. */
export interface LabHost {
  readonly name: string;
  readonly ns: string;
  readonly ip: string;
  readonly ip6: string;
}

/** What to build. */
export interface LabOptions {
  /** Number of pods (default 2). */
  readonly pods?: number;
  /** Also build a client host outside the node. */
  readonly clientHost?: boolean;
}

/**
 * `ip netns exec` bind-mounts /etc/netns/<ns>/resolv.conf over /etc/resolv.conf for the
 * command it runs: that is how a lab namespace gets its own resolver without touching the host's.
 */
const NETNS_ETC = "/etc/netns";

const liveLabs = new Set<Lab>();

/** Runs a command to completion, feeding `stdin` when given, and collects its output. */
export async function runCommand(cmd: string[], stdin?: string): Promise<ExecResult> {
  const child = new Deno.Command(cmd[0], {
    args: cmd.slice(1),
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(stdin));
    await w.close();
  }
  const out = await child.output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

async function must(cmd: string[]): Promise<string> {
  const r = await runCommand(cmd);
  if (r.code !== 0) {
    throw new Error(`Lab setup failed running "${cmd.join(" ")}": ${r.stderr.trim()}`);
  }
  return r.stdout;
}

function processAlive(pid: number): boolean {
  try {
    Deno.statSync(`/proc/${pid}`);
    return true;
  } catch {
    return false;
  }
}

/** Deletes lab namespaces whose creating process is gone (left by a killed run). */
export async function sweepStaleLabs(): Promise<string[]> {
  const list = await runCommand(["ip", "netns", "list"]);
  const removed: string[] = [];
  for (const line of list.stdout.split("\n")) {
    const ns = line.split(" ")[0];
    const m = ns.match(new RegExp(`^${NAME_PREFIX}-(\\d+)-`));
    if (!m || processAlive(Number(m[1]))) continue;
    await runCommand(["ip", "netns", "del", ns]);
    await Deno.remove(`${NETNS_ETC}/${ns}`, { recursive: true }).catch(() => {});
    removed.push(ns);
  }
  return removed;
}

/**
 * Why a lab cannot be built here, or null when it can (root, `ip`, `nft`, netns support).
 */
export async function labUnavailableReason(): Promise<string | null> {
  if (Deno.build.os !== "linux") return "network namespaces need Linux";
  try {
    if (Deno.uid() !== 0) return "building network namespaces needs root";
    for (const tool of ["ip", "nft"]) {
      const r = await runCommand(["sh", "-c", `command -v ${tool}`]);
      if (r.code !== 0) return `"${tool}" is not installed`;
    }
  } catch (e) {
    return `cannot probe the system: ${(e as Error).message}`;
  }
  return null;
}

const unavailable = await labUnavailableReason();

/**
 * Registers a test that needs a lab. Where no lab can be built it is skipped with the reason,
 * except under CI=true, where it fails: CI never skips end-to-end tests.
 */
export function labTest(
  name: string,
  fn: (t: Deno.TestContext) => Promise<void>,
  options: { sanitizeResources?: boolean; sanitizeOps?: boolean } = {},
): void {
  const ci = Deno.env.get("CI") === "true";
  if (unavailable && !ci) {
    Deno.test({ name: `${name} (skipped: ${unavailable})`, ignore: true, fn() {} });
    return;
  }
  Deno.test({
    name,
    sanitizeResources: options.sanitizeResources ?? false,
    sanitizeOps: options.sanitizeOps ?? false,
    async fn(t) {
      if (unavailable) throw new Error(`End-to-end test cannot run under CI: ${unavailable}`);
      await fn(t);
    },
  });
}

/** A built lab. Always call {@link Lab.destroy} (try/finally); it is idempotent. */
export class Lab {
  readonly id: string;
  readonly node: LabHost;
  readonly pods: LabHost[];
  readonly client?: LabHost;
  /** Node side of the client link. */
  readonly nodeClientSide = { ip: "198.18.100.1", ip6: "2001:db8:100::1" } as const;
  #children = new Set<Deno.ChildProcess>();
  #podServers = new Map<number, Deno.ChildProcess>();
  #namespaces: string[] = [];
  #destroyed = false;

  private constructor(id: string, pods: number, clientHost: boolean) {
    this.id = id;
    const ns = (suffix: string) => `${NAME_PREFIX}-${Deno.pid}-${id}-${suffix}`;
    this.node = { name: "node", ns: ns("node"), ip: "198.18.0.1", ip6: "2001:db8::1" };
    this.pods = Array.from({ length: pods }, (_, i) => ({
      name: `pod-${i}`,
      ns: ns(`pod${i}`),
      ip: `198.18.0.${10 + i}`,
      ip6: `2001:db8::${(10 + i).toString(16)}`,
    }));
    if (clientHost) {
      this.client = {
        name: "client",
        ns: ns("client"),
        ip: "198.18.100.2",
        ip6: "2001:db8:100::2",
      };
    }
  }

  /** Builds a lab; on any failure it tears down what it built and rethrows. */
  static async create(options: LabOptions = {}): Promise<Lab> {
    if (unavailable) throw new Error(`Cannot build a lab: ${unavailable}`);
    await sweepStaleLabs();
    const id = crypto.randomUUID().slice(0, 8);
    const lab = new Lab(id, options.pods ?? 2, options.clientHost ?? false);
    liveLabs.add(lab);
    try {
      await lab.#build();
    } catch (e) {
      await lab.destroy();
      throw e;
    }
    return lab;
  }

  async #addNamespace(ns: string): Promise<void> {
    await must(["ip", "netns", "add", ns]);
    this.#namespaces.push(ns);
    await must(["ip", "-n", ns, "link", "set", "lo", "up"]);
    // Without its own resolv.conf a namespace would send lookups to the host's resolvers, which
    // are not lab addresses; loopback keeps any stray lookup inside the namespace.
    await this.setResolvConf(ns, "nameserver 127.0.0.1\n");
  }

  async #build(): Promise<void> {
    const n = this.node.ns;
    await this.#addNamespace(n);
    await must(["ip", "netns", "exec", n, "sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    await must(["ip", "netns", "exec", n, "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"]);
    await must(["ip", "-n", n, "link", "add", "br0", "type", "bridge"]);
    await must(["ip", "-n", n, "addr", "add", "198.18.0.1/24", "dev", "br0"]);
    await must(["ip", "-n", n, "addr", "add", "2001:db8::1/64", "dev", "br0", "nodad"]);
    await must(["ip", "-n", n, "link", "set", "br0", "up"]);
    // Locally generated traffic to a VIP must be routable before nat output can DNAT it.
    await must(["ip", "-n", n, "link", "add", "brdefault", "type", "bridge"]);
    await must(["ip", "-n", n, "link", "set", "brdefault", "up"]);
    await must(["ip", "-n", n, "route", "add", "default", "dev", "brdefault"]);
    await must(["ip", "-n", n, "-6", "route", "add", "default", "dev", "brdefault"]);
    for (const [i, pod] of this.pods.entries()) {
      await this.#addNamespace(pod.ns);
      await must([
        ...["ip", "link", "add", `veth${i}`, "netns", n, "type", "veth"],
        ...["peer", "name", "eth0", "netns", pod.ns],
      ]);
      await must(["ip", "-n", n, "link", "set", `veth${i}`, "master", "br0", "up"]);
      // As CNI bridge plugins' hairpinMode: a pod reaching its own service through the node
      // gets its packets back out of the port they came in on.
      await must([
        "ip",
        "netns",
        "exec",
        n,
        "bridge",
        "link",
        "set",
        "dev",
        `veth${i}`,
        "hairpin",
        "on",
      ]);
      await must(["ip", "-n", pod.ns, "addr", "add", `${pod.ip}/24`, "dev", "eth0"]);
      await must(["ip", "-n", pod.ns, "addr", "add", `${pod.ip6}/64`, "dev", "eth0", "nodad"]);
      await must(["ip", "-n", pod.ns, "link", "set", "eth0", "up"]);
      await must(["ip", "-n", pod.ns, "route", "add", "default", "via", this.node.ip]);
      await must(["ip", "-n", pod.ns, "-6", "route", "add", "default", "via", this.node.ip6]);
    }
    if (this.client) {
      const c = this.client.ns;
      await this.#addNamespace(c);
      await must([
        ...["ip", "link", "add", "client0", "netns", n, "type", "veth"],
        ...["peer", "name", "eth0", "netns", c],
      ]);
      await must(["ip", "-n", n, "addr", "add", "198.18.100.1/24", "dev", "client0"]);
      await must(["ip", "-n", n, "addr", "add", "2001:db8:100::1/64", "dev", "client0", "nodad"]);
      await must(["ip", "-n", n, "link", "set", "client0", "up"]);
      await must(["ip", "-n", c, "addr", "add", `${this.client.ip}/24`, "dev", "eth0"]);
      await must(["ip", "-n", c, "addr", "add", `${this.client.ip6}/64`, "dev", "eth0", "nodad"]);
      await must(["ip", "-n", c, "link", "set", "eth0", "up"]);
      await must(["ip", "-n", c, "route", "add", "default", "via", this.nodeClientSide.ip]);
      await must(["ip", "-n", c, "-6", "route", "add", "default", "via", this.nodeClientSide.ip6]);
    }
  }

  /**
   * Gives a namespace its own resolv.conf (seen by commands run through {@link exec} and
   * {@link spawn}); removed at teardown.
   */
  async setResolvConf(ns: string, text: string): Promise<void> {
    await Deno.mkdir(`${NETNS_ETC}/${ns}`, { recursive: true });
    await Deno.writeTextFile(`${NETNS_ETC}/${ns}/resolv.conf`, text);
  }

  /** Adds an address to the node's loopback (for example the node-local DNS 169.254.20.10). */
  async addNodeAddress(cidr: string): Promise<void> {
    await must(["ip", "-n", this.node.ns, "addr", "add", cidr, "dev", "lo"]);
  }

  /** Runs a command inside a namespace and collects its output. */
  exec(ns: string, cmd: string[], options: { stdin?: string } = {}): Promise<ExecResult> {
    return runCommand(["ip", "netns", "exec", ns, ...cmd], options.stdin);
  }

  /** Starts a long-running command inside a namespace; it is killed at teardown. */
  spawn(
    ns: string,
    cmd: string[],
    options: { stdout?: "piped" | "inherit" | "null"; stderr?: "piped" | "inherit" | "null" } = {},
  ): Deno.ChildProcess {
    const child = new Deno.Command("ip", {
      args: ["netns", "exec", ns, ...cmd],
      stdin: "null",
      stdout: options.stdout ?? "piped",
      stderr: options.stderr ?? "inherit",
    }).spawn();
    this.#children.add(child);
    child.status.finally(() => this.#children.delete(child));
    return child;
  }

  /** Starts pod i's server (or every pod's) and waits until it listens. */
  async startPodServers(index?: number): Promise<void> {
    const indexes = index === undefined ? this.pods.map((_, i) => i) : [index];
    await Promise.all(indexes.map(async (i) => {
      if (this.#podServers.has(i)) return;
      const pod = this.pods[i];
      const child = this.spawn(pod.ns, [
        Deno.execPath(),
        "run",
        "--allow-net",
        POD_SERVER,
        pod.name,
      ]);
      this.#podServers.set(i, child);
      const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
      let seen = "";
      while (!seen.includes("ready")) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`Pod server in ${pod.name} exited before it was ready`);
        seen += value;
      }
      reader.releaseLock();
      // Keep draining so the child never blocks on a full pipe.
      child.stdout.pipeTo(new WritableStream()).catch(() => {});
    }));
  }

  /** Process id of pod i's server, when it runs (`ip netns exec` becomes the server). */
  podServerPid(index: number): number | undefined {
    return this.#podServers.get(index)?.pid;
  }

  /** Alias of {@link startPodServers} for one pod. */
  startPodServer(index: number): Promise<void> {
    return this.startPodServers(index);
  }

  /** Kills pod i's server (SIGKILL, as a crash) and waits for it to exit. */
  async stopPodServer(index: number): Promise<void> {
    const child = this.#podServers.get(index);
    if (!child) return;
    this.#podServers.delete(index);
    try {
      child.kill("SIGKILL");
    } catch { /* already gone */ }
    await child.status;
  }

  /** Kills every process the lab started (SIGKILL), without waiting: for exit handlers. */
  killChildrenSync(): void {
    for (const child of this.#children) {
      try {
        child.kill("SIGKILL");
      } catch { /* already gone */ }
    }
  }

  /** Kills every process the lab started and deletes its namespaces. Idempotent. */
  async destroy(): Promise<void> {
    if (this.#destroyed) return;
    this.#destroyed = true;
    liveLabs.delete(this);
    this.killChildrenSync();
    await Promise.allSettled([...this.#children].map((c) => c.status));
    for (const ns of this.#namespaces.reverse()) {
      await Deno.remove(`${NETNS_ETC}/${ns}`, { recursive: true }).catch(() => {});
      // `ip netns exec` children may still hold the namespace briefly; retry a few times.
      for (let attempt = 0; attempt < 5; attempt++) {
        const r = await runCommand(["ip", "netns", "del", ns]);
        if (r.code === 0 || r.stderr.includes("No such file")) break;
        await new Promise((res) => setTimeout(res, 100));
      }
    }
  }
}

function destroyAllSync(): void {
  for (const lab of liveLabs) {
    lab.killChildrenSync();
    for (const ns of [lab.node.ns, ...lab.pods.map((p) => p.ns), lab.client?.ns]) {
      if (!ns) continue;
      try {
        Deno.removeSync(`${NETNS_ETC}/${ns}`, { recursive: true });
      } catch { /* none was made */ }
      try {
        new Deno.Command("ip", { args: ["netns", "del", ns], stderr: "null" }).outputSync();
      } catch { /* best effort at exit */ }
    }
  }
}

// An interrupted run still tears down: on exit and on SIGINT/SIGTERM.
globalThis.addEventListener("unload", destroyAllSync);
if (Deno.build.os === "linux") {
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    try {
      Deno.addSignalListener(signal, () => {
        destroyAllSync();
        Deno.exit(130);
      });
    } catch { /* signals unavailable (e.g. a worker) */ }
  }
}
