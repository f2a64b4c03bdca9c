/**
 * `deno task bench`: runs every benchmark in turn and prints their tables. Each benchmark builds
 * and deletes its own network namespaces and sends traffic only inside them or on loopback.
 *
 * Usage: deno task bench [NAME...]   (names: startup, nft, topology, dns, dns-attack, kube,
 * kube-daemon, standalone, dns-heavy, dns-heavy-kube, autopath, dns-index, restart)
 * @module
 */

const BENCHES: Record<string, string[]> = {
  startup: ["tests/bench/startup_bench.ts"],
  nft: ["--v8-flags=--expose-gc", "tests/bench/nft_bench.ts"],
  topology: ["tests/bench/topology_bench.ts"],
  dns: ["tests/bench/dns_bench.ts"],
  "dns-attack": ["tests/bench/dns_attack_bench.ts"],
  kube: ["tests/bench/kube_bench.ts"],
  "kube-daemon": ["tests/bench/kube_daemon_bench.ts"],
  standalone: ["tests/bench/standalone_bench.ts", "--bundle"],
  "dns-heavy": ["tests/bench/dns_heavy_work_bench.ts"],
  "dns-heavy-kube": ["tests/bench/dns_heavy_work_bench.ts", "--mode=kube"],
  autopath: ["tests/bench/autopath_bench.ts"],
  "dns-index": ["--v8-flags=--expose-gc", "tests/bench/dns_index_memory_bench.ts"],
  restart: ["tests/bench/restart_bench.ts"],
};

const root = new URL("../..", import.meta.url).pathname;
const wanted = Deno.args.length > 0 ? Deno.args : Object.keys(BENCHES);
let failed = 0;
for (const name of wanted) {
  const script = BENCHES[name];
  if (!script) {
    console.error(`Unknown benchmark "${name}"; known: ${Object.keys(BENCHES).join(", ")}`);
    Deno.exit(2);
  }
  console.log(`\n=== bench: ${name}`);
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", ...script],
    cwd: root,
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  if (r.code !== 0) {
    console.error(`bench ${name} exited ${r.code}`);
    failed++;
  }
}
Deno.exit(failed > 0 ? 1 : 0);
